package kubernetes

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
)

// snapshot is everything the sandbox stores that a plan could touch.
type snapshot struct {
	Deployments []appsv1.Deployment
	ReplicaSets []appsv1.ReplicaSet
	Pods        []corev1.Pod
	Events      []corev1.Event
}

func (k *kit) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	c := k.sb.Client()
	var s snapshot
	d, err1 := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	rs, err2 := c.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{})
	p, err3 := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	e, err4 := c.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	s.Deployments, s.ReplicaSets, s.Pods, s.Events = d.Items, rs.Items, p.Items, e.Items
	return s
}

// dryRuns lists the writes the fake served, as "verb resource/subresource
// dry|real".
func dryRuns(k *kit) []string {
	var out []string
	for _, a := range k.sb.Fake().Actions() {
		var opt []string
		switch a := a.(type) {
		case k8stesting.UpdateActionImpl:
			opt = a.UpdateOptions.DryRun
		case k8stesting.PatchActionImpl:
			opt = a.PatchOptions.DryRun
		case k8stesting.CreateActionImpl:
			opt = a.CreateOptions.DryRun
		case k8stesting.DeleteActionImpl:
			opt = a.DeleteOptions.DryRun
		default:
			continue
		}
		kind := "real"
		if isDryRun(opt) {
			kind = "dry"
		}
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource()+" "+kind)
	}
	return out
}

// Every plan submits its write as a server-side dry run, and none of them
// changes anything in the sandbox: not the objects, not their
// resourceVersions, not the controllers' ReplicaSets, pods or events.
func TestPlansNeverChangeTheSandbox(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	before := k.snapshot(t)

	planners := map[string]action.Planner{"scale": k.scale, "rollback": k.rollback, "restart": k.restart}
	for _, d := range before.Deployments {
		params := action.Params{"namespace": d.Namespace, "deployment": d.Name, "replicas": 7}
		for name, p := range planners {
			k.sb.Fake().ClearActions()
			if _, err := p.Plan(ctx, req("kubernetes."+name, params)); err != nil {
				if name == "rollback" && errors.Is(err, action.ErrNotFound) {
					continue // a deployment without an earlier revision
				}
				t.Fatalf("%s %s/%s: %v", name, d.Namespace, d.Name, err)
			}
			writes := dryRuns(k)
			if len(writes) != 1 || !slices.Contains([]string{"update deployments/scale dry", "update deployments/ dry", "patch deployments/ dry"}, writes[0]) {
				t.Errorf("%s %s/%s: writes %q, want one dry run", name, d.Namespace, d.Name, writes)
			}
		}
	}
	if after := k.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Error("planning changed the sandbox")
	}

	// Run writes for real, once, without a dry run of its own.
	k.sb.Fake().ClearActions()
	if _, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 5)); err != nil {
		t.Fatal(err)
	}
	if got := dryRuns(k); len(got) == 0 || got[0] != "update deployments/scale real" || slices.ContainsFunc(got, func(w string) bool { return w[len(w)-3:] == "dry" }) {
		t.Errorf("run writes %q", got)
	}
}

