package kubernetes

import (
	"context"
	"slices"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// TestRealClusterAccessIsEnough: a service account granted exactly
// Access() in a namespace (and nothing else) can run every Kubernetes
// action there, plans and runs, and list the inventory when it is limited
// to that namespace. So what parley doctor checks is what the actions
// need.
func TestRealClusterAccessIsEnough(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "access")
	l := newLive(t, c, adminClients(t, c))
	ctx := context.Background()
	l.deploy(t, ns, "web", "shop/web:v1")
	l.setImage(t, ns, "web", "shop/web:v2", 2)

	var rules []rbacv1.PolicyRule
	for _, r := range Access() {
		res := r.Resource
		if r.Subresource != "" {
			res += "/" + r.Subresource
		}
		if len(r.Needed) == 0 || r.ClusterScoped {
			t.Errorf("right %+v: needed by nobody, or cluster-scoped (this test grants in a namespace)", r)
		}
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{r.Group}, Resources: []string{res}, Verbs: []string{r.Verb}})
	}
	saNS := c.NewNamespace(t, "parley")
	sa := c.ServiceAccountConfig(t, saNS, "parley")
	c.Grant(t, ns, kubetest.ServiceAccountSubject(saNS, "parley"), rules...)
	client, err := clientset.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Clients: StaticClient(kubego.Wrap(client)), Timeout: 30 * time.Second, Namespaces: []string{ns}}
	op := newLive(t, c, o.Clients)

	inv, err := NewInventory(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inv.Inventory(ctx)
	if err != nil || !slices.Contains(got.Namespaces, ns) {
		t.Fatalf("inventory = %+v, %v", got, err)
	}
	if _, err := op.status.Run(ctx, req(action.KubernetesStatus, params(ns, "web"))); err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, step := range []struct {
		name string
		act  interface {
			Plan(context.Context, action.Request) (action.Plan, error)
			Run(context.Context, action.Request) (action.Result, error)
		}
		r        action.Request
		revision int64 // the deployment's revision after it
	}{
		{"scale", op.scale, scaleReq(ns, "web", 4), 2},
		{"rollback", op.rollback, req(action.KubernetesRollback, params(ns, "web")), 3},
		{"restart", op.restart, req(action.KubernetesRestart, params(ns, "web")), 4},
	} {
		if _, err := step.act.Plan(ctx, step.r); err != nil {
			t.Fatalf("%s plan: %v", step.name, err)
		}
		if _, err := step.act.Run(ctx, step.r); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		l.settled(t, ns, "web", step.revision)
	}
	// the on-call reads, with the same rights
	pods, err := NewPods(o)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := NewLogs(o, LogsOptions{NoLogStore: true})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := NewChanges(o)
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func() (action.Result, error){
		PodsName: func() (action.Result, error) { return pods.Run(ctx, req(PodsName, params(ns, "web"))) },
		LogsName: func() (action.Result, error) { return logs.Run(ctx, req(LogsName, params(ns, "web"))) },
		ChangesName: func() (action.Result, error) {
			return changes.Run(ctx, req(ChangesName, action.Params{"namespace": ns}))
		},
	} {
		if _, err := run(); err != nil {
			t.Errorf("%s with exactly Access(): %v", name, err)
		}
	}
}
