package kubernetes

import (
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/kube/kubego"
)

// callEveryMethod makes one call of every kube.Interface method, with
// options (dry runs, selectors, preconditions) that the requests must
// carry, and ignores the answers.
func callEveryMethod(c kube.Interface) {
	ctx := context.Background()
	dry := []string{metav1.DryRunAll}
	tail := int64(5)
	core, apps := c.CoreV1(), c.AppsV1()
	_, _ = core.Pods("prod").Get(ctx, "p", metav1.GetOptions{ResourceVersion: "7"})
	_, _ = core.Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app=x", FieldSelector: "status.phase=Running"})
	if rc, err := core.Pods("prod").Logs(ctx, "p", &corev1.PodLogOptions{Container: "c", TailLines: &tail, Previous: true}); err == nil {
		_ = rc.Close()
	}
	_, _ = core.Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=x"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "prod"}, Data: map[string]string{"k": "v"}}
	_, _ = core.ConfigMaps("prod").Get(ctx, "cm", metav1.GetOptions{})
	_, _ = core.ConfigMaps("prod").List(ctx, metav1.ListOptions{LabelSelector: "a in (b, c)"})
	_, _ = core.ConfigMaps("prod").Create(ctx, cm, metav1.CreateOptions{DryRun: dry, FieldManager: "parley"})
	_, _ = core.ConfigMaps("prod").Update(ctx, cm, metav1.UpdateOptions{})
	_ = core.ConfigMaps("prod").Delete(ctx, "cm", metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions("u1")})
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "prod", ResourceVersion: "3"}}
	_, _ = apps.Deployments("prod").Get(ctx, "d", metav1.GetOptions{})
	_, _ = apps.Deployments("").List(ctx, metav1.ListOptions{})
	_, _ = apps.Deployments("prod").Update(ctx, d, metav1.UpdateOptions{DryRun: dry})
	_, _ = apps.Deployments("prod").Patch(ctx, "d", types.StrategicMergePatchType, []byte(`{"spec":{}}`), metav1.PatchOptions{DryRun: dry})
	_, _ = apps.Deployments("prod").GetScale(ctx, "d", metav1.GetOptions{})
	_, _ = apps.Deployments("prod").UpdateScale(ctx, "d", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: autoscalingv1.ScaleSpec{Replicas: 4}}, metav1.UpdateOptions{DryRun: dry})
	_, _ = apps.ReplicaSets("prod").List(ctx, metav1.ListOptions{LabelSelector: "app=x"})
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{GenerateName: "j-", Namespace: "prod"}}
	_, _ = c.BatchV1().Jobs("prod").Get(ctx, "j", metav1.GetOptions{})
	_, _ = c.BatchV1().Jobs("prod").List(ctx, metav1.ListOptions{LabelSelector: "parley.dev/action=x"})
	_, _ = c.BatchV1().Jobs("prod").Create(ctx, job, metav1.CreateOptions{DryRun: dry})
	_ = c.BatchV1().Jobs("prod").Delete(ctx, "j", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	_, _ = c.AutoscalingV2().HorizontalPodAutoscalers("prod").List(ctx, metav1.ListOptions{})
	_, _ = c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "prod", Verb: "get", Resource: "pods"}},
	}, metav1.CreateOptions{})
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "parley", Namespace: "prod"}}
	_, _ = c.CoordinationV1().Leases("prod").Get(ctx, "parley", metav1.GetOptions{})
	_, _ = c.CoordinationV1().Leases("prod").Create(ctx, lease, metav1.CreateOptions{})
	_, _ = c.CoordinationV1().Leases("prod").Update(ctx, lease, metav1.UpdateOptions{})
	_, _ = c.ServerVersion(ctx)
}

