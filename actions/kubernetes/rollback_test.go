package kubernetes

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube/kubego"
)

func rollbackReq(ns, name string, rev ...int) action.Request {
	p := action.Params{"namespace": ns, "deployment": name}
	if len(rev) > 0 {
		p["revision"] = rev[0]
	}
	return req(action.KubernetesRollback, p)
}

func TestRollbackToPrevious(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	before := k.replicaSets(t, "prod", "payments")

	plan, err := k.rollback.Plan(ctx, rollbackReq("prod", "payments"))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Target != "prod/payments" || plan.Summary != "payments revision 5 -> 4 (image shop/payments:2.1.0 -> shop/payments:2.0.3)" ||
		!reflect.DeepEqual(plan.Changes, []action.Change{
			{Field: "revision", Before: "5", After: "4"},
			{Field: "image", Before: "shop/payments:2.1.0", After: "shop/payments:2.0.3"},
		}) {
		t.Errorf("plan %+v", plan)
	}
	res, err := k.rollback.Run(ctx, rollbackReq("prod", "payments"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Rolled back payments (prod) from revision 5 (shop/payments:2.1.0) to revision 4 (shop/payments:2.0.3)."; res.Text != want {
		t.Errorf("result %q, want %q", res.Text, want)
	}
	if res.Outcome["revision_before"] != "5" || res.Outcome["revision_after"] != "4" {
		t.Errorf("outcome %v", res.Outcome)
	}

	// As on a real cluster: the revision-4 ReplicaSet is reused and becomes
	// revision 6; the deployment gets its change-cause back.
	d := k.deployment(t, "prod", "payments")
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "shop/payments:2.0.3" {
		t.Errorf("image %s", got)
	}
	if _, ok := d.Spec.Template.Labels[podTemplateHashLabel]; ok {
		t.Error("pod-template-hash label copied into the deployment")
	}
	if d.Annotations[RevisionAnnotation] != "6" || d.Annotations[ChangeCauseAnnotation] != "deploy 2.0.3: retry card captures" {
		t.Errorf("deployment annotations %v", d.Annotations)
	}
	after := k.replicaSets(t, "prod", "payments")
	if len(after) != len(before) {
		t.Fatalf("rollback created a ReplicaSet: %d -> %d", len(before), len(after))
	}
	newest := after[0]
	if newest.UID != before[1].UID || revision(&newest) != 6 || newest.Annotations[RevisionHistoryAnnotation] != "4" || *newest.Spec.Replicas != 2 {
		t.Errorf("newest ReplicaSet %s revision %d history %q replicas %d", newest.Name, revision(&newest),
			newest.Annotations[RevisionHistoryAnnotation], *newest.Spec.Replicas)
	}
	if *after[1].Spec.Replicas != 0 {
		t.Errorf("old ReplicaSet %s still has %d replicas", after[1].Name, *after[1].Spec.Replicas)
	}
	for _, p := range k.pods(t, "prod", "payments") {
		if metav1.GetControllerOf(&p).UID != newest.UID {
			t.Errorf("pod %s belongs to an old ReplicaSet", p.Name)
		}
	}
	if got := firstLine(k.statusText(t, "prod", "payments")); got != "payments (prod): 2/2 ready, image shop/payments:2.0.3, revision 6" {
		t.Errorf("status after rollback %q", got)
	}

	// Rolling back again goes to revision 5's template, like kubectl rollout undo twice.
	res, err = k.rollback.Run(ctx, rollbackReq("prod", "payments"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Rolled back payments (prod) from revision 6 (shop/payments:2.0.3) to revision 5 (shop/payments:2.1.0)."; res.Text != want {
		t.Errorf("second rollback %q", res.Text)
	}
	// The history stays newest first, whatever order the names sort in.
	for _, name := range []string{"payments", "checkout", "frontend"} {
		if _, err := k.rollback.Run(ctx, rollbackReq("prod", name)); err != nil {
			t.Fatal(err)
		}
		var revs []int64
		for _, rs := range k.replicaSets(t, "prod", name) {
			revs = append(revs, revision(&rs))
		}
		if !slices.IsSortedFunc(revs, func(a, b int64) int { return cmp.Compare(b, a) }) || len(slices.Compact(slices.Clone(revs))) != len(revs) {
			t.Errorf("%s: revisions %v, want newest first", name, revs)
		}
	}
}

func TestRollbackToNamedRevision(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	res, err := k.rollback.Run(ctx, rollbackReq("prod", "checkout", 2))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Rolled back checkout (prod) from revision 4 (shop/checkout:1.4.2) to revision 2 (shop/checkout:1.4.0)."; res.Text != want {
		t.Errorf("result %q", res.Text)
	}
	st, err := k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if err != nil {
		t.Fatal(err)
	}
	if firstLine(st.Text) != "checkout (prod): 3/3 ready, image shop/checkout:1.4.0, revision 5" {
		t.Errorf("status %q", firstLine(st.Text))
	}
	var revs []string
	for _, r := range st.Table.Rows {
		revs = append(revs, r[0]+" "+r[1])
	}
	if want := []string{"5 (current) shop/checkout:1.4.0", "4 shop/checkout:1.4.2", "3 shop/checkout:1.4.1"}; !reflect.DeepEqual(revs, want) {
		t.Errorf("history %v, want %v", revs, want)
	}
}

func TestRollbackWithoutHistory(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	_, err := k.rollback.Plan(ctx, rollbackReq("prod", "cart"))
	mustErrIs(t, err, action.ErrNotFound, "rollback prod/cart", "only revision 1", "no earlier revision")
	_, err = k.rollback.Plan(ctx, rollbackReq("prod", "checkout", 9))
	mustErrIs(t, err, action.ErrNotFound, "revision 9 is not in the history", "revisions 4, 3, 2")

	// A deployment no controller ever rolled out has no ReplicaSets at all.
	bare := fake.NewSimpleClientset(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "dev", UID: "u1"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}}},
		},
	})
	rb, err := NewRollback(Options{Clients: StaticClient(kubego.Wrap(bare))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rb.Run(ctx, rollbackReq("dev", "api"))
	mustErrIs(t, err, action.ErrNotFound, "no rollout history found for api (dev)")
}

func TestRollbackToCurrentTemplateIsANoOp(t *testing.T) {
	k := newKit(t)
	res, err := k.rollback.Run(context.Background(), rollbackReq("prod", "checkout", 4))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Text, "nothing changed") || k.deployment(t, "prod", "checkout").Annotations[RevisionAnnotation] != "4" {
		t.Errorf("result %q", res.Text)
	}
}