// A dry run is answered like the real write but stores nothing, on every
// verb, and leaves no trace in the names or resourceVersions handed out
// afterwards.
func TestSandboxDryRunStoresNothing(t *testing.T) {
	k := newKit(t)
	twin := newKit(t) // the same cluster, without the dry runs
	ctx := context.Background()
	dry := []string{metav1.DryRunAll}
	deployments := k.sb.Client().AppsV1().Deployments("prod")
	before := k.snapshot(t)

	d := k.deployment(t, "prod", "cart")
	d.Spec.Template.Spec.Containers[0].Image = "shop/cart:9.9.9"
	got, err := deployments.Update(ctx, d, metav1.UpdateOptions{DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != d.Generation+1 || got.ResourceVersion != d.ResourceVersion || got.Spec.Template.Spec.Containers[0].Image != "shop/cart:9.9.9" {
		t.Errorf("dry-run update answered generation %d (from %d), resourceVersion %s (from %s)", got.Generation, d.Generation, got.ResourceVersion, d.ResourceVersion)
	}
	stale := d.DeepCopy()
	stale.ResourceVersion = "1"
	if _, err := deployments.Update(ctx, stale, metav1.UpdateOptions{DryRun: dry}); !apierrors.IsConflict(err) {
		t.Errorf("stale dry-run update: %v, want a conflict as for the real write", err)
	}

	sc, err := deployments.GetScale(ctx, "cart", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 9
	if gotScale, err := deployments.UpdateScale(ctx, "cart", sc, metav1.UpdateOptions{DryRun: dry}); err != nil || gotScale.Spec.Replicas != 9 {
		t.Errorf("dry-run scale: %v %+v", err, gotScale)
	}

	patch := `{"spec":{"template":{"metadata":{"annotations":{"` + RestartedAtAnnotation + `":"2026-11-20T10:00:00Z"}}}}}`
	if got, err := deployments.Patch(ctx, "cart", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{DryRun: dry}); err != nil ||
		got.Spec.Template.Annotations[RestartedAtAnnotation] != "2026-11-20T10:00:00Z" {
		t.Errorf("dry-run patch: %v", err)
	}

	if err := deleteObject(k.sb, deploymentsGVR, "prod", "cart", metav1.DeleteOptions{DryRun: dry}); err != nil {
		t.Errorf("dry-run delete: %v", err)
	}
	if err := deleteObject(k.sb, deploymentsGVR, "prod", "nope", metav1.DeleteOptions{DryRun: dry}); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run delete of a missing deployment: %v", err)
	}

	gen := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "notes-", Namespace: "prod"}}
	created, err := k.sb.Client().CoreV1().ConfigMaps("prod").Create(ctx, gen, metav1.CreateOptions{DryRun: dry})
	if err != nil || created.Name == "" || created.Name == "notes-" {
		t.Errorf("dry-run create: %v %+v", err, created)
	}
	if _, err := create(k.sb, deploymentsGVR, "prod", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart"}, Spec: d.Spec},
		metav1.CreateOptions{DryRun: dry}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("dry-run create of an existing deployment: %v", err)
	}

	if after := k.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Error("dry runs changed the sandbox")
	}
	if list, _ := k.sb.Client().CoreV1().ConfigMaps("prod").List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("dry-run create stored %d config maps", len(list.Items))
	}

	// The next real writes get the same names and versions as in a
	// sandbox that never saw the dry runs.
	realCM := func(k *kit) *corev1.ConfigMap {
		cm, err := k.sb.Client().CoreV1().ConfigMaps("prod").Create(ctx, gen, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	if a, b := realCM(k), realCM(twin); a.Name != b.Name || a.UID != b.UID || a.ResourceVersion != b.ResourceVersion {
		t.Errorf("dry runs left a trace: %s/%s/%s vs %s/%s/%s", a.Name, a.UID, a.ResourceVersion, b.Name, b.UID, b.ResourceVersion)
	}
}

// A plan shows the server's answer to its dry run, not only what Parley
// asked for: here an admission step (a reactor standing in for a mutating
// webhook) caps replicas at 4.
func TestScalePlanShowsTheServersAnswer(t *testing.T) {
	k := newKit(t)
	k.sb.Fake().PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u := a.(k8stesting.UpdateActionImpl)
		if u.Subresource != "scale" || !isDryRun(u.UpdateOptions.DryRun) {
			return false, nil, nil
		}
		_, obj, err := k.sb.react(a)
		if err != nil {
			return true, nil, err
		}
		capped := obj.(*autoscalingv1.Scale).DeepCopy()
		capped.Spec.Replicas = min(capped.Spec.Replicas, 4)
		return true, capped, nil
	})
	plan, err := k.scale.Plan(context.Background(), scaleReq("prod", "checkout", 50))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "checkout replicas 3 -> 4" || !reflect.DeepEqual(plan.Changes, []action.Change{{Field: "replicas", Before: "3", After: "4"}}) {
		t.Errorf("plan %+v", plan)
	}
}

// A rollback or restart the API server would refuse fails at plan time
// with the server's reason.
func TestPlansReportTheDryRunRefusal(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	const reason = `admission webhook "policy.example.com" denied the request: prod is frozen`
	k.sb.Fake().PrependReactor("*", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a := a.(type) {
		case k8stesting.UpdateActionImpl:
			if isDryRun(a.UpdateOptions.DryRun) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "checkout", errors.New(reason))
			}
		case k8stesting.PatchActionImpl:
			if isDryRun(a.PatchOptions.DryRun) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "checkout", errors.New(reason))
			}
		}
		return false, nil, nil
	})
	params := action.Params{"namespace": "prod", "deployment": "checkout"}
	_, err := k.rollback.Plan(ctx, req(action.KubernetesRollback, params))
	mustErrIs(t, err, action.ErrForbidden, "rollback prod/checkout: dry run", reason)
	_, err = k.restart.Plan(ctx, req(action.KubernetesRestart, params))
	mustErrIs(t, err, action.ErrForbidden, "restart prod/checkout: dry run", reason)
}

