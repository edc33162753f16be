package kube_test

// These tests run the REST client against a real kube-apiserver and
// kube-controller-manager (internal/testenv/kubetest), one cluster shared
// by the package's tests. Pod logs come through the API server's real
// pods/log from kubetest's fake kubelet (TLS, the API server's kubelet
// client certificate), so the whole log path is real but the container.
// Fixtures the narrow interface cannot make (deployments, pods, events,
// HPAs) are made with kubetest's admin client-go clientset.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func ptr[T any](v T) *T { return &v }

// cluster is the shared cluster, a REST client of it as the admin, the
// admin's client-go clientset for fixtures, and two namespaces of the
// test's own.
func cluster(t *testing.T) (c *kubetest.Cluster, k kube.Interface, admin kubernetes.Interface, ns1, ns2 string, ctx context.Context) {
	t.Helper()
	c = kubetest.Shared(t)
	k, err := kube.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c, k, c.AdminClient(), c.NewNamespace(t, "krest"), c.NewNamespace(t, "krest"), ctx
}

func names[T any](items []T, name func(*T) string) []string {
	var out []string
	for i := range items {
		out = append(out, name(&items[i]))
	}
	slices.Sort(out)
	return out
}

func TestAPIServerConfigMaps(t *testing.T) {
	_, k, _, ns1, ns2, ctx := cluster(t)
	label := "krest-cm=" + ns1 // unique to this test on the shared cluster
	mk := func(ns, name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"krest-cm": ns1}},
			Data: map[string]string{"k": name}}
	}
	a, err := k.CoreV1().ConfigMaps(ns1).Create(ctx, mk(ns1, "a"), metav1.CreateOptions{FieldManager: "krest"})
	if err != nil {
		t.Fatal(err)
	}
	if a.UID == "" || a.Namespace != ns1 || a.Data["k"] != "a" || a.Kind != "" {
		t.Errorf("created %+v", a)
	}
	for _, x := range []struct{ ns, name string }{{ns1, "b"}, {ns2, "c"}} {
		if _, err := k.CoreV1().ConfigMaps(x.ns).Create(ctx, mk(x.ns, x.name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.CoreV1().ConfigMaps(ns1).Create(ctx, mk(ns1, "a"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}

	cmName := func(c *corev1.ConfigMap) string { return c.Namespace + "/" + c.Name }
	l, err := k.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: label})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(l.Items, cmName), []string{ns1 + "/a", ns1 + "/b", ns2 + "/c"}; !slices.Equal(got, want) {
		t.Errorf("all namespaces, %s: %v, want %v", label, got, want)
	}
	l, err = k.CoreV1().ConfigMaps(ns1).List(ctx, metav1.ListOptions{LabelSelector: label, FieldSelector: "metadata.name=b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Items, cmName); !slices.Equal(got, []string{ns1 + "/b"}) {
		t.Errorf("field selector: %v", got)
	}
	page, err := k.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: label, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := k.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: label, Limit: 2, Continue: page.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Continue == "" || len(rest.Items) != 1 || rest.Continue != "" {
		t.Errorf("pages of 2: %d (continue %q), then %d", len(page.Items), page.Continue, len(rest.Items))
	}

	// Update, then a stale update.
	a.Data["k"] = "a2"
	a2, err := k.CoreV1().ConfigMaps(ns1).Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Data["k"] != "a2" || a2.ResourceVersion == a.ResourceVersion {
		t.Errorf("updated %+v", a2)
	}
	a.Data["k"] = "stale"
	if _, err := k.CoreV1().ConfigMaps(ns1).Update(ctx, a, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale update: %v, want Conflict", err)
	}

	// Dry runs change nothing.
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := k.CoreV1().ConfigMaps(ns1).Create(ctx, mk(ns1, "dry"), dry); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CoreV1().ConfigMaps(ns1).Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry-run create: %v, want NotFound", err)
	}
	a2.Data["k"] = "dry"
	if _, err := k.CoreV1().ConfigMaps(ns1).Update(ctx, a2, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if err := k.CoreV1().ConfigMaps(ns1).Delete(ctx, "b", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	got, err := k.CoreV1().ConfigMaps(ns1).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "a2" {
		t.Errorf("after a dry-run update: %v, %v", got, err)
	}
	if _, err := k.CoreV1().ConfigMaps(ns1).Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Errorf("after a dry-run delete: %v", err)
	}

	// Delete with a stale precondition, then for real.
	if err := k.CoreV1().ConfigMaps(ns1).Delete(ctx, "a", metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &a.ResourceVersion}}); !apierrors.IsConflict(err) {
		t.Errorf("delete with a stale precondition: %v, want Conflict", err)
	}
	if err := k.CoreV1().ConfigMaps(ns1).Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CoreV1().ConfigMaps(ns1).Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v, want NotFound", err)
	}
	if err := k.CoreV1().ConfigMaps(ns1).Delete(ctx, "a", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: %v, want NotFound", err)
	}
}