const pausedManifest = `
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: dev}
spec:
  paused: true
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "shop/api:1"}]
`

func TestPausedDeploymentsAreRefused(t *testing.T) {
	k := newKit(t, []byte(pausedManifest))
	ctx := context.Background()
	_, err := k.rollback.Plan(ctx, rollbackReq("dev", "api"))
	mustErrIs(t, err, action.ErrInvalid, "paused", "kubectl rollout resume")
	_, err = k.restart.Run(ctx, req(action.KubernetesRestart, action.Params{"namespace": "dev", "deployment": "api"}))
	mustErrIs(t, err, action.ErrInvalid, "paused")
}

// Rollback and restart write with the resourceVersion they planned from:
// a change made in between is a conflict, never overwritten.
func TestMutationsDetectConcurrentChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(k *kit) error
	}{
		{"rollback", func(k *kit) error {
			_, err := k.rollback.Run(context.Background(), rollbackReq("prod", "checkout"))
			return err
		}},
		{"restart", func(k *kit) error {
			_, err := k.restart.Run(context.Background(), req(action.KubernetesRestart, action.Params{"namespace": "prod", "deployment": "checkout"}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKit(t)
			once := false
			// Both actions list ReplicaSets after reading the deployment;
			// someone scales the deployment at that moment.
			k.sb.Fake().PrependReactor("list", "replicasets", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if !once {
					once = true
					sc := scaleOf(k.deploymentLocked(t, "prod", "checkout"))
					sc.Spec.Replicas = 6
					if _, _, err := k.sb.react(k8stesting.NewUpdateSubresourceAction(deploymentsGVR, "scale", "prod", sc)); err != nil {
						t.Errorf("concurrent scale: %v", err)
					}
				}
				return false, nil, nil
			})
			mustErrIs(t, tc.run(k), action.ErrConflict, "prod/checkout")
			d := k.deployment(t, "prod", "checkout")
			if *d.Spec.Replicas != 6 || d.Annotations[RevisionAnnotation] != "4" {
				t.Errorf("after the conflict: replicas %d revision %s, want the concurrent 6 and the untouched 4", *d.Spec.Replicas, d.Annotations[RevisionAnnotation])
			}
		})
	}
}

// deploymentLocked reads a deployment from inside a reactor, where the
// clientset's lock is held and only the tracker may be used.
func (k *kit) deploymentLocked(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	obj, err := k.sb.tracker.Get(deploymentsGVR, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*appsv1.Deployment)
}

