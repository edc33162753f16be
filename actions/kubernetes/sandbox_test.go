package kubernetes

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestNewSandboxRejectsBadManifests(t *testing.T) {
	unknownField, err := os.ReadFile("testdata/bad-unknown-field.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		manifest string
		want     []string
	}{
		{"unknown field", string(unknownField), []string{"document 2 (Deployment prod/checkout)", `unknown field "spec.replcas"`}},
		{"yaml syntax", "apiVersion: v1\nkind: Namespace\nmetadata: {name: [prod\n", []string{"document 1"}},
		{"unknown kind", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g, namespace: prod}\n", []string{"document 1 (Gizmo prod/g)", "Gizmo"}},
		{"no kind", "metadata: {name: x}\n", []string{"document 1", "Kind"}},
		{"no namespace", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", []string{"document 1 (Pod p)", "without metadata.namespace"}},
		{"missing namespace object", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: qa}\n", []string{"document 1 (Pod qa/p)", `namespaces "qa" not found`}},
		{"duplicate", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", []string{"document 2 (Namespace a)", "already exists"}},
		{"relative time", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  creationTimestamp: now-3x\n", []string{"creationTimestamp: now-3x", "invalid duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSandbox(DemoManifests(), []byte(tc.manifest))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "sandbox manifest 2") { // the demo is manifest 1
				t.Errorf("error %q does not name manifest 2", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDemoLoadsWithoutRollingAnything(t *testing.T) {
	k := newKit(t)
	for _, tc := range []struct {
		ns, name string
		revs     []int64
	}{
		{"prod", "checkout", []int64{4, 3, 2}},
		{"prod", "payments", []int64{5, 4}},
		{"prod", "cart", []int64{1}},
		{"staging", "checkout", []int64{2, 1}},
	} {
		var revs []int64
		for _, rs := range k.replicaSets(t, tc.ns, tc.name) {
			revs = append(revs, revision(&rs))
		}
		if !slices.Equal(revs, tc.revs) {
			t.Errorf("%s/%s revisions %v, want %v (the manifest's templates must match their ReplicaSets)", tc.ns, tc.name, revs, tc.revs)
		}
	}
	d := k.deployment(t, "prod", "checkout")
	if d.Generation != 7 || d.Status.ObservedGeneration != 7 {
		t.Errorf("generation %d observed %d, want the manifest's 7", d.Generation, d.Status.ObservedGeneration)
	}
	if got := d.CreationTimestamp.Time; !got.Equal(t0.Add(-212 * 24 * time.Hour)) {
		t.Errorf("relative creationTimestamp now-212d loaded as %v", got)
	}
}

func TestSandboxAPISemantics(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	deployments := k.sb.Client().AppsV1().Deployments("prod")

	d := k.deployment(t, "prod", "cart")
	stale := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = "shop/cart:2.7.2"
	d.Status.Replicas = 99 // ignored: status is a subresource
	upd, err := deployments.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Generation != d.Generation+1 || upd.ResourceVersion == d.ResourceVersion {
		t.Errorf("update: generation %d -> %d, resourceVersion %s -> %s", d.Generation, upd.Generation, d.ResourceVersion, upd.ResourceVersion)
	}
	after := k.deployment(t, "prod", "cart")
	if after.Status.Replicas != 2 || after.Annotations[RevisionAnnotation] != "2" || after.Status.ObservedGeneration != upd.Generation {
		t.Errorf("controller did not roll the new image: status %+v revision %s", after.Status, after.Annotations[RevisionAnnotation])
	}
	stale.Spec.Replicas = ptr(int32(7))
	if _, err := deployments.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale update: %v, want a conflict", err)
	}

	sc, err := deployments.GetScale(ctx, "cart", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Replicas != 2 || sc.ResourceVersion != after.ResourceVersion || sc.Status.Selector != "app.kubernetes.io/name=cart" {
		t.Errorf("scale %+v", sc)
	}

	// A strategic merge patch with a stale resourceVersion is refused and changes nothing.
	patch := `{"metadata":{"resourceVersion":"` + stale.ResourceVersion + `"},"spec":{"replicas":9}}`
	if _, err := deployments.Patch(ctx, "cart", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale patch: %v, want a conflict", err)
	}
	if got := k.deployment(t, "prod", "cart"); *got.Spec.Replicas != 2 || got.ResourceVersion != after.ResourceVersion {
		t.Errorf("refused patch changed the deployment")
	}

	// A deleted pod is replaced; a deleted deployment takes its ReplicaSets and pods along.
	pods := k.pods(t, "prod", "cart")
	if err := k.sb.Client().CoreV1().Pods("prod").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(k.pods(t, "prod", "cart")); n != 2 {
		t.Errorf("%d pods after deleting one, want it replaced", n)
	}
	if err := deployments.Delete(ctx, "cart", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rss, _ := k.sb.Client().AppsV1().ReplicaSets("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cart"})
	podList, _ := k.sb.Client().CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cart"})
	if len(rss.Items) != 0 || len(podList.Items) != 0 {
		t.Errorf("after delete: %d ReplicaSets, %d pods left", len(rss.Items), len(podList.Items))
	}

	// Creating a deployment rolls it out.
	nd := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "prod"},
		Spec:       *after.Spec.DeepCopy(),
	}
	if _, err := deployments.Create(ctx, nd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := firstLine(k.statusText(t, "prod", "cart")); got != "cart (prod): 2/2 ready, image shop/cart:2.7.2, revision 1" {
		t.Errorf("status of a new deployment %q", got)
	}
	if _, err := k.sb.Client().AppsV1().Deployments("qa").Create(ctx, nd, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("create with mismatched namespaces: %v", err)
	}
	nd.Namespace = ""
	if _, err := k.sb.Client().AppsV1().Deployments("qa").Create(ctx, nd, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace: %v", err)
	}
}

func TestSandboxStatusSubresource(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()

	// A pod turning unready shows in the deployment's status.
	pod := k.pods(t, "prod", "checkout")[0]
	for i, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			pod.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	pod.Spec.NodeName = "elsewhere" // ignored by a status write
	if _, err := k.sb.Client().CoreV1().Pods("prod").UpdateStatus(ctx, &pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := firstLine(k.statusText(t, "prod", "checkout")); got != "checkout (prod): 2/3 ready, below minimum availability, image shop/checkout:1.4.2, revision 4" {
		t.Errorf("status with an unready pod %q", got)
	}
	p, err := k.sb.Client().CoreV1().Pods("prod").Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != sandboxNode {
		t.Errorf("a status write changed the spec: node %s", p.Spec.NodeName)
	}

	// Scaling down removes the unready pod first.
	if _, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 2)); err != nil {
		t.Fatal(err)
	}
	for _, q := range k.pods(t, "prod", "checkout") {
		if q.Name == pod.Name {
			t.Errorf("unready pod %s kept while scaling down", pod.Name)
		}
	}
	if got := firstLine(k.statusText(t, "prod", "checkout")); got != "checkout (prod): 2/2 ready, image shop/checkout:1.4.2, revision 4" {
		t.Errorf("status after scaling down %q", got)
	}

	// A status write to a deployment keeps its spec; the generation stays.
	d := k.deployment(t, "prod", "checkout")
	d.Spec.Replicas = ptr(int32(9))
	upd, err := k.sb.Client().AppsV1().Deployments("prod").UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *upd.Spec.Replicas != 2 || upd.Generation != d.Generation {
		t.Errorf("status write: replicas %d generation %d -> %d", *upd.Spec.Replicas, d.Generation, upd.Generation)
	}
}

// A tail of the demo log is the end of the whole log: making only the
// lines a tail needs must not change which lines those are.
func TestDemoLogTailIsTheEndOfTheWholeLog(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = "prod", "payments-7d9f-abcde"
	pod.Labels = map[string]string{"app.kubernetes.io/name": "payments"}
	pod.Spec.Containers = []corev1.Container{{Name: "payments", Image: "shop/payments:1.4.2"}}
	to := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		from  time.Time
		crash *corev1.ContainerStateTerminated
	}{
		{"long-running", to.Add(-6 * time.Hour), nil},
		{"young", to.Add(-40 * time.Second), nil},
		{"crashed", to.Add(-2 * time.Hour), &corev1.ContainerStateTerminated{ExitCode: 1}},
	} {
		all := demoLog(pod, "payments", tc.from, to, tc.crash, -1)
		for _, tail := range []int{0, 1, 3, 20, 100, 2000} {
			got := demoLog(pod, "payments", tc.from, to, tc.crash, tail)
			want := all[max(0, len(all)-tail):]
			if len(got) < len(want) {
				t.Fatalf("%s, tail %d: made %d lines, the tail needs %d", tc.name, tail, len(got), len(want))
			}
			got = got[len(got)-len(want):]
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s, tail %d: line %d is %q, the whole log's is %q", tc.name, tail, i, got[i].text, want[i].text)
				}
			}
		}
	}
}
