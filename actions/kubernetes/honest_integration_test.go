package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// On the real control plane: a rollout that misses its deadline and pods
// that crash-loop are reported as such, with the attention style, never
// as a success; an unknown name gets "not found" with the close match.
func TestRealClusterHonestStatus(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "honest")
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()

	// No kubelet runs pods here, so with a one-second deadline the
	// deployment controller marks the first rollout as stuck.
	c.ApplyYAML(t, ns, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 4
  progressDeadlineSeconds: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "shop/web:1.1.0"}]}
`)
	kubetest.WaitFor(t, settleTimeout, "the rollout of web to exceed its deadline", func(ctx context.Context) error {
		d, err := l.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := condition(d, "Progressing"); c == nil || c.Reason != "ProgressDeadlineExceeded" {
			return fmt.Errorf("conditions %v", d.Status.Conditions)
		}
		return nil
	})
	res, err := l.status.Run(ctx, req(action.KubernetesStatus, params(ns, "web")))
	if err != nil {
		t.Fatal(err)
	}
	want := "web (" + ns + "): 0/4 ready, rollout stuck (ProgressDeadlineExceeded), below minimum availability, image shop/web:1.1.0, revision 1"
	if got := firstLine(res.Text); got != want || res.Kind != chat.KindAttention {
		t.Errorf("stuck rollout:\n got %q (%s)\nwant %q (attention)\n%s", got, res.Kind, want, res.Text)
	}
	if !strings.Contains(res.Text, "has timed out progressing") {
		t.Errorf("the controller's explanation is missing:\n%s", res.Text)
	}

	// Pods crash-looping, as a kubelet would report them.
	d, err := l.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ownedReplicaSets(ctx, kubego.Wrap(l.admin), d)
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	kubetest.WaitFor(t, settleTimeout, "the pods of web", func(ctx context.Context) error {
		if pods, err = ownedPods(ctx, kubego.Wrap(l.admin), d, rss); err != nil {
			return err
		}
		if len(pods) != 4 {
			return fmt.Errorf("%d pods", len(pods))
		}
		return nil
	})
	for _, p := range pods[:2] {
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "shop/web:1.1.0", RestartCount: 5,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 2m40s"}},
		}}
		if _, err := l.admin.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = l.status.Run(ctx, req(action.KubernetesStatus, params(ns, "web")))
	if err != nil {
		t.Fatal(err)
	}
	if got := firstLine(res.Text); !strings.Contains(got, "0/4 ready, rollout stuck (ProgressDeadlineExceeded), 2 pods failing (CrashLoopBackOff)") || res.Kind != chat.KindAttention {
		t.Errorf("crash loop not reported: %q (%s)", got, res.Kind)
	}

	// The namespace listing carries the same state, line by line.
	res, err = l.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": ns}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "Deployments in "+ns+": 1 of 1 not healthy.") || res.Kind != chat.KindAttention {
		t.Errorf("listing (%s):\n%s", res.Kind, res.Text)
	}

	_, err = l.status.Run(ctx, req(action.KubernetesStatus, params(ns, "wbe")))
	if err == nil || err.Error() != `no deployment "wbe" in `+ns+` (did you mean "web"?)` {
		t.Errorf("unknown name: %v", err)
	}
}

// Parley bound to read only in two namespaces (RoleBindings, nothing
// cluster-wide), as the chart binds it with rbac.readNamespaces: with
// those namespaces configured, the inventory, a namespace-less status and
// a listing all work, and never ask for a cluster-wide list; without them,
// the error says what to configure.
func TestRealClusterNamespacedReads(t *testing.T) {
	c := kubetest.Shared(t)
	a, b, hidden := c.NewNamespace(t, "team-a"), c.NewNamespace(t, "team-b"), c.NewNamespace(t, "hidden")
	admin := newLive(t, c, adminClients(t, c))
	admin.deploy(t, a, "api", "shop/api:1")
	admin.deploy(t, b, "worker", "shop/worker:1")
	admin.deploy(t, hidden, "vault", "shop/vault:1")

	saNS := c.NewNamespace(t, "parley")
	sa := c.ServiceAccountConfig(t, saNS, "reader")
	read := []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"get", "list", "watch"}},
	}
	for _, ns := range []string{a, b} {
		c.Grant(t, ns, kubetest.ServiceAccountSubject(saNS, "reader"), read...)
	}
	client, err := clientset.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := Options{Clients: StaticClient(kubego.Wrap(client)), Timeout: 30 * time.Second, Namespaces: []string{a, b}}
	inv, err := NewInventory(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inv.Inventory(ctx)
	if err != nil {
		t.Fatalf("inventory with namespaced RBAC: %v", err)
	}
	if fmt.Sprint(got.Namespaces) != fmt.Sprint(slices.Sorted(slices.Values([]string{a, b}))) || len(got.Deployments[a]) != 1 || len(got.Deployments[b]) != 1 {
		t.Errorf("inventory %+v", got)
	}
	st, err := NewStatus(o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Run(ctx, req(action.KubernetesStatus, action.Params{"deployment": "worker"}))
	if err != nil || !strings.HasPrefix(res.Text, "worker ("+b+"): ") {
		t.Errorf("status without a namespace: %v\n%s", err, res.Text)
	}
	res, err = st.Run(ctx, req(action.KubernetesStatus, action.Params{}))
	if err != nil || !strings.Contains(res.Text, a+"/api") || !strings.Contains(res.Text, b+"/worker") || strings.Contains(res.Text, "vault") {
		t.Errorf("listing: %v\n%s", err, res.Text)
	}
	// A namespace it may not read among the configured ones is left out,
	// and the reply says so.
	o.Namespaces = []string{a, hidden}
	st, _ = NewStatus(o)
	res, err = st.Run(ctx, req(action.KubernetesStatus, action.Params{}))
	if err != nil || !strings.Contains(res.Text, a+"/api") || !strings.Contains(res.Text, "Not shown: Parley may not list deployments in "+hidden) {
		t.Errorf("listing with an unreadable namespace: %v\n%s", err, res.Text)
	}
	// Without configured namespaces the cluster-wide list is refused, and
	// the error says what to set.
	o.Namespaces = nil
	inv, _ = NewInventory(o)
	_, err = inv.Inventory(ctx)
	mustErrIs(t, err, action.ErrForbidden, "set kubernetes.namespaces")
}

// Rolling back right after a restart, on the real control plane: the plan
// says only the restart is undone and the image stays, and so it is.
func TestRealClusterRollbackAfterRestart(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "undo")
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()
	l.deploy(t, ns, "web", "shop/web:1.0.0")
	l.setImage(t, ns, "web", "shop/web:1.1.0", 2)
	if _, err := l.restart.Run(ctx, req(action.KubernetesRestart, params(ns, "web"))); err != nil {
		t.Fatal(err)
	}
	l.settled(t, ns, "web", 3)
	plan, err := l.rollback.Plan(ctx, req(action.KubernetesRollback, params(ns, "web")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plan.Summary, "web revision 3 -> 2: only the pod template annotation kubectl.kubernetes.io/restartedAt (undoing the restart of ") ||
		!strings.Contains(plan.Summary, "the image stays shop/web:1.1.0 (revision 1 runs shop/web:1.0.0: ask to roll back to revision 1 for that)") {
		t.Errorf("plan summary %q", plan.Summary)
	}
	if _, err := l.rollback.Run(ctx, req(action.KubernetesRollback, params(ns, "web"))); err != nil {
		t.Fatal(err)
	}
	d := l.settled(t, ns, "web", 4)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "shop/web:1.1.0" {
		t.Errorf("image %s, the plan said it stays shop/web:1.1.0", got)
	}
}