func TestAPIServerDeployments(t *testing.T) {
	_, k, admin, ns1, ns2, ctx := cluster(t)
	mk := func(name string) *appsv1.Deployment {
		labels := map[string]string{"app": name, "krest-deploy": ns1}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":1"}}},
				},
			},
		}
	}
	for _, x := range []struct{ ns, name string }{{ns1, "web"}, {ns2, "api"}} {
		if _, err := admin.AppsV1().Deployments(x.ns).Create(ctx, mk(x.name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d := k.AppsV1().Deployments(ns1)

	l, err := k.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "krest-deploy=" + ns1})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Items, func(d *appsv1.Deployment) string { return d.Namespace + "/" + d.Name }); !slices.Equal(got, []string{ns2 + "/api", ns1 + "/web"}) &&
		!slices.Equal(got, []string{ns1 + "/web", ns2 + "/api"}) {
		t.Errorf("deployments across namespaces: %v", got)
	}

	web, err := d.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Strategic merge patch: merge a label into the template.
	patched, err := d.Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"krest/restartedAt":"now"}}}}}`), metav1.PatchOptions{FieldManager: "krest"})
	if err != nil {
		t.Fatal(err)
	}
	if patched.Spec.Template.Annotations["krest/restartedAt"] != "now" || patched.Spec.Template.Labels["app"] != "web" {
		t.Errorf("patched template %+v", patched.Spec.Template.ObjectMeta)
	}
	// A dry-run patch changes nothing.
	if _, err := d.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"paused":true}}`),
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	// A JSON patch whose test fails is refused.
	if _, err := d.Patch(ctx, "web", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":7}]`),
		metav1.PatchOptions{}); err == nil || apierrors.ReasonForError(err) == metav1.StatusReasonUnknown {
		t.Errorf("failed json patch test: %v, want a StatusError", err)
	}
	// Server-side apply.
	applied, err := d.Patch(ctx, "web", types.ApplyPatchType,
		[]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"krest-applied":"yes"}}}`),
		metav1.PatchOptions{FieldManager: "krest-apply"})
	if err != nil {
		t.Fatal(err)
	}
	if applied.Labels["krest-applied"] != "yes" || applied.Spec.Paused {
		t.Errorf("applied %+v paused %v", applied.Labels, applied.Spec.Paused)
	}

	// Update with a stale resource version.
	web.Spec.MinReadySeconds = 5
	if _, err := d.Update(ctx, web, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale update: %v, want Conflict", err)
	}
	// A fresh copy updates (the controller writes status meanwhile, so
	// retry on conflict as any writer must).
	var updated *appsv1.Deployment
	for range 5 {
		cur, err := d.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.MinReadySeconds = 5
		if updated, err = d.Update(ctx, cur, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if updated == nil || updated.Spec.MinReadySeconds != 5 || updated.Labels["krest-applied"] != "yes" {
		t.Fatalf("updated %+v", updated)
	}

	// Scale.
	sc, err := d.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Replicas != 1 || sc.Name != "web" || sc.Status.Selector == "" {
		t.Errorf("scale %+v", sc)
	}
	stale := sc.DeepCopy()
	sc.Spec.Replicas = 4
	sc.ResourceVersion = "" // unconditional: the controller writes status meanwhile
	if _, err := d.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Get(ctx, "web", metav1.GetOptions{}); got == nil || *got.Spec.Replicas != 1 {
		t.Errorf("a dry-run scale changed replicas: %v", got)
	}
	sc2, err := d.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{FieldManager: "krest"})
	if err != nil {
		t.Fatal(err)
	}
	if sc2.Spec.Replicas != 4 {
		t.Errorf("scaled to %d", sc2.Spec.Replicas)
	}
	if got, err := d.Get(ctx, "web", metav1.GetOptions{}); err != nil || *got.Spec.Replicas != 4 {
		t.Errorf("after scale: %v, %v", got, err)
	}
	stale.Spec.Replicas = 2
	if _, err := d.UpdateScale(ctx, "web", stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale scale: %v, want Conflict", err)
	}
	if _, err := d.GetScale(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("scale of a missing deployment: %v, want NotFound", err)
	}

	// The deployment controller's replica sets, found by label.
	kubetest.WaitFor(t, 30*time.Second, "replica sets of web", func(ctx context.Context) error {
		rs, err := k.AppsV1().ReplicaSets(ns1).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(rs.Items) < 2 { // the template changed once: two revisions
			return fmt.Errorf("%d replica sets", len(rs.Items))
		}
		for _, r := range rs.Items {
			if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].Name != "web" {
				return fmt.Errorf("replica set %s owners %v", r.Name, r.OwnerReferences)
			}
		}
		return nil
	})
}

func TestAPIServerJobsDeletePropagation(t *testing.T) {
	_, k, admin, ns1, _, ctx := cluster(t)
	waitSA(t, admin, ns1)
	jobs := k.BatchV1().Jobs(ns1)
	mk := func(name string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"krest-job": "yes"}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "run", Image: "example.com/eval:1"}}}}}}
	}
	for _, name := range []string{"orphaned", "cascaded"} {
		j, err := jobs.Create(ctx, mk(name), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Name != name || j.Spec.Selector == nil {
			t.Errorf("created %+v", j)
		}
	}
	if _, err := jobs.Create(ctx, mk("dry"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	l, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: "krest-job=yes"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Items, func(j *batchv1.Job) string { return j.Name }); !slices.Equal(got, []string{"cascaded", "orphaned"}) {
		t.Errorf("jobs %v", got)
	}
	if j, err := jobs.Get(ctx, "orphaned", metav1.GetOptions{}); err != nil || j.Name != "orphaned" {
		t.Fatalf("get: %v, %v", j, err)
	}

	podOf := func(ctx context.Context, job string) (*corev1.Pod, error) {
		p, err := k.CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job})
		if err != nil {
			return nil, err
		}
		if len(p.Items) != 1 {
			return nil, fmt.Errorf("%d pods of job %s", len(p.Items), job)
		}
		return &p.Items[0], nil
	}
	for _, job := range []string{"orphaned", "cascaded"} {
		kubetest.WaitFor(t, 30*time.Second, "the pod of "+job, func(ctx context.Context) error { _, err := podOf(ctx, job); return err })
	}

	if err := jobs.Delete(ctx, "orphaned", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Get(ctx, "orphaned", metav1.GetOptions{}); err != nil {
		t.Fatalf("after a dry-run delete: %v", err)
	}
	// Orphan: the job goes, its pod stays and loses its owner.
	if err := jobs.Delete(ctx, "orphaned", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, 30*time.Second, "the orphaned pod", func(ctx context.Context) error {
		if _, err := jobs.Get(ctx, "orphaned", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("job still there: %v", err)
		}
		p, err := podOf(ctx, "orphaned")
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 {
			return fmt.Errorf("pod owners %v", p.OwnerReferences)
		}
		return nil
	})
	// Background: the garbage collector deletes the pod after the job.
	if err := jobs.Delete(ctx, "cascaded", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, 30*time.Second, "the cascaded pod to go", func(ctx context.Context) error {
		p, err := podOf(ctx, "cascaded")
		if err == nil {
			return fmt.Errorf("pod %s still there", p.Name)
		}
		if !strings.HasPrefix(err.Error(), "0 pods") {
			return err
		}
		return nil
	})
	if p, err := podOf(ctx, "orphaned"); err != nil {
		t.Errorf("the orphaned pod went: %v", err)
	} else if p.DeletionTimestamp != nil {
		t.Errorf("the orphaned pod is being deleted")
	}
}

// waitSA waits for the service account controller to make the
// namespace's default account, which pods are admitted with.
func waitSA(t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	kubetest.WaitFor(t, 30*time.Second, "the default service account", func(ctx context.Context) error {
		_, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func TestAPIServerEventsAndHPAs(t *testing.T) {
	_, k, admin, ns1, ns2, ctx := cluster(t)
	for _, ns := range []string{ns1, ns2} {
		_, err := admin.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web.1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "web"},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set web-1 to 1", Type: corev1.EventTypeNormal,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, MinReplicas: ptr[int32](2), MaxReplicas: 9},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	ev, err := k.CoreV1().Events(ns1).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Deployment,involvedObject.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Items) != 1 || ev.Items[0].Reason != "ScalingReplicaSet" || ev.Items[0].Namespace != ns1 {
		t.Errorf("events %+v", ev.Items)
	}
	ev, err = k.CoreV1().Events(ns1).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=other"})
	if err != nil || len(ev.Items) != 0 {
		t.Errorf("events of another object: %v, %v", ev, err)
	}
	h, err := k.AutoscalingV2().HorizontalPodAutoscalers(ns2).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Items) != 1 || h.Items[0].Spec.MaxReplicas != 9 || *h.Items[0].Spec.MinReplicas != 2 || h.Items[0].Namespace != ns2 {
		t.Errorf("HPAs %+v", h.Items)
	}
}

func TestAPIServerLeases(t *testing.T) {
	_, k, _, ns1, _, ctx := cluster(t)
	leases := k.CoordinationV1().Leases(ns1)
	now := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))
	l, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "parley-leader"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("replica-a"), LeaseDurationSeconds: ptr[int32](15), AcquireTime: &now, RenewTime: &now}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := leases.Get(ctx, "parley-leader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Spec.HolderIdentity != "replica-a" || !got.Spec.RenewTime.Equal(&now) {
		t.Errorf("lease %+v", got.Spec)
	}
	later := metav1.NewMicroTime(now.Add(5 * time.Second))
	got.Spec.RenewTime = &later
	renewed, err := leases.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Spec.RenewTime.Equal(&later) {
		t.Errorf("renewed %v", renewed.Spec.RenewTime)
	}
	// Another replica with the old copy loses the race.
	l.Spec.HolderIdentity = ptr("replica-b")
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale lease update: %v, want Conflict", err)
	}
	l.ResourceVersion = ""
	if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
}

func TestAPIServerAccessReviewsAndImpersonation(t *testing.T) {
	c, k, _, ns1, _, ctx := cluster(t)
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns1, Verb: "update", Group: "apps", Resource: "deployments", Subresource: "scale"}}}
	r, err := k.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Status.Allowed {
		t.Errorf("admin not allowed: %+v", r.Status)
	}

	nobody, err := kube.NewForConfig(c.ConfigFor("krest-nobody", "krest-group"))
	if err != nil {
		t.Fatal(err)
	}
	r, err = nobody.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Allowed {
		t.Errorf("a user with no rights allowed: %+v", r.Status)
	}
	_, err = nobody.CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "krest-nobody" cannot list resource "pods"`) {
		t.Errorf("list as nobody: %v, want Forbidden naming the user", err)
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil || se.ErrStatus.Details.Kind != "pods" {
		t.Errorf("status details %+v", se)
	}
	if _, err := nobody.AppsV1().Deployments(ns1).GetScale(ctx, "web", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get scale as nobody: %v, want Forbidden", err)
	}

	// Granted the list, the same identity may.
	c.Grant(t, ns1, kubetest.UserSubject("krest-nobody"), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}})
	kubetest.WaitFor(t, 10*time.Second, "the grant", func(ctx context.Context) error {
		_, err := nobody.CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{})
		return err
	})
}

