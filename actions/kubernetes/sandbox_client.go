package kubernetes

// The sandbox's client: kube.Interface served by the sandbox. Every call
// becomes the request (a k8stesting.Action) that client-go's fake typed
// clients build for it, with the same verb, resource, subresource,
// namespace, options and object, and is served through the sandbox's
// k8stesting.Fake: recorded, offered to the reactors a test prepended, then
// to the API-server layer (react) and the object tracker. So react, and a
// test's reactor, see exactly the requests a fake clientset would send.

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/kube"
)

// maxRecordedActions bounds the requests the fake keeps in its record
// (Fake().Actions()). The fake appends every request it serves and never
// lets go, which in a sandbox serving a demo for days is a leak (about
// 1 MB every thousand chat requests); tests read the record right after
// the few requests they check.
const maxRecordedActions = 1024

// invoke serves one request: the fake records it and runs its reactors.
// The record is kept bounded here, before the call that would grow it.
// (The fake records under a lock that its reactors run inside, so the
// sandbox's reactor can only count; forgetting happens here, outside it.)
func (s *Sandbox) invoke(a k8stesting.Action, defaultReturn kruntime.Object) (kruntime.Object, error) {
	s.forgetActions()
	return s.fake.Invokes(a, defaultReturn)
}

// forgetActions empties the fake's record of requests once it holds
// maxRecordedActions or more. The count is checked against the record
// itself before it is emptied, since a test may have emptied it
// (ClearActions) since. Calls in flight at that moment may leave a few
// more on record than the bound.
func (s *Sandbox) forgetActions() {
	if s.recorded.Load() < maxRecordedActions {
		return
	}
	if n := len(s.fake.Actions()); n < maxRecordedActions { // once every maxRecordedActions calls
		s.recorded.Store(int64(n))
		return
	}
	s.recorded.Store(0)
	s.fake.ClearActions()
}

// result is what client-go's fake typed clients return for a request:
// the reactors' object, or the empty object when they returned none, with
// their error. An object of another type (a test's reactor answering
// wrongly) is an error, where the fake would panic.
func result[T kruntime.Object](obj kruntime.Object, err error, empty T) (T, error) {
	if obj == nil {
		return empty, err
	}
	t, ok := obj.(T)
	if !ok {
		return empty, apierrors.NewInternalError(fmt.Errorf("sandbox: a %T answered a request for a %T", obj, empty))
	}
	return t, err
}

// apiResource describes one resource for the sandbox's typed clients: T is
// its object type, L its list type and E the list's item type.
type apiResource[T, L kruntime.Object, E any] struct {
	gvr      schema.GroupVersionResource
	gvk      schema.GroupVersionKind // the object's kind, as the fake's list requests carry it
	newObj   func() T
	newList  func() L
	items    func(L) *[]E
	listMeta func(L) *metav1.ListMeta
}

// client is a resource in one namespace ("" for all, or cluster-scoped).
type client[T, L kruntime.Object, E any] struct {
	s  *Sandbox
	ns string
	r  *apiResource[T, L, E]
}

func (c client[T, L, E]) Get(_ context.Context, name string, opts metav1.GetOptions) (T, error) {
	empty := c.r.newObj()
	obj, err := c.s.invoke(k8stesting.NewGetActionWithOptions(c.r.gvr, c.ns, name, opts), empty)
	return result(obj, err, empty)
}

// List is the fake's list: the request carries the selectors as
// ListRestrictions (react applies both, as the API server does), and the
// answer is filtered by the label selector once more, as the fake filters
// whatever its reactors answer. Selectors that do not parse are refused
// as the API server refuses them (the fake would panic).
func (c client[T, L, E]) List(_ context.Context, opts metav1.ListOptions) (L, error) {
	empty := c.r.newList()
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return empty, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	fsel, err := fields.ParseSelector(opts.FieldSelector)
	if err != nil {
		return empty, apierrors.NewBadRequest(err.Error())
	}
	// k8stesting.NewListActionWithOptions, with the selectors parsed once.
	a := k8stesting.ListActionImpl{ListOptions: opts, ListRestrictions: k8stesting.ListRestrictions{Labels: sel, Fields: fsel}}
	a.Verb, a.Resource, a.Kind, a.Namespace = "list", c.r.gvr, c.r.gvk, c.ns
	obj, err := c.s.invoke(a, empty)
	list, err := result(obj, err, empty)
	if err != nil || obj == nil {
		return list, err
	}
	return c.filter(list, sel), nil
}