// The sandbox's client sends the requests client-go's fake clientset
// sends for the same calls (the sandbox was a fake clientset before it
// had its own client): the same action types, verbs, resources,
// subresources, namespaces, names, options and objects, so the API-server
// layer and the tests' reactors see what they saw.
func TestSandboxClientSendsTheFakeClientsetsRequests(t *testing.T) {
	cs := fake.NewSimpleClientset()
	// The fake's own reactions answer; its record is what it was sent.
	callEveryMethod(kubego.Wrap(cs))
	want := cs.Actions()

	sb, err := NewSandboxWithClock(clock, DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	sb.Fake().ClearActions()
	callEveryMethod(sb.Client())
	got := sb.Fake().Actions()

	if len(want) != 26 {
		t.Fatalf("the fake clientset recorded %d requests, want one for each of the 26 calls", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("the sandbox recorded %d requests, the fake clientset %d", len(got), len(want))
	}
	for i := range want {
		if reflect.TypeOf(got[i]) != reflect.TypeOf(want[i]) || !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("request %d:\n sandbox %T %+v\n    fake %T %+v", i, got[i], got[i], want[i], want[i])
		}
	}
}

// Every method of the client is served, as an API server serves it.
func TestSandboxClientServesEveryMethod(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	c := k.sb.Client()

	// Config maps: the whole life of one, with optimistic concurrency.
	cms := c.CoreV1().ConfigMaps("prod")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "notes"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil || cm.Namespace != "prod" || cm.ResourceVersion == "" || cm.UID == "" {
		t.Fatalf("create config map: %v %+v", err, cm)
	}
	stale := cm.DeepCopy()
	cm.Data["a"] = "2"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil || cm.Data["a"] != "2" {
		t.Fatalf("update config map: %v", err)
	}
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale config map update: %v, want a conflict", err)
	}
	if got, err := cms.Get(ctx, "notes", metav1.GetOptions{}); err != nil || got.Data["a"] != "2" {
		t.Errorf("get config map: %v %+v", err, got)
	}
	if list, err := cms.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 {
		t.Errorf("list config maps: %v %+v", err, list)
	}
	if err := cms.Delete(ctx, "notes", metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions("not-its-uid")}); !apierrors.IsConflict(err) {
		t.Errorf("delete with a wrong uid precondition: %v, want a conflict", err)
	}
	if err := cms.Delete(ctx, "notes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "notes", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get a deleted config map: %v, want not found", err)
	}

	// Jobs: a generated name, listed by label, deleted.
	jobs := c.BatchV1().Jobs("prod")
	job, err := jobs.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{GenerateName: "report-", Labels: map[string]string{"parley.dev/action": "report"}}}, metav1.CreateOptions{})
	if err != nil || !strings.HasPrefix(job.Name, "report-") || len(job.Name) != len("report-")+5 {
		t.Fatalf("create job: %v %+v", err, job)
	}
	if list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: "parley.dev/action=report"}); err != nil || len(list.Items) != 1 || list.Items[0].Name != job.Name {
		t.Errorf("list jobs by label: %v %+v", err, list)
	}
	if list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: "parley.dev/action=other"}); err != nil || len(list.Items) != 0 || list.ResourceVersion == "" {
		t.Errorf("list jobs by another label: %v %+v", err, list)
	}
	if got, err := jobs.Get(ctx, job.Name, metav1.GetOptions{}); err != nil || got.UID != job.UID {
		t.Errorf("get job: %v", err)
	}
	if err := jobs.Delete(ctx, job.Name, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}

	// Autoscalers: the demo's, if any, are listed without error.
	if _, err := c.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list autoscalers: %v", err)
	}

	// Leases: created, read and renewed; a stale renewal conflicts, as
	// leader election relies on.
	leases := c.CoordinationV1().Leases("prod")
	holder := "replica-1"
	lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "parley"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second lease create: %v, want already exists", err)
	}
	got, err := leases.Get(ctx, "parley", metav1.GetOptions{})
	if err != nil || *got.Spec.HolderIdentity != holder {
		t.Fatalf("get lease: %v", err)
	}
	renewed, err := leases.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil || renewed.ResourceVersion == got.ResourceVersion {
		t.Fatalf("renew lease: %v", err)
	}
	if _, err := leases.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale lease renewal: %v, want a conflict", err)
	}

	// Access reviews: the sandbox has no RBAC and allows everything;
	// nothing is stored.
	review, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "prod", Verb: "update", Group: "apps", Resource: "deployments", Subresource: "scale"}},
	}, metav1.CreateOptions{})
	if err != nil || !review.Status.Allowed || review.Spec.ResourceAttributes == nil || review.Spec.ResourceAttributes.Subresource != "scale" {
		t.Errorf("access review: %v %+v", err, review)
	}

	// The server version is the Kubernetes release of the API types.
	v, err := c.ServerVersion(ctx)
	if err != nil || v.Major != "1" || !strings.HasPrefix(v.GitVersion, "v1."+v.Minor+".") || !strings.HasSuffix(v.GitVersion, "+parley-sandbox") {
		t.Errorf("server version: %v %+v", err, v)
	}
	k.sb.Fake().PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	if _, err := c.ServerVersion(ctx); err == nil || err.Error() != "connection refused" {
		t.Errorf("server version with a failure injected: %v", err)
	}

	// Pod logs, and a canceled request.
	pod := k.pods(t, "prod", "checkout")[0]
	rc, err := c.CoreV1().Pods("prod").Logs(ctx, pod.Name, &corev1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	if err := errors.Join(err, rc.Close()); err != nil || !strings.Contains(string(body), "level=info") {
		t.Errorf("logs: %v %q", err, body)
	}
	if _, err := c.CoreV1().Pods("prod").Logs(ctx, "nope", nil); !apierrors.IsNotFound(err) {
		t.Errorf("logs of a missing pod: %v, want not found", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.CoreV1().Pods("prod").Logs(canceled, pod.Name, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("logs on a canceled request: %v", err)
	}

	// Selectors that do not parse are refused, as the API server refuses
	// them (client-go's fake clientset panics).
	if _, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app in (x"}); !apierrors.IsBadRequest(err) {
		t.Errorf("bad label selector: %v, want bad request", err)
	}
	if _, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{FieldSelector: "status.phase==Running=x"}); !apierrors.IsBadRequest(err) {
		t.Errorf("bad field selector: %v, want bad request", err)
	}

	// A reactor answering with the wrong type is an error, not a panic.
	k.sb.Fake().PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &corev1.Pod{}, nil
	})
	if _, err := c.AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{}); !apierrors.IsInternalError(err) {
		t.Errorf("a pod for a deployment: %v, want an internal error", err)
	}
}

// A list answered by a reactor is filtered by the label selector, as the
// fake clientset filters it.
func TestSandboxListFiltersWhatReactorsAnswer(t *testing.T) {
	k := newKit(t)
	k.sb.Fake().PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "42"}, Items: []corev1.Pod{
			{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"app": "x"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"app": "y"}}},
		}}, nil
	})
	list, err := k.sb.Client().CoreV1().Pods("prod").List(context.Background(), metav1.ListOptions{LabelSelector: "app=x"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "a" || list.ResourceVersion != "42" {
		t.Errorf("filtered list: %v %+v", err, list)
	}
}

// The sandbox reports the Kubernetes release of the API types it serves.
func TestSandboxVersionFollowsTheAPITypes(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/api")
	}
	if want := "v1." + string(m[1]); sandboxVersion != want {
		t.Errorf("sandboxVersion %s, want %s (k8s.io/api v0.%s)", sandboxVersion, want, m[1])
	}
}