func TestAPIServerVersion(t *testing.T) {
	_, k, admin, _, _, ctx := cluster(t)
	v, err := k.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if *v != *want || v.GitVersion == "" {
		t.Errorf("version %+v, client-go says %+v", v, want)
	}
}

func TestAPIServerPodsAndLogs(t *testing.T) {
	c, k, admin, ns1, ns2, ctx := cluster(t)
	kl := c.StartKubelet(t, "krest-node-"+ns1)
	for _, ns := range []string{ns1, ns2} {
		waitSA(t, admin, ns)
		_, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "app", Image: "example.com/web:1"}, {Name: "proxy", Image: "example.com/proxy:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kl.Schedule(t, ns, "web-1")
	}
	kl.Start(t, ns1, "web-1")
	kl.SetLog(ns1, "web-1", "app", false, "one\ntwo\nthree\n")
	kl.SetLog(ns1, "web-1", "app", true, "panic: out of memory\n")

	pods, err := k.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + kl.NodeName()})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(pods.Items, func(p *corev1.Pod) string { return p.Namespace }); len(got) != 2 {
		t.Errorf("pods on the node: %v", got)
	}
	p, err := k.CoreV1().Pods(ns1).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName != kl.NodeName() {
		t.Errorf("pod %s on %s", p.Status.Phase, p.Spec.NodeName)
	}

	logs := func(o *corev1.PodLogOptions) (string, error) {
		rc, err := k.CoreV1().Pods(ns1).Logs(ctx, "web-1", o)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		return string(b), err
	}
	if got, err := logs(&corev1.PodLogOptions{Container: "app"}); err != nil || got != "one\ntwo\nthree\n" {
		t.Errorf("log %q, %v", got, err)
	}
	if got, err := logs(&corev1.PodLogOptions{Container: "app", TailLines: ptr[int64](1), LimitBytes: ptr[int64](100)}); err != nil || got != "three\n" {
		t.Errorf("tail 1: %q, %v", got, err)
	}
	if got, err := logs(&corev1.PodLogOptions{Container: "app", Previous: true}); err != nil || got != "panic: out of memory\n" {
		t.Errorf("previous: %q, %v", got, err)
	}
	if got, err := logs(&corev1.PodLogOptions{Container: "app", Timestamps: true, SinceSeconds: ptr[int64](3600)}); err != nil ||
		!strings.HasSuffix(strings.SplitN(got, "\n", 2)[0], " one") {
		t.Errorf("timestamps: %q, %v", got, err)
	}
	reqs := kl.Requests()
	last := reqs[len(reqs)-1]
	if !last.Timestamps || last.Container != "app" {
		t.Errorf("the kubelet was asked %+v", last)
	}
	tail := reqs[len(reqs)-3]
	if tail.TailLines == nil || *tail.TailLines != 1 || tail.LimitBytes == nil || *tail.LimitBytes != 100 || !reqs[len(reqs)-2].Previous {
		t.Errorf("the kubelet was asked %+v then %+v", tail, reqs[len(reqs)-2])
	}

	// Refusals are StatusErrors.
	if _, err := logs(&corev1.PodLogOptions{}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "choose one of: [app proxy]") {
		t.Errorf("no container of two: %v, want BadRequest listing them", err)
	}
	if _, err := logs(&corev1.PodLogOptions{Container: "nope"}); !apierrors.IsBadRequest(err) {
		t.Errorf("missing container: %v, want BadRequest", err)
	}
	if _, err := k.CoreV1().Pods(ns1).Logs(ctx, "web-2", &corev1.PodLogOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("missing pod: %v, want NotFound", err)
	}
}