// filter keeps the items the label selector matches. A list whose items
// all match is returned as it is; otherwise a new list holds the matches
// (none: nil items, as the fake's), with the list's metadata.
func (c client[T, L, E]) filter(list L, sel labels.Selector) L {
	items := *c.r.items(list)
	all := len(items) > 0
	for i := range items {
		if !matches(sel, &items[i]) {
			all = false
			break
		}
	}
	if all {
		return list
	}
	out := c.r.newList()
	*c.r.listMeta(out) = *c.r.listMeta(list)
	var kept []E
	for i := range items {
		if matches(sel, &items[i]) {
			kept = append(kept, items[i])
		}
	}
	*c.r.items(out) = kept
	return out
}

// matches reports whether the selector matches an item's labels; an item
// without metadata matches nothing, as in the fake.
func matches(sel labels.Selector, item any) bool {
	m, ok := item.(metav1.Object)
	return ok && sel.Matches(labels.Set(m.GetLabels()))
}

func (c client[T, L, E]) Create(_ context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	empty := c.r.newObj()
	got, err := c.s.invoke(k8stesting.NewCreateActionWithOptions(c.r.gvr, c.ns, obj, opts), empty)
	return result(got, err, empty)
}

func (c client[T, L, E]) Update(_ context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	empty := c.r.newObj()
	got, err := c.s.invoke(k8stesting.NewUpdateActionWithOptions(c.r.gvr, c.ns, obj, opts), empty)
	return result(got, err, empty)
}

func (c client[T, L, E]) Patch(_ context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) (T, error) {
	empty := c.r.newObj()
	got, err := c.s.invoke(k8stesting.NewPatchSubresourceActionWithOptions(c.r.gvr, c.ns, name, pt, data, opts), empty)
	return result(got, err, empty)
}

func (c client[T, L, E]) Delete(_ context.Context, name string, opts metav1.DeleteOptions) error {
	_, err := c.s.invoke(k8stesting.NewDeleteActionWithOptions(c.r.gvr, c.ns, name, opts), c.r.newObj())
	return err
}

