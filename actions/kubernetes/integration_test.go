package kubernetes

// Integration tests against a real API server: etcd, kube-apiserver and
// kube-controller-manager started by internal/testenv/kubetest from the
// binaries scripts/build-kube.sh builds. Without them the tests skip
// (PARLEY_REQUIRE_INTEGRATION=1 makes that a failure). There is no
// kubelet, so pods never run; ReplicaSets, revision history, RBAC,
// admission, dry runs and optimistic concurrency are all the real thing.
//
// The test deployments use the Recreate strategy: with pods that never
// become available a RollingUpdate stalls by design (the old ReplicaSet
// may not shrink below availability), while Recreate settles at once, so
// every step starts from a settled deployment as it would in production.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the test cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// settleTimeout bounds how long the controllers may take to act on one
// change on a busy 2-core machine.
const settleTimeout = 90 * time.Second

// live is the actions wired to a real cluster, plus an admin client for
// setting up and checking.
type live struct {
	c        *kubetest.Cluster
	admin    clientset.Interface
	status   *Status
	scale    *Scale
	rollback *Rollback
	restart  *Restart
}

func newLive(t *testing.T, c *kubetest.Cluster, clients ClientFor) *live {
	t.Helper()
	o := Options{Clients: clients, Timeout: 30 * time.Second}
	l := &live{c: c, admin: c.AdminClient()}
	var errs [4]error
	l.status, errs[0] = NewStatus(o)
	l.scale, errs[1] = NewScale(o)
	l.rollback, errs[2] = NewRollback(o)
	l.restart, errs[3] = NewRestart(o)
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	return l
}

// adminClients is Parley's NewClients on the admin's kubeconfig.
func adminClients(t *testing.T, c *kubetest.Cluster) ClientFor {
	t.Helper()
	clients, err := NewClients(ClusterOptions{Kubeconfig: c.Kubeconfig(t), UserAgent: "parley-test"})
	if err != nil {
		t.Fatal(err)
	}
	return clients
}

