package kubernetes

// The sandbox's store: the object tracker with an index
// beside it, so that a list answers like an API server's (label and field
// selectors applied where the objects are) instead of deep-copying every
// object of the resource and leaving the filtering to the caller.

import (
	"cmp"
	"slices"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// store is an ObjectTracker: the tracker the fake's object reaction reads,
// which stays the source of truth, and an index of what it holds. Every
// write goes to the tracker first and then refreshes the index from it, so
// the two never disagree about an object the sandbox wrote.
//
// The indexed objects are never handed out or changed in place: a list
// deep-copies the objects it returns and nothing else.
type store struct {
	tracker k8stesting.ObjectTracker
	scheme  *runtime.Scheme // the tracker's

	mu      sync.RWMutex
	objects map[schema.GroupVersionResource]map[string]map[string]runtime.Object // namespace, then name
}

var _ k8stesting.ObjectTracker = (*store)(nil)

func newStore(tracker k8stesting.ObjectTracker, scheme *runtime.Scheme) *store {
	return &store{tracker: tracker, scheme: scheme, objects: map[schema.GroupVersionResource]map[string]map[string]runtime.Object{}}
}

// refresh copies one object from the tracker into the index, or drops it
// from the index when the tracker no longer has it.
func (s *store) refresh(gvr schema.GroupVersionResource, ns, name string) error {
	obj, err := s.tracker.Get(gvr, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byNS := s.objects[gvr]
	if obj == nil {
		delete(byNS[ns], name)
		return nil
	}
	if byNS == nil {
		byNS = map[string]map[string]runtime.Object{}
		s.objects[gvr] = byNS
	}
	if byNS[ns] == nil {
		byNS[ns] = map[string]runtime.Object{}
	}
	byNS[ns][name] = obj
	return nil
}

// refreshWritten refreshes the object a write was given: its namespace is
// the request's when the object names none (as the tracker does).
func (s *store) refreshWritten(gvr schema.GroupVersionResource, obj runtime.Object, ns string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if m.GetNamespace() != "" {
		ns = m.GetNamespace()
	}
	return s.refresh(gvr, ns, m.GetName())
}

// Add implements k8stesting.ObjectTracker.
func (s *store) Add(obj runtime.Object) error {
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := s.Add(it); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.tracker.Add(obj); err != nil {
		return err
	}
	gvks, _, err := s.scheme.ObjectKinds(obj)
	if err != nil {
		return err
	}
	gvr, _ := meta.UnsafeGuessKindToResource(gvks[0]) // as the tracker names it
	return s.refreshWritten(gvr, obj, "")
}

// peek returns the indexed object, for reading only and within the
// sandbox: the index replaces objects and never changes them, so what
// peek returns stays as it was, whatever is written after. Not found is
// the tracker's error.
func (s *store) peek(gvr schema.GroupVersionResource, ns, name string) (runtime.Object, error) {
	s.mu.RLock()
	obj := s.objects[gvr][ns][name]
	s.mu.RUnlock()
	if obj == nil {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return obj, nil
}

// Get implements k8stesting.ObjectTracker.
func (s *store) Get(gvr schema.GroupVersionResource, ns, name string, opts ...metav1.GetOptions) (runtime.Object, error) {
	return s.tracker.Get(gvr, ns, name, opts...)
}

// Create implements k8stesting.ObjectTracker.
func (s *store) Create(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.CreateOptions) error {
	if err := s.tracker.Create(gvr, obj, ns, opts...); err != nil {
		return err
	}
	return s.refreshWritten(gvr, obj, ns)
}

// Update implements k8stesting.ObjectTracker.
func (s *store) Update(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.UpdateOptions) error {
	if err := s.tracker.Update(gvr, obj, ns, opts...); err != nil {
		return err
	}
	return s.refreshWritten(gvr, obj, ns)
}

// Patch implements k8stesting.ObjectTracker.
func (s *store) Patch(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.PatchOptions) error {
	if err := s.tracker.Patch(gvr, obj, ns, opts...); err != nil {
		return err
	}
	return s.refreshWritten(gvr, obj, ns)
}

// Apply implements k8stesting.ObjectTracker.
func (s *store) Apply(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.PatchOptions) error {
	if err := s.tracker.Apply(gvr, obj, ns, opts...); err != nil {
		return err
	}
	return s.refreshWritten(gvr, obj, ns)
}

// Delete implements k8stesting.ObjectTracker.
func (s *store) Delete(gvr schema.GroupVersionResource, ns, name string, opts ...metav1.DeleteOptions) error {
	if err := s.tracker.Delete(gvr, ns, name, opts...); err != nil {
		return err
	}
	return s.refresh(gvr, ns, name)
}

// Watch implements k8stesting.ObjectTracker.
func (s *store) Watch(gvr schema.GroupVersionResource, ns string, opts ...metav1.ListOptions) (watch.Interface, error) {
	return s.tracker.Watch(gvr, ns, opts...)
}

// List implements k8stesting.ObjectTracker: every object of the resource
// in ns (all namespaces when ns is empty).
func (s *store) List(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, ns string, _ ...metav1.ListOptions) (runtime.Object, error) {
	return s.list(gvr, gvk, ns, labels.Everything(), fields.Everything())
}

// list answers a list request as an API server does: the objects of the
// resource in ns that match both selectors, sorted by namespace and name,
// with the list's resourceVersion. A field selector on a field the API
// server does not index for the resource is refused as it refuses it.
func (s *store) list(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, ns string, lsel labels.Selector, fsel fields.Selector) (runtime.Object, error) {
	if lsel == nil {
		lsel = labels.Everything()
	}
	if fsel == nil {
		fsel = fields.Everything()
	}
	for _, r := range fsel.Requirements() {
		if !selectableField(gvr, r.Field) {
			return nil, apierrors.NewBadRequest("field label not supported: " + r.Field)
		}
	}
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	list, err := s.scheme.New(listGVK)
	if err != nil {
		return nil, err
	}
	var matched []runtime.Object
	s.mu.RLock()
	for n, byName := range s.objects[gvr] {
		if ns != "" && n != ns {
			continue
		}
		for _, obj := range byName {
			m, err := meta.Accessor(obj)
			if err != nil {
				continue
			}
			if !lsel.Empty() && !lsel.Matches(labels.Set(m.GetLabels())) {
				continue
			}
			if !fsel.Empty() && !fsel.Matches(objectFields{m, obj}) {
				continue
			}
			matched = append(matched, obj) // indexed objects are never changed: copied below
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(matched, func(a, b runtime.Object) int {
		am, _ := meta.Accessor(a)
		bm, _ := meta.Accessor(b)
		return cmp.Or(cmp.Compare(am.GetNamespace(), bm.GetNamespace()), cmp.Compare(am.GetName(), bm.GetName()))
	})
	if fillList(list, matched) {
		return list, nil
	}
	for i, obj := range matched {
		matched[i] = obj.DeepCopyObject()
	}
	if err := meta.SetList(list, matched); err != nil {
		return nil, err
	}
	return list, nil
}

// fillList sets the items of the lists the actions read most (pods,
// replica sets, deployments, events) to deep copies of objs, made in
// place in the list's items: meta.SetList would take a copy of each,
// copy that into the items and drop it. It reports false for any other
// list, which the caller fills.
func fillList(list runtime.Object, objs []runtime.Object) bool {
	switch l := list.(type) {
	case *corev1.PodList:
		return fillItems(&l.Items, objs)
	case *appsv1.ReplicaSetList:
		return fillItems(&l.Items, objs)
	case *appsv1.DeploymentList:
		return fillItems(&l.Items, objs)
	case *corev1.EventList:
		return fillItems(&l.Items, objs)
	}
	return false
}

// fillItems deep-copies objs into items (empty, not nil, for none, as
// SetList leaves it). An object of another type leaves items alone and
// reports false.
func fillItems[T any, PT interface {
	*T
	DeepCopyInto(*T)
}](items *[]T, objs []runtime.Object) bool {
	out := make([]T, len(objs))
	for i, obj := range objs {
		o, ok := obj.(PT)
		if !ok {
			return false
		}
		o.DeepCopyInto(&out[i])
	}
	*items = out
	return true
}

// selectableField reports whether the API server accepts a field selector
// on field for the resource: metadata.name and metadata.namespace on
// every resource, and the fields each resource indexes
// (pkg/registry/.../strategy.go, ToSelectableFields).
func selectableField(gvr schema.GroupVersionResource, field string) bool {
	if field == "metadata.name" || field == "metadata.namespace" {
		return true
	}
	switch gvr.GroupResource() {
	case podsGVR.GroupResource():
		switch field {
		case "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
			"spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName":
			return true
		}
	case eventsGVR.GroupResource():
		switch field {
		case "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
			"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
			"reason", "reportingComponent", "source", "type":
			return true
		}
	case replicaSetsGVR.GroupResource():
		return field == "status.replicas"
	case namespacesGVR.GroupResource():
		return field == "status.phase"
	}
	return false
}

// objectFields are the selectable fields of an object, read on demand
// (fields.Fields) rather than copied into a map for every object listed.
type objectFields struct {
	m   metav1.Object
	obj runtime.Object
}

// Has implements fields.Fields.
func (f objectFields) Has(field string) bool {
	_, ok := f.get(field)
	return ok
}

// Get implements fields.Fields.
func (f objectFields) Get(field string) string {
	v, _ := f.get(field)
	return v
}

func (f objectFields) get(field string) (string, bool) {
	switch field {
	case "metadata.name":
		return f.m.GetName(), true
	case "metadata.namespace":
		return f.m.GetNamespace(), f.m.GetNamespace() != ""
	}
	switch o := f.obj.(type) {
	case *corev1.Pod:
		switch field {
		case "spec.nodeName":
			return o.Spec.NodeName, true
		case "spec.restartPolicy":
			return string(o.Spec.RestartPolicy), true
		case "spec.schedulerName":
			return o.Spec.SchedulerName, true
		case "spec.serviceAccountName":
			return o.Spec.ServiceAccountName, true
		case "spec.hostNetwork":
			return strconv.FormatBool(o.Spec.HostNetwork), true
		case "status.phase":
			return string(o.Status.Phase), true
		case "status.podIP":
			return o.Status.PodIP, true
		case "status.nominatedNodeName":
			return o.Status.NominatedNodeName, true
		}
	case *corev1.Event:
		ref := &o.InvolvedObject
		switch field {
		case "involvedObject.kind":
			return ref.Kind, true
		case "involvedObject.namespace":
			return ref.Namespace, true
		case "involvedObject.name":
			return ref.Name, true
		case "involvedObject.uid":
			return string(ref.UID), true
		case "involvedObject.apiVersion":
			return ref.APIVersion, true
		case "involvedObject.resourceVersion":
			return ref.ResourceVersion, true
		case "involvedObject.fieldPath":
			return ref.FieldPath, true
		case "reason":
			return o.Reason, true
		case "reportingComponent":
			return o.ReportingController, true
		case "source":
			return o.Source.Component, true
		case "type":
			return o.Type, true
		}
	case *appsv1.ReplicaSet:
		if field == "status.replicas" {
			return strconv.Itoa(int(o.Status.Replicas)), true
		}
	case *corev1.Namespace:
		if field == "status.phase" {
			return string(o.Status.Phase), true
		}
	}
	return "", false
}

// owned returns deep copies of the objects of the resource in ns whose
// controller has the given uid, sorted by name.
func (s *store) owned(gvr schema.GroupVersionResource, ns string, owner types.UID) []runtime.Object {
	var out []runtime.Object
	s.mu.RLock()
	for _, obj := range s.objects[gvr][ns] {
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.UID == owner {
			out = append(out, obj.DeepCopyObject())
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b runtime.Object) int {
		am, _ := meta.Accessor(a)
		bm, _ := meta.Accessor(b)
		return cmp.Compare(am.GetName(), bm.GetName())
	})
	return out
}