// The resources the sandbox's client serves.
var (
	podsResource = &apiResource[*corev1.Pod, *corev1.PodList, corev1.Pod]{
		gvr: podsGVR, gvk: corev1.SchemeGroupVersion.WithKind("Pod"),
		newObj: func() *corev1.Pod { return &corev1.Pod{} }, newList: func() *corev1.PodList { return &corev1.PodList{} },
		items:    func(l *corev1.PodList) *[]corev1.Pod { return &l.Items },
		listMeta: func(l *corev1.PodList) *metav1.ListMeta { return &l.ListMeta },
	}
	eventsResource = &apiResource[*corev1.Event, *corev1.EventList, corev1.Event]{
		gvr: eventsGVR, gvk: corev1.SchemeGroupVersion.WithKind("Event"),
		newObj: func() *corev1.Event { return &corev1.Event{} }, newList: func() *corev1.EventList { return &corev1.EventList{} },
		items:    func(l *corev1.EventList) *[]corev1.Event { return &l.Items },
		listMeta: func(l *corev1.EventList) *metav1.ListMeta { return &l.ListMeta },
	}
	configMapsResource = &apiResource[*corev1.ConfigMap, *corev1.ConfigMapList, corev1.ConfigMap]{
		gvr: corev1.SchemeGroupVersion.WithResource("configmaps"), gvk: corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		newObj: func() *corev1.ConfigMap { return &corev1.ConfigMap{} }, newList: func() *corev1.ConfigMapList { return &corev1.ConfigMapList{} },
		items:    func(l *corev1.ConfigMapList) *[]corev1.ConfigMap { return &l.Items },
		listMeta: func(l *corev1.ConfigMapList) *metav1.ListMeta { return &l.ListMeta },
	}
	deploymentsResource = &apiResource[*appsv1.Deployment, *appsv1.DeploymentList, appsv1.Deployment]{
		gvr: deploymentsGVR, gvk: appsv1.SchemeGroupVersion.WithKind("Deployment"),
		newObj: func() *appsv1.Deployment { return &appsv1.Deployment{} }, newList: func() *appsv1.DeploymentList { return &appsv1.DeploymentList{} },
		items:    func(l *appsv1.DeploymentList) *[]appsv1.Deployment { return &l.Items },
		listMeta: func(l *appsv1.DeploymentList) *metav1.ListMeta { return &l.ListMeta },
	}
	replicaSetsResource = &apiResource[*appsv1.ReplicaSet, *appsv1.ReplicaSetList, appsv1.ReplicaSet]{
		gvr: replicaSetsGVR, gvk: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		newObj: func() *appsv1.ReplicaSet { return &appsv1.ReplicaSet{} }, newList: func() *appsv1.ReplicaSetList { return &appsv1.ReplicaSetList{} },
		items:    func(l *appsv1.ReplicaSetList) *[]appsv1.ReplicaSet { return &l.Items },
		listMeta: func(l *appsv1.ReplicaSetList) *metav1.ListMeta { return &l.ListMeta },
	}
	jobsResource = &apiResource[*batchv1.Job, *batchv1.JobList, batchv1.Job]{
		gvr: batchv1.SchemeGroupVersion.WithResource("jobs"), gvk: batchv1.SchemeGroupVersion.WithKind("Job"),
		newObj: func() *batchv1.Job { return &batchv1.Job{} }, newList: func() *batchv1.JobList { return &batchv1.JobList{} },
		items:    func(l *batchv1.JobList) *[]batchv1.Job { return &l.Items },
		listMeta: func(l *batchv1.JobList) *metav1.ListMeta { return &l.ListMeta },
	}
	hpasResource = &apiResource[*autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2.HorizontalPodAutoscalerList, autoscalingv2.HorizontalPodAutoscaler]{
		gvr: autoscalingv2.SchemeGroupVersion.WithResource("horizontalpodautoscalers"), gvk: autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
		newObj:  func() *autoscalingv2.HorizontalPodAutoscaler { return &autoscalingv2.HorizontalPodAutoscaler{} },
		newList: func() *autoscalingv2.HorizontalPodAutoscalerList { return &autoscalingv2.HorizontalPodAutoscalerList{} },
		items: func(l *autoscalingv2.HorizontalPodAutoscalerList) *[]autoscalingv2.HorizontalPodAutoscaler {
			return &l.Items
		},
		listMeta: func(l *autoscalingv2.HorizontalPodAutoscalerList) *metav1.ListMeta { return &l.ListMeta },
	}
	leasesResource = &apiResource[*coordinationv1.Lease, *coordinationv1.LeaseList, coordinationv1.Lease]{
		gvr: coordinationv1.SchemeGroupVersion.WithResource("leases"), gvk: coordinationv1.SchemeGroupVersion.WithKind("Lease"),
		newObj: func() *coordinationv1.Lease { return &coordinationv1.Lease{} }, newList: func() *coordinationv1.LeaseList { return &coordinationv1.LeaseList{} },
		items:    func(l *coordinationv1.LeaseList) *[]coordinationv1.Lease { return &l.Items },
		listMeta: func(l *coordinationv1.LeaseList) *metav1.ListMeta { return &l.ListMeta },
	}
	selfSubjectAccessReviewsGVR = authorizationv1.SchemeGroupVersion.WithResource("selfsubjectaccessreviews")
)

// sandboxClient is kube.Interface on the sandbox.
type sandboxClient struct{ s *Sandbox }

var _ kube.Interface = sandboxClient{}

// InProcess: the sandbox answers from memory (kube.InProcess).
func (c sandboxClient) InProcess() bool { return true }

func (c sandboxClient) CoreV1() kube.CoreV1                   { return sandboxCore(c) }
func (c sandboxClient) AppsV1() kube.AppsV1                   { return sandboxApps(c) }
func (c sandboxClient) BatchV1() kube.BatchV1                 { return sandboxBatch(c) }
func (c sandboxClient) AutoscalingV2() kube.AutoscalingV2     { return sandboxAutoscaling(c) }
func (c sandboxClient) AuthorizationV1() kube.AuthorizationV1 { return sandboxAuthorization(c) }
func (c sandboxClient) CoordinationV1() kube.CoordinationV1   { return sandboxCoordination(c) }

// ServerVersion answers GET /version (a request a test can make fail,
// as with the fake's discovery client) with the Kubernetes release whose
// API types the sandbox serves.
func (c sandboxClient) ServerVersion(context.Context) (*version.Info, error) {
	a := k8stesting.ActionImpl{Verb: "get", Resource: schema.GroupVersionResource{Resource: "version"}}
	if _, err := c.s.invoke(a, nil); err != nil {
		return nil, err
	}
	info := sandboxVersionInfo()
	return &info, nil
}

// sandboxVersion is the Kubernetes release whose API types the sandbox
// serves: k8s.io/api v0.X.Y is Kubernetes v1.X.Y (a test keeps it in step
// with go.mod).
const sandboxVersion = "v1.37.2"