// deploy creates a deployment with three replicas of image and waits for
// its first revision.
func (l *live) deploy(t *testing.T, ns, name, image string) {
	t.Helper()
	l.c.ApplyYAML(t, ns, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  replicas: 3
  revisionHistoryLimit: 10
  strategy: {type: Recreate}
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: app, image: %[2]q}]
`, name, image))
	l.settled(t, ns, name, 1)
}

// setImage changes the image as kubectl set image does and waits for the
// revision it makes.
func (l *live) setImage(t *testing.T, ns, name, image string, revision int64) {
	t.Helper()
	ctx := context.Background()
	// The controllers keep writing the status: retry conflicts, as kubectl does.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := l.admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		_, err = l.admin.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l.settled(t, ns, name, revision)
}

// settled waits until the deployment controller has seen the latest spec
// and rolled it out as the given revision: the ReplicaSet of that revision
// matches the template and holds every replica, the others none.
func (l *live) settled(t *testing.T, ns, name string, revision int64) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	kubetest.WaitFor(t, settleTimeout, fmt.Sprintf("%s/%s to settle at revision %d", ns, name, revision), func(ctx context.Context) error {
		var err error
		if d, err = l.admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if d.Status.ObservedGeneration < d.Generation {
			return fmt.Errorf("generation %d not observed yet (%d)", d.Generation, d.Status.ObservedGeneration)
		}
		if got := revisionOf(d); got != revision {
			return fmt.Errorf("revision %d", got)
		}
		rss, err := ownedReplicaSets(ctx, kubego.Wrap(l.admin), d)
		if err != nil {
			return err
		}
		for _, rs := range rss {
			want := int32(0)
			if revisionOf(&rs) == revision {
				if !equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
					return fmt.Errorf("ReplicaSet %s of revision %d has another template", rs.Name, revision)
				}
				want = replicasOf(d)
			}
			if rs.Spec.Replicas == nil || *rs.Spec.Replicas != want || rs.Status.ObservedGeneration < rs.Generation {
				return fmt.Errorf("ReplicaSet %s (revision %d) not scaled to %d yet", rs.Name, revisionOf(&rs), want)
			}
		}
		return nil
	})
	return d
}

func revisionOf(obj metav1.Object) int64 { return revision(obj) }

// replicaSetByRevision returns the deployment's ReplicaSet of a revision.
func (l *live) replicaSetByRevision(t *testing.T, ns, name string, rev int64) appsv1.ReplicaSet {
	t.Helper()
	ctx := context.Background()
	d, err := l.admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ownedReplicaSets(ctx, kubego.Wrap(l.admin), d)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss {
		if revisionOf(&rs) == rev {
			return rs
		}
	}
	t.Fatalf("%s/%s has no ReplicaSet of revision %d", ns, name, rev)
	return appsv1.ReplicaSet{}
}

func params(ns, name string, kv ...any) action.Params {
	p := action.Params{"namespace": ns, "deployment": name}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return p
}

// The actions on a real cluster, step by step, as kubectl would see them:
// status, scale, rollback to the previous and to a named revision, restart.
func TestRealClusterActions(t *testing.T) {
	c := kubetest.Shared(t)
	prod := c.NewNamespace(t, "prod") // prod-N-xxxxx: each run on the shared cluster starts clean
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()

	l.deploy(t, prod, "checkout", "shop/checkout:v1")
	rs1 := l.replicaSetByRevision(t, prod, "checkout", 1)
	l.setImage(t, prod, "checkout", "shop/checkout:v2", 2)
	rs2 := l.replicaSetByRevision(t, prod, "checkout", 2)

	t.Run("status", func(t *testing.T) {
		res, err := l.status.Run(ctx, req(action.KubernetesStatus, params(prod, "checkout")))
		if err != nil {
			t.Fatal(err)
		}
		// No kubelet: pods exist but never become ready, and the reply
		// says so in its words and its style.
		// (The ReplicaSet's status may still be catching up, which the
		// line then reports as "rolling out".)
		got := firstLine(res.Text)
		if !strings.HasPrefix(got, "checkout ("+prod+"): 0/3 ready, ") ||
			!strings.HasSuffix(got, "below minimum availability, image shop/checkout:v2, revision 2") {
			t.Errorf("status %q\n%s", got, res.Text)
		}
		if res.Kind != chat.KindAttention {
			t.Errorf("0/3 ready styled %q, want %q", res.Kind, chat.KindAttention)
		}
	})

	t.Run("scale", func(t *testing.T) {
		before := l.settled(t, prod, "checkout", 2)
		plan, err := l.scale.Plan(ctx, scaleReq(prod, "checkout", 5))
		if err != nil {
			t.Fatal(err)
		}
		if plan.Summary != "checkout replicas 3 -> 5" || plan.Target != prod+"/checkout" ||
			!slices.Equal(plan.Changes, []action.Change{{Field: "replicas", Before: "3", After: "5"}}) {
			t.Errorf("plan %+v", plan)
		}
		// The plan's dry run stored nothing.
		if d := l.settled(t, prod, "checkout", 2); *d.Spec.Replicas != 3 || d.Generation != before.Generation {
			t.Errorf("planning changed the deployment: replicas %d, generation %d -> %d", *d.Spec.Replicas, before.Generation, d.Generation)
		}
		res, err := l.scale.Run(ctx, scaleReq(prod, "checkout", 5))
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != "Scaled checkout ("+prod+") 3 -> 5." {
			t.Errorf("result %q", res.Text)
		}
		d := l.settled(t, prod, "checkout", 2)
		if *d.Spec.Replicas != 5 {
			t.Errorf("after scaling: spec.replicas %d, want 5", *d.Spec.Replicas)
		}
		// The scale subresource's status follows once the controller has
		// written the deployment's status; wait for it rather than race it.
		kubetest.WaitFor(t, 30*time.Second, "scale status 5", func(ctx context.Context) error {
			sc, err := l.admin.AppsV1().Deployments(prod).GetScale(ctx, "checkout", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if sc.Spec.Replicas != 5 || sc.Status.Replicas != 5 {
				return fmt.Errorf("scale spec %d status %d", sc.Spec.Replicas, sc.Status.Replicas)
			}
			return nil
		})
	})

	t.Run("rollback to previous", func(t *testing.T) {
		plan, err := l.rollback.Plan(ctx, req(action.KubernetesRollback, params(prod, "checkout")))
		if err != nil {
			t.Fatal(err)
		}
		if plan.Summary != "checkout revision 2 -> 1 (image shop/checkout:v2 -> shop/checkout:v1)" {
			t.Errorf("plan %q", plan.Summary)
		}
		if _, err := l.rollback.Run(ctx, req(action.KubernetesRollback, params(prod, "checkout"))); err != nil {
			t.Fatal(err)
		}
		// As after kubectl rollout undo: the template is v1 again and the
		// controller made the ReplicaSet of revision 1 revision 3.
		d := l.settled(t, prod, "checkout", 3)
		if img := images(&d.Spec.Template); img != "shop/checkout:v1" {
			t.Errorf("template image %s after rollback", img)
		}
		rs := l.replicaSetByRevision(t, prod, "checkout", 3)
		if rs.UID != rs1.UID || rs.Annotations[RevisionHistoryAnnotation] != "1" {
			t.Errorf("revision 3 is ReplicaSet %s (history %q), want %s, formerly revision 1", rs.Name, rs.Annotations[RevisionHistoryAnnotation], rs1.Name)
		}
	})

	t.Run("rollback to a named revision", func(t *testing.T) {
		r := req(action.KubernetesRollback, params(prod, "checkout", "revision", 2))
		plan, err := l.rollback.Plan(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Summary != "checkout revision 3 -> 2 (image shop/checkout:v1 -> shop/checkout:v2)" {
			t.Errorf("plan %q", plan.Summary)
		}
		res, err := l.rollback.Run(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome["revision_after"] != "2" || res.Outcome["image_after"] != "shop/checkout:v2" {
			t.Errorf("outcome %v", res.Outcome)
		}
		d := l.settled(t, prod, "checkout", 4)
		if img := images(&d.Spec.Template); img != "shop/checkout:v2" {
			t.Errorf("template image %s", img)
		}
		if rs := l.replicaSetByRevision(t, prod, "checkout", 4); rs.UID != rs2.UID {
			t.Errorf("revision 4 is ReplicaSet %s, want %s", rs.Name, rs2.Name)
		}
		_, err = l.rollback.Plan(ctx, req(action.KubernetesRollback, params(prod, "checkout", "revision", 9)))
		mustErrIs(t, err, action.ErrNotFound, "revision 9 is not in the history")
	})

	t.Run("restart", func(t *testing.T) {
		before := l.settled(t, prod, "checkout", 4)
		r := req(action.KubernetesRestart, params(prod, "checkout"))
		plan, err := l.restart.Plan(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Summary != "restart all 5 pods of checkout (rolling)" || plan.Changes[0] != (action.Change{Field: "revision", Before: "4", After: "5"}) {
			t.Errorf("plan %+v", plan)
		}
		if d := l.settled(t, prod, "checkout", 4); d.Generation != before.Generation {
			t.Error("planning the restart changed the deployment")
		}
		res, err := l.restart.Run(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		d := l.settled(t, prod, "checkout", 5)
		at := d.Spec.Template.Annotations[RestartedAtAnnotation]
		if at == "" || at != res.Outcome["restarted_at"] {
			t.Errorf("restartedAt %q, outcome %v", at, res.Outcome)
		}
		rs := l.replicaSetByRevision(t, prod, "checkout", 5)
		if rs.UID == rs1.UID || rs.UID == rs2.UID || *rs.Spec.Replicas != 5 {
			t.Errorf("revision 5 is ReplicaSet %s with %d replicas, want a new one with 5", rs.Name, *rs.Spec.Replicas)
		}
	})

	t.Run("status after", func(t *testing.T) {
		res, err := l.status.Run(ctx, req(action.KubernetesStatus, params(prod, "checkout")))
		if err != nil {
			t.Fatal(err)
		}
		got := firstLine(res.Text)
		if !strings.HasPrefix(got, "checkout ("+prod+"): 0/5 ready, ") ||
			!strings.HasSuffix(got, "below minimum availability, image shop/checkout:v2, revision 5") || res.Kind != chat.KindAttention {
			t.Errorf("status %q (%s)", got, res.Kind)
		}
	})
}

// interceptWrite returns a ClientFor on cfg whose first real (not dry-run)
// write matching method and path suffix is preceded by before(): another
// writer that gets in between the action's read and its write.
func interceptWrite(t *testing.T, cfg *rest.Config, method, suffix string, before func()) ClientFor {
	t.Helper()
	fired := false
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &hook{rt: rt, before: func(r *http.Request) {
			if !fired && r.Method == method && strings.HasSuffix(r.URL.Path, suffix) && r.URL.Query().Get("dryRun") == "" {
				fired = true
				before()
			}
		}}
	})
	c, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return StaticClient(kubego.Wrap(c))
}

// hook calls before ahead of each request it passes on to rt.
type hook struct {
	rt     http.RoundTripper
	before func(*http.Request)
}

func (h *hook) RoundTrip(r *http.Request) (*http.Response, error) {
	h.before(r)
	return h.rt.RoundTrip(r)
}

// WrappedRoundTripper lets client-go reach the transport underneath.
func (h *hook) WrappedRoundTripper() http.RoundTripper { return h.rt }

// Concurrent changes on a real API server: a change between plan and
// confirmation moves the plan's fingerprint (the pipeline then refuses to
// run), and a writer that gets in between Run's read and its write makes
// the API server refuse Run's write: ErrConflict, the other write kept.
func TestRealClusterConflicts(t *testing.T) {
	c := kubetest.Shared(t)
	prod := c.NewNamespace(t, "prod")
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()
	l.deploy(t, prod, "cart", "shop/cart:v1")
	l.setImage(t, prod, "cart", "shop/cart:v2", 2)

	// setReplicas is the other writer: an unconditional scale, as kubectl
	// scale does.
	// The API server can still answer a conflict while the controllers
	// write the deployment's status; like kubectl, retry those.
	setReplicas := func(t *testing.T, n int32) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: prod}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
			_, err := l.admin.AppsV1().Deployments(prod).UpdateScale(ctx, "cart", sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Errorf("the other writer: %v", err)
		}
	}

	t.Run("between plan and run", func(t *testing.T) {
		first, err := l.scale.Plan(ctx, scaleReq(prod, "cart", 5))
		if err != nil {
			t.Fatal(err)
		}
		setReplicas(t, 4)
		again, err := l.scale.Plan(ctx, scaleReq(prod, "cart", 5))
		if err != nil {
			t.Fatal(err)
		}
		if again.State == first.State || again.Summary != "cart replicas 4 -> 5" {
			t.Errorf("plan after a concurrent scale: state moved %v, summary %q", again.State != first.State, again.Summary)
		}
		l.settled(t, prod, "cart", 2)
	})

	for _, tc := range []struct {
		name   string
		method string
		suffix string
		run    func(*live) error
	}{
		{"scale", http.MethodPut, "/deployments/cart/scale", func(l *live) error {
			_, err := l.scale.Run(ctx, scaleReq(prod, "cart", 7))
			return err
		}},
		{"rollback", http.MethodPut, "/deployments/cart", func(l *live) error {
			_, err := l.rollback.Run(ctx, req(action.KubernetesRollback, params(prod, "cart")))
			return err
		}},
		{"restart", http.MethodPatch, "/deployments/cart", func(l *live) error {
			_, err := l.restart.Run(ctx, req(action.KubernetesRestart, params(prod, "cart")))
			return err
		}},
	} {
		t.Run("during "+tc.name, func(t *testing.T) {
			d := l.settled(t, prod, "cart", 2)
			other := replicasOf(d) + 1
			racy := newLive(t, c, interceptWrite(t, c.AdminConfig(), tc.method, tc.suffix, func() { setReplicas(t, other) }))
			mustErrIs(t, tc.run(racy), action.ErrConflict, prod+"/cart", "the object has been modified")
			d = l.settled(t, prod, "cart", 2)
			if *d.Spec.Replicas != other || images(&d.Spec.Template) != "shop/cart:v2" || d.Spec.Template.Annotations[RestartedAtAnnotation] != "" {
				t.Errorf("after the conflict: replicas %d (want the other writer's %d), image %s, restartedAt %q",
					*d.Spec.Replicas, other, images(&d.Spec.Template), d.Spec.Template.Annotations[RestartedAtAnnotation])
			}
		})
	}
}

// RBAC on a real API server, through Parley's own impersonating clients
// and through a service account's token: an operator who may scale only
// in staging scales there; in prod the API server refuses, at plan time
// already (the dry run), with its reason in the error.
func TestRealClusterRBAC(t *testing.T) {
	c := kubetest.Shared(t)
	prod, staging := c.NewNamespace(t, "prod"), c.NewNamespace(t, "staging")
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()
	l.deploy(t, prod, "search", "shop/search:v1")
	l.deploy(t, staging, "search", "shop/search:v1")

	const operator = "parley-staging-operator"
	// Reading: deployments and, for the revision a restart makes, their
	// ReplicaSets.
	read := rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list"}}
	readScale := rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"get"}}
	writeScale := rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"get", "update", "patch"}}
	saNS := c.NewNamespace(t, "parley")
	sa := c.ServiceAccountConfig(t, saNS, "operator")
	for _, s := range []rbacv1.Subject{kubetest.UserSubject(operator), kubetest.ServiceAccountSubject(saNS, "operator")} {
		c.Grant(t, staging, s, read, writeScale)
		c.Grant(t, prod, s, read, readScale) // prod: look, don't touch
	}

	kubeconfig := c.Kubeconfig(t)
	impersonating, err := NewClients(ClusterOptions{Kubeconfig: kubeconfig, Impersonate: map[string]Identity{
		"console:alice": {User: operator, Groups: []string{"parley-operators"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	saClient, err := clientset.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{c.AdminConfig().BearerToken, sa.BearerToken}

	for _, tc := range []struct {
		name, who string
		clients   ClientFor
	}{
		{"impersonated user", `User "` + operator + `"`, impersonating},
		{"service account", `User "system:serviceaccount:` + saNS + `:operator"`, StaticClient(kubego.Wrap(saClient))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newLive(t, c, tc.clients)
			want := replicasOf(l.settled(t, staging, "search", 1)) + 1

			// Staging: allowed.
			r := scaleReq(staging, "search", int(want))
			if _, err := op.scale.Plan(ctx, r); err != nil {
				t.Fatalf("plan in staging: %v", err)
			}
			if _, err := op.scale.Run(ctx, r); err != nil {
				t.Fatalf("scale in staging: %v", err)
			}
			if d := l.settled(t, staging, "search", 1); *d.Spec.Replicas != want {
				t.Errorf("staging replicas %d, want %d", *d.Spec.Replicas, want)
			}

			// Prod: the plan's dry run is refused with RBAC's reason, so
			// nobody is asked to confirm it; the write is refused too.
			reason := tc.who + ` cannot update resource "deployments/scale" in API group "apps" in the namespace "` + prod + `"`
			_, err := op.scale.Plan(ctx, scaleReq(prod, "search", 9))
			mustErrIs(t, err, action.ErrForbidden, "scale "+prod+"/search: dry run", reason)
			_, err = op.scale.Run(ctx, scaleReq(prod, "search", 9))
			mustErrIs(t, err, action.ErrForbidden, reason)
			if d := l.settled(t, prod, "search", 1); *d.Spec.Replicas != 3 {
				t.Errorf("prod replicas %d after refused scales", *d.Spec.Replicas)
			}

			// A restart needs patch on deployments, which the operator
			// lacks even in staging: refused at plan time.
			_, err = op.restart.Plan(ctx, req(action.KubernetesRestart, params(staging, "search")))
			mustErrIs(t, err, action.ErrForbidden, "restart "+staging+"/search: dry run", tc.who+` cannot patch resource "deployments"`)

			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Error("a token appears in an error")
				}
			}
		})
	}

	// A subject without a mapped identity never reaches the cluster.
	op := newLive(t, c, impersonating)
	mallory := req(action.KubernetesScale, params(staging, "search", "replicas", 1))
	mallory.Subject = "console:mallory"
	_, err = op.scale.Plan(ctx, mallory)
	mustErrIs(t, err, action.ErrForbidden, "no Kubernetes identity is mapped for console:mallory")
}

// An API server that accepts connections but never answers: every call
// ends with ErrUnavailable at the action's deadline, and nothing is left
// running. The server is an httptest server on 127.0.0.1 used as the
// kubeconfig's server; it needs no binaries.
func TestHangingAPIServer(t *testing.T) {
	before := runtime.NumGoroutine()
	requests := make(chan string, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case requests <- r.Method + " " + r.URL.Path:
		default:
		}
		<-r.Context().Done() // hang until the client gives up
	}))
	const token = "hanging-server-secret-token"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(path, &rest.Config{Host: srv.URL, BearerToken: token}); err != nil {
		t.Fatal(err)
	}
	clients, err := NewClients(ClusterOptions{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := Actions(Options{Clients: clients, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := params("prod", "checkout", "replicas", 5)
	for _, a := range acts {
		calls := map[string]func() error{"run": func() error { _, err := a.Run(context.Background(), req(a.Spec().Name, p)); return err }}
		if pl, ok := a.(action.Planner); ok {
			calls["plan"] = func() error { _, err := pl.Plan(context.Background(), req(a.Spec().Name, p)); return err }
		}
		for what, call := range calls {
			err := call()
			mustErrIs(t, err, action.ErrUnavailable, "did not answer in time")
			if strings.Contains(err.Error(), token) {
				t.Errorf("%s %s: the token appears in the error", a.Spec().Name, what)
			}
		}
	}
	if len(requests) == 0 {
		t.Fatal("the hanging server saw no request")
	}
	srv.Close() // waits for its handlers, which return once the clients hung up

	// Every goroutine the calls started ends (bounded wait, not a timing
	// assertion: a leak never converges).
	err = pollUntil(10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
	if err != nil {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines leaked: %v\n%s", err, buf[:runtime.Stack(buf, true)])
	}
}

func pollUntil(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