// A rollback right after a restart only undoes the restart: the prompt says
// so, names the image that stays, and points at the revision with the
// previous image.
func TestRollbackAfterRestartSaysWhatChanges(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	if _, err := k.restart.Run(ctx, req(action.KubernetesRestart, action.Params{"namespace": "prod", "deployment": "checkout"})); err != nil {
		t.Fatal(err)
	}
	plan, err := k.rollback.Plan(ctx, rollbackReq("prod", "checkout"))
	if err != nil {
		t.Fatal(err)
	}
	want := "checkout revision 5 -> 4: only the pod template annotation kubectl.kubernetes.io/restartedAt (undoing the restart of " +
		t0.Format("2006-01-02T15:04:05Z07:00") + ") changes; the image stays shop/checkout:1.4.2 " +
		"(revision 3 runs shop/checkout:1.4.1: ask to roll back to revision 3 for that)"
	if plan.Summary != want {
		t.Errorf("summary\n%s\nwant\n%s", plan.Summary, want)
	}
	if len(plan.Changes) != 2 || plan.Changes[1].Field != "the pod template annotation kubectl.kubernetes.io/restartedAt (undoing the restart of "+t0.Format("2006-01-02T15:04:05Z07:00")+")" {
		t.Errorf("changes %+v", plan.Changes)
	}
	// What the prompt promised is what happens: the image stays.
	if _, err := k.rollback.Run(ctx, rollbackReq("prod", "checkout")); err != nil {
		t.Fatal(err)
	}
	d := k.deployment(t, "prod", "checkout")
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "shop/checkout:1.4.2" {
		t.Errorf("image %s after undoing a restart", got)
	}
	if _, ok := d.Spec.Template.Annotations[RestartedAtAnnotation]; ok {
		t.Error("restartedAt still set")
	}
}

func TestTemplateDiff(t *testing.T) {
	base := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", podTemplateHashLabel: "abc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}},
	}
	env := base.DeepCopy()
	env.Labels[podTemplateHashLabel] = "def" // never a difference on its own
	env.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "fast"}}
	sa := base.DeepCopy()
	sa.Spec.ServiceAccountName = "other"
	restarted := base.DeepCopy()
	restarted.Annotations = map[string]string{RestartedAtAnnotation: "2026-11-20T10:00:00Z"}
	for name, tc := range map[string]struct {
		from, to *corev1.PodTemplateSpec
		want     string
	}{
		"env":        {env, &base, "the environment of container app"},
		"pod spec":   {sa, &base, "the pod spec"},
		"restart":    {restarted, &base, "the pod template annotation kubectl.kubernetes.io/restartedAt (undoing the restart of 2026-11-20T10:00:00Z)"},
		"re-restart": {&base, restarted, "the pod template annotation kubectl.kubernetes.io/restartedAt (back to the restart of 2026-11-20T10:00:00Z)"},
	} {
		if got := strings.Join(templateDiff(tc.from, tc.to), "; "); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// equalIgnoreHash is semantic equality apart from the pod-template-hash
// label, whichever of its shortcuts answers.
func TestEqualIgnoreHash(t *testing.T) {
	tmpl := func(mut func(*corev1.PodTemplateSpec)) *corev1.PodTemplateSpec {
		p := &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "checkout"}, Annotations: map[string]string{"a": "1"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/checkout:1.4.2",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		b    *corev1.PodTemplateSpec
		want bool
	}{
		{"same", tmpl(nil), true},
		{"hash label", tmpl(func(p *corev1.PodTemplateSpec) { p.Labels[podTemplateHashLabel] = "5d8f" }), true},
		{"same quantity written differently", tmpl(func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1000m")
		}), true},
		{"empty, not nil", tmpl(func(p *corev1.PodTemplateSpec) { p.Spec.Volumes = []corev1.Volume{} }), true},
		{"image", tmpl(func(p *corev1.PodTemplateSpec) { p.Spec.Containers[0].Image = "shop/checkout:1.4.1" }), false},
		{"container name", tmpl(func(p *corev1.PodTemplateSpec) { p.Spec.Containers[0].Name = "web" }), false},
		{"init container", tmpl(func(p *corev1.PodTemplateSpec) { p.Spec.InitContainers = []corev1.Container{{Name: "migrate"}} }), false},
		{"label", tmpl(func(p *corev1.PodTemplateSpec) { p.Labels["tier"] = "web" }), false},
		{"label value", tmpl(func(p *corev1.PodTemplateSpec) { p.Labels["app"] = "cart" }), false},
		{"label gone", tmpl(func(p *corev1.PodTemplateSpec) { p.Labels = map[string]string{podTemplateHashLabel: "5d8f"} }), false},
		{"restartedAt", tmpl(func(p *corev1.PodTemplateSpec) { p.Annotations[RestartedAtAnnotation] = "2026-11-20T10:00:00Z" }), false},
		{"quantity", tmpl(func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("2")
		}), false},
	} {
		a := tmpl(func(p *corev1.PodTemplateSpec) { p.Labels[podTemplateHashLabel] = "7c9b" })
		if got := equalIgnoreHash(a, tc.b); got != tc.want {
			t.Errorf("%s: equalIgnoreHash(a, b) = %v, want %v", tc.name, got, tc.want)
		}
		if got := equalIgnoreHash(tc.b, a); got != tc.want {
			t.Errorf("%s: equalIgnoreHash(b, a) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