func sandboxVersionInfo() version.Info {
	minor := strings.Split(sandboxVersion, ".")[1]
	return version.Info{Major: "1", Minor: minor, GitVersion: sandboxVersion + "+parley-sandbox",
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

type sandboxCore sandboxClient

func (c sandboxCore) Pods(ns string) kube.Pods {
	return sandboxPods{client[*corev1.Pod, *corev1.PodList, corev1.Pod]{c.s, ns, podsResource}}
}

func (c sandboxCore) Events(ns string) kube.Events {
	return client[*corev1.Event, *corev1.EventList, corev1.Event]{c.s, ns, eventsResource}
}

func (c sandboxCore) ConfigMaps(ns string) kube.ConfigMaps {
	return client[*corev1.ConfigMap, *corev1.ConfigMapList, corev1.ConfigMap]{c.s, ns, configMapsResource}
}

type sandboxPods struct {
	client[*corev1.Pod, *corev1.PodList, corev1.Pod]
}

// Logs answers pods/log as the API server does: the log text, or a
// Status error (pod not found, container not valid, no previous
// container). The request is recorded in the fake's actions, and a
// reactor a test prepends on "get" "pods/log" can make it fail.
func (p sandboxPods) Logs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	if opts == nil {
		opts = &corev1.PodLogOptions{}
	}
	a := k8stesting.GenericActionImpl{ActionImpl: k8stesting.ActionImpl{Namespace: p.ns, Verb: "get", Resource: podsGVR, Subresource: "log"}, Value: opts}
	if _, err := p.s.invoke(a, nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	body, err := p.s.serveLog(p.ns, name, opts)
	if err != nil {
		return nil, err
	}
	return logBody{strings.NewReader(body), body}, nil
}

// logBody is a log read from memory (kube.TextBody): a reader takes its
// text as it is.
type logBody struct {
	*strings.Reader
	text string
}

func (logBody) Close() error { return nil }

// Text returns the whole log.
func (b logBody) Text() string { return b.text }

type sandboxApps sandboxClient

func (c sandboxApps) Deployments(ns string) kube.Deployments {
	return sandboxDeployments{client[*appsv1.Deployment, *appsv1.DeploymentList, appsv1.Deployment]{c.s, ns, deploymentsResource}}
}

func (c sandboxApps) ReplicaSets(ns string) kube.ReplicaSets {
	return client[*appsv1.ReplicaSet, *appsv1.ReplicaSetList, appsv1.ReplicaSet]{c.s, ns, replicaSetsResource}
}

type sandboxDeployments struct {
	client[*appsv1.Deployment, *appsv1.DeploymentList, appsv1.Deployment]
}

func (d sandboxDeployments) GetScale(_ context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error) {
	empty := &autoscalingv1.Scale{}
	obj, err := d.s.invoke(k8stesting.NewGetSubresourceActionWithOptions(deploymentsGVR, d.ns, "scale", name, opts), empty)
	return result(obj, err, empty)
}

func (d sandboxDeployments) UpdateScale(_ context.Context, _ string, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	empty := &autoscalingv1.Scale{}
	obj, err := d.s.invoke(k8stesting.NewUpdateSubresourceActionWithOptions(deploymentsGVR, "scale", d.ns, sc, opts), &autoscalingv1.Scale{})
	return result(obj, err, empty)
}

type sandboxBatch sandboxClient

func (c sandboxBatch) Jobs(ns string) kube.Jobs {
	return client[*batchv1.Job, *batchv1.JobList, batchv1.Job]{c.s, ns, jobsResource}
}

type sandboxAutoscaling sandboxClient

func (c sandboxAutoscaling) HorizontalPodAutoscalers(ns string) kube.HorizontalPodAutoscalers {
	return client[*autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2.HorizontalPodAutoscalerList, autoscalingv2.HorizontalPodAutoscaler]{c.s, ns, hpasResource}
}

type sandboxAuthorization sandboxClient

func (c sandboxAuthorization) SelfSubjectAccessReviews() kube.SelfSubjectAccessReviews {
	return sandboxReviews(c)
}

type sandboxReviews sandboxClient

// Create asks whether the client may do something; the sandbox has no
// RBAC and allows everything (react).
func (c sandboxReviews) Create(_ context.Context, review *authorizationv1.SelfSubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SelfSubjectAccessReview, error) {
	empty := &authorizationv1.SelfSubjectAccessReview{}
	obj, err := c.s.invoke(k8stesting.NewCreateActionWithOptions(selfSubjectAccessReviewsGVR, "", review, opts), empty)
	return result(obj, err, empty)
}

type sandboxCoordination sandboxClient

func (c sandboxCoordination) Leases(ns string) kube.Leases {
	return client[*coordinationv1.Lease, *coordinationv1.LeaseList, coordinationv1.Lease]{c.s, ns, leasesResource}
}
