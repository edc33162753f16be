package kubernetes

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/parley-chatops/parley/internal/action"
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
		{"key given twice", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n", []string{"document 1 (Namespace b)", `line 5: key "name" already set`}},
		{"yaml syntax", "apiVersion: v1\nkind: Namespace\nmetadata: {name: [prod\n", []string{"document 1"}},
		{"unknown kind", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g, namespace: prod}\n", []string{"document 1 (Gizmo prod/g)", "Gizmo"}},
		{"unknown kind of a served group", "apiVersion: apps/v1\nkind: Gizmo\nmetadata: {name: g, namespace: prod}\n",
			[]string{"document 1 (Gizmo prod/g)", "does not serve apps/v1 Gizmo", "batch/v1"}},
		{"custom resource", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: prod}\n",
			[]string{"document 1 (Widget prod/w)", "does not serve example.com/v1 Widget"}},
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

// TestSandboxLeavesOutKindsOfOtherBuiltinGroups: a real application's
// manifests hold an Ingress, a PodDisruptionBudget, RBAC; the sandbox
// serves none of them, so it leaves them out, says which, and loads the
// rest.
func TestSandboxLeavesOutKindsOfOtherBuiltinGroups(t *testing.T) {
	manifest := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: prod}
spec: {rules: [{host: shop.example.com}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-settings, namespace: prod}
data: {mode: live}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: checkout, namespace: prod}
spec: {minAvailable: 1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
`
	sb, err := NewSandbox(DemoManifests(), []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sandbox manifest 2, document 1 (Ingress prod/shop)",
		"sandbox manifest 2, document 3 (PodDisruptionBudget prod/checkout)",
		"sandbox manifest 2, document 4 (ClusterRole reader)",
	}
	if got := sb.Unserved(); !slices.Equal(got, want) {
		t.Errorf("Unserved() = %q, want %q", got, want)
	}
	cm, err := sb.Client().CoreV1().ConfigMaps("prod").Get(t.Context(), "shop-settings", metav1.GetOptions{})
	if err != nil || cm.Data["mode"] != "live" {
		t.Errorf("the config map beside them was not loaded: %v %v", cm, err)
	}
	demo, err := NewSandbox(DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	if got := demo.Unserved(); len(got) != 0 {
		t.Errorf("the demo leaves out %q", got)
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
	if err := deleteObject(k.sb, podsGVR, "prod", pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(k.pods(t, "prod", "cart")); n != 2 {
		t.Errorf("%d pods after deleting one, want it replaced", n)
	}
	if err := deleteObject(k.sb, deploymentsGVR, "prod", "cart", metav1.DeleteOptions{}); err != nil {
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
	if _, err := create(k.sb, deploymentsGVR, "prod", nd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := firstLine(k.statusText(t, "prod", "cart")); got != "cart (prod): 2/2 ready, image shop/cart:2.7.2, revision 1" {
		t.Errorf("status of a new deployment %q", got)
	}
	if _, err := create(k.sb, deploymentsGVR, "qa", nd, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("create with mismatched namespaces: %v", err)
	}
	nd.Namespace = ""
	if _, err := create(k.sb, deploymentsGVR, "qa", nd, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
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
	if _, err := updateStatus(k.sb, podsGVR, "prod", &pod, metav1.UpdateOptions{}); err != nil {
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
	upd, err := updateStatus(k.sb, deploymentsGVR, "prod", d, metav1.UpdateOptions{})
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
		whole := demoLog(pod, "payments", tc.from, to, tc.crash, -1, false)
		all := whole.lines()
		if len(all) < 4 || strings.Join(all, "\n")+"\n" != whole.text {
			t.Fatalf("%s: lines %q do not make up the log %q", tc.name, all, whole.text)
		}
		for _, tail := range []int{0, 1, 3, 20, 100, 2000} {
			made := demoLog(pod, "payments", tc.from, to, tc.crash, tail, false)
			got := made.lines()
			want := all[max(0, len(all)-tail):]
			if len(got) < len(want) {
				t.Fatalf("%s, tail %d: made %d lines, the tail needs %d", tc.name, tail, len(got), len(want))
			}
			if last := made.last(tail); last != strings.Join(want, "\n")+strings.Repeat("\n", min(1, len(want))) {
				t.Fatalf("%s, tail %d: the last lines are %q, the whole log's are %q", tc.name, tail, last, want)
			}
			// Stamped, each line is the same line after its time.
			stamped := demoLog(pod, "payments", tc.from, to, tc.crash, tail, true).lines()
			for i, line := range stamped {
				at, rest, ok := strings.Cut(line, " ")
				if _, err := time.Parse(time.RFC3339Nano, at); !ok || err != nil || rest != got[i] {
					t.Fatalf("%s, tail %d: stamped line %d is %q, unstamped %q", tc.name, tail, i, line, got[i])
				}
			}
		}
	}
}

// The fake clientset records every request it serves and never lets go;
// the sandbox makes it forget once maxRecordedActions have piled up, so a
// demo that answers chat for days does not grow. The record still holds
// the latest requests, for tests, and a client held for the whole run (as
// the incident rollout reader holds one) is bounded too.
func TestSandboxForgetsRecordedRequests(t *testing.T) {
	k := newOncallKit(t)
	ctx := context.Background()
	held := k.sb.Client()
	status := req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"})
	logs := req(LogsName, action.Params{"namespace": "prod", "deployment": "payments", "lines": 5})
	most := 0
	for i := range 3 * maxRecordedActions {
		var err error
		switch i % 3 {
		case 0:
			_, err = k.status.Run(ctx, status)
		case 1:
			_, err = k.logs.Run(ctx, logs)
		default:
			_, err = held.AppsV1().Deployments("staging").Get(ctx, "cart", metav1.GetOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(k.sb.Fake().Actions()))
	}
	if most > maxRecordedActions+maxLogPods { // a logs request reads its pods' logs at once
		t.Errorf("the fake held %d recorded requests, want at most %d", most, maxRecordedActions+maxLogPods)
	}
	if most < maxRecordedActions-10 {
		t.Errorf("the fake held at most %d recorded requests: it forgets too early (bound %d)", most, maxRecordedActions)
	}
	// The newest request is still on record, after a test empties the
	// record itself two requests short of the bound, too.
	get := func() {
		t.Helper()
		if _, err := held.AppsV1().Deployments("staging").Get(ctx, "cart", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for k.sb.recorded.Load() > 1 { // until the record was emptied
		get()
	}
	for k.sb.recorded.Load() < maxRecordedActions-2 {
		get()
	}
	k.sb.Fake().ClearActions()
	if _, err := k.status.Run(ctx, status); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range k.sb.Fake().Actions() {
		got = append(got, a.GetVerb()+" "+a.GetResource().Resource)
	}
	if want := []string{"get deployments", "list replicasets", "list pods", "list events"}; !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
}

// A list is answered as the API server answers it: label and field
// selectors applied, in namespace and name order, and a field the server
// does not index refused with its message.
func TestSandboxListsHonourSelectors(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	c := k.sb.Client()
	names := func(list []corev1.Event) []string {
		var out []string
		for _, e := range list {
			out = append(out, e.Namespace+"/"+e.Name+" "+e.Type+" "+e.Reason)
		}
		return out
	}
	all, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		t.Fatal(err)
	}
	var want []corev1.Event
	for _, e := range all.Items {
		if e.Type == corev1.EventTypeWarning {
			want = append(want, e)
		}
	}
	if len(want) == 0 || len(want) == len(all.Items) {
		t.Fatalf("the demo should have warnings and other events: %q", names(all.Items))
	}
	if !slices.Equal(names(warnings.Items), names(want)) {
		t.Errorf("type=Warning listed %q, want %q", names(warnings.Items), names(want))
	}
	if !slices.IsSortedFunc(all.Items, func(a, b corev1.Event) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	}) {
		t.Errorf("events not in namespace and name order: %q", names(all.Items))
	}

	deps, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=checkout"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range deps.Items {
		got = append(got, d.Namespace+"/"+d.Name)
	}
	if want := []string{"prod/checkout", "staging/checkout"}; !slices.Equal(got, want) {
		t.Errorf("metadata.name=checkout listed %q, want %q", got, want)
	}

	pods, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=payments", FieldSelector: "status.phase=Running"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Errorf("running payments pods: %d, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Labels["app.kubernetes.io/name"] != "payments" {
			t.Errorf("pod %s does not match the label selector", p.Name)
		}
	}

	_, err = c.AppsV1().Deployments("prod").List(ctx, metav1.ListOptions{FieldSelector: "spec.replicas=3"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "field label not supported: spec.replicas") {
		t.Errorf("unsupported field selector: %v, want a bad request", err)
	}

	// What a list returns is a copy: changing it changes nothing stored.
	deps.Items[0].Spec.Replicas = ptr(int32(99))
	if d := k.deployment(t, "prod", "checkout"); replicasOf(d) == 99 {
		t.Error("a listed object changed the stored one")
	}
}

// The events the sandbox's controller records expire an hour after they
// were written, as the API server's do, so a demo serving for days keeps
// an hour of them; the manifests' events, the demo's history, stay.
func TestSandboxEventsExpire(t *testing.T) {
	now := t0
	sb, err := NewSandboxWithClock(func() time.Time { return now }, DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := sb.Client()
	count := func() (demo, recorded int) {
		t.Helper()
		list, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list.Items {
			if e.Reason == "ScalingReplicaSet" && e.LastTimestamp.Time.After(t0.Add(-time.Minute)) {
				recorded++
			} else {
				demo++
			}
		}
		return demo, recorded
	}
	demo, _ := count()
	for i, n := range []int32{5, 3, 4} {
		now = t0.Add(time.Duration(i) * 20 * time.Minute)
		sc, err := c.AppsV1().Deployments("prod").GetScale(ctx, "checkout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc.Spec.Replicas = n
		if _, err := c.AppsV1().Deployments("prod").UpdateScale(ctx, "checkout", sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		at       time.Duration
		recorded int
	}{
		{59 * time.Minute, 3},  // all three scales within the hour
		{61 * time.Minute, 2},  // the first is over an hour old
		{99 * time.Minute, 1},  // so is the second
		{101 * time.Minute, 0}, // and the third
	} {
		now = t0.Add(tc.at)
		d, r := count()
		if d != demo || r != tc.recorded {
			t.Errorf("at +%s: %d demo and %d recorded events, want %d and %d", tc.at, d, r, demo, tc.recorded)
		}
	}
	if len(sb.events) != 0 {
		t.Errorf("%d expired events still tracked", len(sb.events))
	}
}

// `parley serve` answers many conversations at once from one sandbox:
// reads, writes and the record's forgetting run concurrently (go test
// -race), and the cluster settles as the writes left it.
func TestSandboxServesConcurrently(t *testing.T) {
	k := newOncallKit(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				var err error
				switch (g + i) % 4 {
				case 0:
					_, err = k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
				case 1:
					_, err = k.logs.Run(ctx, req(LogsName, action.Params{"namespace": "prod", "deployment": "checkout", "lines": 5}))
				case 2:
					_, err = k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "staging"}))
				default:
					_, err = k.scale.Run(ctx, req(action.KubernetesScale, action.Params{"namespace": "staging", "deployment": "cart", "replicas": 1 + g%3}))
					if errors.Is(err, action.ErrConflict) {
						err = nil // another conversation scaled it between this one's read and write, as on a real cluster
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d := k.deployment(t, "staging", "cart")
	if want := replicasOf(d); d.Status.ReadyReplicas != want || int32(len(k.kit.pods(t, "staging", "cart"))) != want {
		t.Errorf("cart: %d desired, %d ready, %d pods", want, d.Status.ReadyReplicas, len(k.kit.pods(t, "staging", "cart")))
	}
	if n, bound := len(k.sb.Fake().Actions()), maxRecordedActions+8*maxLogPods; n > bound { // the bound, and what was in flight when the record was emptied
		t.Errorf("%d recorded requests, want at most %d", n, bound)
	}
}
