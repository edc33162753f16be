package kubernetes

import (
	"context"
	"reflect"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
)

func scaleReq(ns, name string, replicas int) action.Request {
	return req(action.KubernetesScale, action.Params{"namespace": ns, "deployment": name, "replicas": replicas})
}

func TestScalePlanRunAndStatusAfter(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	rssBefore := len(k.replicaSets(t, "prod", "checkout"))

	plan, err := k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Target != "prod/checkout" || plan.Summary != "checkout replicas 3 -> 5" ||
		!reflect.DeepEqual(plan.Changes, []action.Change{{Field: "replicas", Before: "3", After: "5"}}) || plan.State == "" {
		t.Errorf("plan %+v", plan)
	}

	res, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 5))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Scaled checkout (prod) 3 -> 5." ||
		!reflect.DeepEqual(res.Outcome, map[string]string{"replicas_before": "3", "replicas_after": "5"}) {
		t.Errorf("result %+v", res)
	}
	if got, want := firstLine(k.statusText(t, "prod", "checkout")), "checkout (prod): 5/5 ready, image shop/checkout:1.4.2, revision 4"; got != want {
		t.Errorf("status after scale %q, want %q", got, want)
	}
	if n := len(k.pods(t, "prod", "checkout")); n != 5 {
		t.Errorf("%d pods after scaling to 5", n)
	}
	if n := len(k.replicaSets(t, "prod", "checkout")); n != rssBefore {
		t.Errorf("scaling created ReplicaSets: %d -> %d", rssBefore, n)
	}

	// Down to one: the crash-prone payments pod (ready) stays only if it is newest; counts must match.
	if _, err := k.scale.Run(ctx, scaleReq("prod", "payments", 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(k.pods(t, "prod", "payments")); n != 1 {
		t.Errorf("%d payments pods after scaling to 1", n)
	}
	if got := firstLine(k.statusText(t, "prod", "payments")); got != "payments (prod): 1/1 ready, image shop/payments:2.1.0, revision 5" {
		t.Errorf("status after scale down %q", got)
	}
}

func TestScaleToSameCountIsANoOp(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	plan, err := k.scale.Plan(ctx, scaleReq("prod", "checkout", 3))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "checkout replicas 3 -> 3 (no change)" || len(plan.Changes) != 0 {
		t.Errorf("plan %+v", plan)
	}
	rv := k.deployment(t, "prod", "checkout").ResourceVersion
	res, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 3))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "checkout (prod) already has 3 replicas; nothing changed." {
		t.Errorf("result %q", res.Text)
	}
	if got := k.deployment(t, "prod", "checkout").ResourceVersion; got != rv {
		t.Errorf("no-op scale wrote the deployment: resourceVersion %s -> %s", rv, got)
	}
}

// A writer that changes the deployment between Run's read and its write
// must win: Run reports a conflict instead of overwriting.
func TestScaleConflict(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	reads := 0
	k.sb.Fake().PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		reads++
		_, obj, err := k.sb.react(a)
		if err != nil || reads != 1 {
			return true, obj, err
		}
		// Someone else scales to 4 right after this read.
		other := obj.DeepCopyObject().(*autoscalingv1.Scale)
		other.Spec.Replicas = 4
		if _, _, err := k.sb.react(k8stesting.NewUpdateSubresourceAction(deploymentsGVR, "scale", "prod", other)); err != nil {
			t.Errorf("concurrent scale: %v", err)
		}
		return true, obj, nil
	})
	_, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 5))
	mustErrIs(t, err, action.ErrConflict, "scale prod/checkout", "modified")
	if got := *k.deployment(t, "prod", "checkout").Spec.Replicas; got != 4 {
		t.Errorf("replicas %d after the conflict, want the concurrent writer's 4", got)
	}
}

func TestPlanStateTracksTheTarget(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	first, err := k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	if err != nil {
		t.Fatal(err)
	}
	// Status-only changes (the controller reacting to another deployment,
	// a pod replaced) do not move the target.
	if _, err := k.scale.Run(ctx, scaleReq("prod", "payments", 3)); err != nil {
		t.Fatal(err)
	}
	pod := k.pods(t, "prod", "checkout")[0]
	if err := deleteObject(k.sb, podsGVR, "prod", pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	if err != nil {
		t.Fatal(err)
	}
	if again.State != first.State {
		t.Errorf("state moved without a change to the target:\n%s\n%s", first.State, again.State)
	}

	// A replica change, a template change and a rollback each move it.
	if _, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 4)); err != nil {
		t.Fatal(err)
	}
	afterScale, _ := k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	if afterScale.State == first.State {
		t.Error("state unchanged after the replica count changed")
	}
	rb1, err := k.rollback.Plan(ctx, req(action.KubernetesRollback, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.restart.Run(ctx, req(action.KubernetesRestart, action.Params{"namespace": "prod", "deployment": "checkout"})); err != nil {
		t.Fatal(err)
	}
	afterRestart, _ := k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	if afterRestart.State == afterScale.State {
		t.Error("scale state unchanged after the template changed")
	}
	rb2, _ := k.rollback.Plan(ctx, req(action.KubernetesRollback, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if rb1.State == rb2.State {
		t.Error("rollback state unchanged after a new revision")
	}
}

func TestScaleUnknownDeployment(t *testing.T) {
	k := newKit(t)
	_, err := k.scale.Plan(context.Background(), scaleReq("staging", "search", 2))
	mustErrIs(t, err, action.ErrNotFound, `no deployment "search" in staging; nothing with a similar name (there: auth, cart, checkout, payments)`)
	_, err = k.scale.Plan(context.Background(), req(action.KubernetesScale, action.Params{"deployment": "checkout", "replicas": 2}))
	mustErrIs(t, err, action.ErrInvalid, "which namespace")
}

const autoscaled = `
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: dev}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "shop/api:1"}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: dev}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 10
`

func TestScalePlanWarnsAboutAnAutoscaler(t *testing.T) {
	k := newKit(t, []byte(autoscaled))
	plan, err := k.scale.Plan(context.Background(), scaleReq("dev", "api", 5))
	if err != nil {
		t.Fatal(err)
	}
	if want := "api replicas 2 -> 5 (note: HorizontalPodAutoscaler api manages its replicas (2-10) and may change them back)"; plan.Summary != want {
		t.Errorf("summary %q, want %q", plan.Summary, want)
	}
}