// A plan's dry run checks the change on the current object: it carries no
// resourceVersion, so a status update by a controller between the plan's
// read and its dry run cannot fail the plan.
func TestPlanDryRunsCarryNoPrecondition(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	p := action.Params{"namespace": "prod", "deployment": "checkout", "replicas": 5}
	for _, pl := range []action.Planner{k.scale, k.rollback, k.restart} {
		if _, err := pl.Plan(ctx, req("x", p)); err != nil {
			t.Fatal(err)
		}
	}
	var checked int
	for _, a := range k.sb.Fake().Actions() {
		switch a := a.(type) {
		case k8stesting.UpdateActionImpl:
			if m, _ := meta.Accessor(a.Object); isDryRun(a.UpdateOptions.DryRun) {
				checked++
				if m.GetResourceVersion() != "" {
					t.Errorf("dry-run update of %s/%s carries resourceVersion %s", a.Resource.Resource, a.Subresource, m.GetResourceVersion())
				}
			}
		case k8stesting.PatchActionImpl:
			if isDryRun(a.PatchOptions.DryRun) {
				checked++
				if strings.Contains(string(a.Patch), "resourceVersion") {
					t.Errorf("dry-run patch carries a resourceVersion: %s", a.Patch)
				}
			}
		}
	}
	if checked != 3 {
		t.Errorf("%d dry runs, want 3", checked)
	}
}

// Run's write meets a conflict because a controller updated the status
// between Run's read and its write: nothing the plan depends on moved, so
// Run plans again and writes. (TestScaleConflict and
// TestMutationsDetectConcurrentChanges: a real change is a conflict.)
func TestRunRetriesAStatusOnlyConflict(t *testing.T) {
	for _, tc := range []struct {
		name, verb, sub string
		run             func(k *kit) (action.Result, error)
		check           func(t *testing.T, d *appsv1.Deployment)
	}{
		{"scale", "update", "scale", func(k *kit) (action.Result, error) {
			return k.scale.Run(context.Background(), scaleReq("prod", "checkout", 5))
		}, func(t *testing.T, d *appsv1.Deployment) {
			if *d.Spec.Replicas != 5 {
				t.Errorf("replicas %d", *d.Spec.Replicas)
			}
		}},
		{"rollback", "update", "", func(k *kit) (action.Result, error) {
			return k.rollback.Run(context.Background(), req(action.KubernetesRollback, action.Params{"namespace": "prod", "deployment": "checkout"}))
		}, func(t *testing.T, d *appsv1.Deployment) {
			if d.Annotations[RevisionAnnotation] != "5" {
				t.Errorf("revision %s after the rollback", d.Annotations[RevisionAnnotation])
			}
		}},
		{"restart", "patch", "", func(k *kit) (action.Result, error) {
			return k.restart.Run(context.Background(), req(action.KubernetesRestart, action.Params{"namespace": "prod", "deployment": "checkout"}))
		}, func(t *testing.T, d *appsv1.Deployment) {
			if d.Spec.Template.Annotations[RestartedAtAnnotation] == "" {
				t.Error("no restartedAt")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKit(t)
			writes := 0
			k.sb.Fake().PrependReactor(tc.verb, "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != tc.sub || strings.HasSuffix(dryRunsOf(a), "dry") {
					return false, nil, nil
				}
				writes++
				if writes == 1 { // the controller reports on the pods first
					obj, err := k.sb.tracker.Get(deploymentsGVR, "prod", "checkout")
					if err != nil {
						t.Fatal(err)
					}
					d := obj.(*appsv1.Deployment).DeepCopy()
					d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{Type: "Checked", Status: corev1.ConditionTrue})
					if _, _, err := k.sb.react(k8stesting.NewUpdateSubresourceAction(deploymentsGVR, "status", "prod", d)); err != nil {
						t.Fatal(err)
					}
				}
				return false, nil, nil // on to the sandbox, which checks the resourceVersion
			})
			if _, err := tc.run(k); err != nil {
				t.Fatalf("run: %v", err)
			}
			if writes != 2 {
				t.Errorf("%d writes, want the refused one and its retry", writes)
			}
			tc.check(t, k.deployment(t, "prod", "checkout"))
		})
	}
}

// dryRunsOf is "dry" or "real" for a write action.
func dryRunsOf(a k8stesting.Action) string {
	switch a := a.(type) {
	case k8stesting.UpdateActionImpl:
		if isDryRun(a.UpdateOptions.DryRun) {
			return "dry"
		}
	case k8stesting.PatchActionImpl:
		if isDryRun(a.PatchOptions.DryRun) {
			return "dry"
		}
	}
	return "real"
}
