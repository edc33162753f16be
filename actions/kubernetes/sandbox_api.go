package kubernetes

// The sandbox's API-server layer: what a real API server does on writes
// that client-go's object tracker does not.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// react is the API-server layer in front of the object tracker. It
// handles writes, lists and the scale subresource; a plain get falls
// through to the tracker's own reaction. The fake calls it with its lock
// held, so it must not call the client, only the store.
//
// A write with dryRun=All is checked and answered exactly like the real
// write, but nothing is stored and no controller runs, as on a real API
// server (the tracker's own reaction would ignore the option and apply
// the change).
func (s *Sandbox) react(a k8stesting.Action) (bool, runtime.Object, error) {
	s.recorded.Add(1) // the fake recorded a before calling its reactors
	switch a := a.(type) {
	case k8stesting.ListActionImpl:
		s.mu.Lock()
		var err error
		if a.Resource == eventsGVR {
			err = s.expireEvents()
		}
		rv := s.rv
		s.mu.Unlock()
		if err != nil {
			return true, nil, err
		}
		r := a.GetListRestrictions()
		list, err := s.tracker.list(a.Resource, a.Kind, a.Namespace, r.Labels, r.Fields)
		if err != nil {
			return true, nil, err
		}
		if lm, err := meta.ListAccessor(list); err == nil {
			lm.SetResourceVersion(strconv.FormatInt(rv, 10))
		}
		return true, list, nil
	case k8stesting.GetActionImpl:
		if a.Resource == deploymentsGVR && a.Subresource == "scale" {
			obj, err := s.tracker.Get(deploymentsGVR, a.Namespace, a.Name)
			if err != nil {
				return true, nil, err
			}
			return true, scaleOf(obj.(*appsv1.Deployment)), nil
		}
		return false, nil, nil
	case k8stesting.CreateActionImpl:
		if a.Resource == selfSubjectAccessReviewsGVR {
			return true, allowed(a.Object), nil
		}
		if a.Subresource != "" {
			return true, nil, apierrors.NewMethodNotSupported(a.Resource.GroupResource(), "create "+a.Subresource)
		}
		dry := isDryRun(a.CreateOptions.DryRun)
		defer s.lockWrite(dry)()
		return s.written(a.Resource, dry)(s.create(a.Resource, a.Namespace, a.Object, false, dry))
	case k8stesting.UpdateActionImpl:
		dry := isDryRun(a.UpdateOptions.DryRun)
		defer s.lockWrite(dry)()
		if a.Resource == deploymentsGVR && a.Subresource == "scale" {
			return s.written(a.Resource, dry)(s.updateScale(a.Namespace, a.Object, dry))
		}
		if a.Subresource != "" && a.Subresource != "status" {
			return true, nil, apierrors.NewMethodNotSupported(a.Resource.GroupResource(), "update "+a.Subresource)
		}
		return s.written(a.Resource, dry)(s.update(a.Resource, a.Namespace, a.Object, a.Subresource, dry))
	case k8stesting.PatchActionImpl:
		if a.Subresource != "" {
			return true, nil, apierrors.NewMethodNotSupported(a.Resource.GroupResource(), "patch "+a.Subresource)
		}
		dry := isDryRun(a.PatchOptions.DryRun)
		defer s.lockWrite(dry)()
		return s.written(a.Resource, dry)(s.applyPatch(a, dry))
	case k8stesting.DeleteActionImpl:
		dry := isDryRun(a.DeleteOptions.DryRun)
		defer s.lockWrite(dry)()
		return true, nil, s.delete(a.Resource, a.Namespace, a.Name, a.DeleteOptions, dry)
	case k8stesting.DeleteCollectionActionImpl:
		return true, nil, apierrors.NewMethodNotSupported(a.Resource.GroupResource(), "deletecollection")
	case k8stesting.GenericActionImpl:
		if a.Resource == podsGVR && a.Subresource == "log" {
			return true, nil, nil // served by sandboxPods.Logs, which only asks whether a test injects a failure
		}
	}
	return false, nil, nil
}

// allowed answers a SelfSubjectAccessReview: the sandbox has no RBAC, so
// its one identity may do everything. Nothing is stored, as on a real API
// server.
func allowed(obj runtime.Object) runtime.Object {
	review, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
	if !ok {
		return nil
	}
	review = review.DeepCopy()
	review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "the sandbox cluster allows everything (it has no RBAC)"}
	return review
}

// isDryRun reports whether a write's dryRun option asks for a dry run.
func isDryRun(opt []string) bool {
	return slices.Contains(opt, metav1.DryRunAll)
}

// lockWrite takes the write lock and returns its release. For a dry run it
// also puts the resourceVersion and name counters back on release, so a
// dry run leaves no trace at all, not even in the names of later objects.
func (s *Sandbox) lockWrite(dry bool) (unlock func()) {
	s.mu.Lock()
	rv, seq := s.rv, s.seq
	return func() {
		if dry {
			s.rv, s.seq = rv, seq
		}
		s.mu.Unlock()
	}
}

// written finishes a successful write made through the API: the
// controllers react before the call returns, the caller gets the object as
// written (as from a real API server, before the controllers' changes).
func (s *Sandbox) written(gvr schema.GroupVersionResource, dry bool) func(runtime.Object, error) (bool, runtime.Object, error) {
	return func(obj runtime.Object, err error) (bool, runtime.Object, error) {
		if err != nil {
			return true, nil, err
		}
		if dry { // nothing was stored, so there is nothing to reconcile
			return true, obj, nil
		}
		written := obj
		if _, ok := obj.(*autoscalingv1.Scale); ok {
			m, _ := meta.Accessor(obj)
			if written, err = s.tracker.Get(deploymentsGVR, m.GetNamespace(), m.GetName()); err != nil {
				return true, nil, err
			}
		}
		if err := s.afterWrite(gvr, written); err != nil {
			return true, nil, apierrors.NewInternalError(fmt.Errorf("sandbox controller: %w", err))
		}
		return true, obj, nil
	}
}

func scaleOf(d *appsv1.Deployment) *autoscalingv1.Scale {
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	sc := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: d.Namespace, UID: d.UID,
			ResourceVersion: d.ResourceVersion, CreationTimestamp: d.CreationTimestamp},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicasOf(d)},
		Status: autoscalingv1.ScaleStatus{Replicas: d.Status.Replicas},
	}
	if sel != nil {
		sc.Status.Selector = sel.String()
	}
	return sc
}

func (s *Sandbox) nextRV() string {
	s.rv++
	return strconv.FormatInt(s.rv, 10)
}

// random returns deterministic pseudo-random bits for names and uids.
func (s *Sandbox) random() [32]byte {
	s.seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.seq)
	return sha256.Sum256(append([]byte("parley-sandbox/"), b[:]...))
}

func (s *Sandbox) newUID() types.UID {
	h := s.random()
	h[6] = h[6]&0x0f | 0x40 // version 4 layout, so it looks like any other uid
	h[8] = h[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

// nameSuffix is five characters from the alphabet Kubernetes uses for
// generated names.
func (s *Sandbox) nameSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := s.random()
	n := binary.BigEndian.Uint64(h[:8])
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[n%uint64(len(alphabet))]
		n /= uint64(len(alphabet))
	}
	return string(b)
}

func conflict(gvr schema.GroupVersionResource, name string) error {
	return apierrors.NewConflict(gvr.GroupResource(), name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// create stores a new object as the API server would: generated name,
// uid, creation time, generation and resourceVersion filled in, the
// namespace required to exist. Loading keeps uids, times and generations
// given in the manifest. A dry run returns the object without storing it.
func (s *Sandbox) create(gvr schema.GroupVersionResource, ns string, obj runtime.Object, loading, dry bool) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + s.nameSuffix())
	}
	if m.GetName() == "" {
		return nil, apierrors.NewBadRequest("name or generateName is required")
	}
	switch {
	case m.GetNamespace() == "":
		m.SetNamespace(ns)
	case ns != "" && m.GetNamespace() != ns:
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if ns := m.GetNamespace(); ns != "" {
		if _, err := s.tracker.Get(namespacesGVR, "", ns); err != nil {
			return nil, err
		}
	}
	if !loading || m.GetUID() == "" {
		m.SetUID(s.newUID())
	}
	if created := m.GetCreationTimestamp(); !loading || created.IsZero() {
		m.SetCreationTimestamp(metav1.NewTime(s.now().UTC().Truncate(time.Second)))
	}
	if !loading || m.GetGeneration() == 0 {
		m.SetGeneration(1)
	}
	if d, ok := obj.(*appsv1.Deployment); ok && d.Spec.Replicas == nil {
		d.Spec.Replicas = ptr(int32(1))
	}
	if rs, ok := obj.(*appsv1.ReplicaSet); ok && rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptr(int32(1))
	}
	m.SetResourceVersion(s.nextRV())
	if dry {
		if _, err := s.tracker.Get(gvr, m.GetNamespace(), m.GetName()); err == nil {
			return nil, apierrors.NewAlreadyExists(gvr.GroupResource(), m.GetName())
		}
		return obj, nil
	}
	if err := s.tracker.Create(gvr, obj, m.GetNamespace()); err != nil {
		return nil, err
	}
	if gvr == eventsGVR && !loading {
		s.events = append(s.events, written{ns: m.GetNamespace(), name: m.GetName(), at: s.now()})
		if err := s.expireEvents(); err != nil {
			return nil, err
		}
	}
	return s.tracker.Get(gvr, m.GetNamespace(), m.GetName())
}

// written is an object written at a time.
type written struct {
	ns, name string
	at       time.Time
}

// expireEvents deletes the events written more than eventRetention ago,
// as the API server's event TTL (--event-ttl) does, so a sandbox that
// serves a demo for days keeps an hour of its controller's events, not
// all of them. The manifests' events are the demo's history and stay. The
// caller holds s.mu.
func (s *Sandbox) expireEvents() error {
	cutoff := s.now().Add(-eventRetention)
	n := 0
	for _, e := range s.events {
		if !e.at.Before(cutoff) {
			break
		}
		if err := s.tracker.Delete(eventsGVR, e.ns, e.name); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		n++
	}
	s.events = slices.Delete(s.events, 0, n)
	return nil
}

func (s *Sandbox) update(gvr schema.GroupVersionResource, ns string, obj runtime.Object, subresource string, dry bool) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if m.GetNamespace() != "" && m.GetNamespace() != ns {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("request namespace %q does not match object namespace %q", ns, m.GetNamespace()))
	}
	old, err := s.tracker.Get(gvr, ns, m.GetName())
	if err != nil {
		return nil, err
	}
	om, _ := meta.Accessor(old)
	if rv := m.GetResourceVersion(); rv != "" && rv != om.GetResourceVersion() {
		return nil, conflict(gvr, m.GetName())
	}
	return s.store(gvr, old, obj.DeepCopyObject(), subresource, dry)
}

// store writes an updated object: identity and creation time kept, status
// or spec kept depending on the subresource, generation bumped on a spec
// change, a new resourceVersion. A dry run returns the object as it would
// be stored, with the old resourceVersion (as a real API server does), and
// stores nothing.
func (s *Sandbox) store(gvr schema.GroupVersionResource, old, obj runtime.Object, subresource string, dry bool) (runtime.Object, error) {
	om, _ := meta.Accessor(old)
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	m.SetNamespace(om.GetNamespace())
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetGeneration(om.GetGeneration())
	specChanged, err := splitStatus(old, obj, subresource)
	if err != nil {
		return nil, err
	}
	if specChanged {
		m.SetGeneration(om.GetGeneration() + 1)
	}
	if dry {
		m.SetResourceVersion(om.GetResourceVersion())
		return obj, nil
	}
	m.SetResourceVersion(s.nextRV())
	if err := s.tracker.Update(gvr, obj, om.GetNamespace()); err != nil {
		return nil, err
	}
	return s.tracker.Get(gvr, om.GetNamespace(), om.GetName())
}

// splitStatus makes obj keep old's status (a write of the main resource)
// or old's spec and metadata (a write of the status subresource), and
// reports whether the spec changed.
func splitStatus(old, obj runtime.Object, subresource string) (specChanged bool, err error) {
	mismatch := apierrors.NewBadRequest(fmt.Sprintf("object is a %T, not a %T", obj, old))
	switch o := old.(type) {
	case *appsv1.Deployment:
		n, ok := obj.(*appsv1.Deployment)
		if !ok {
			return false, mismatch
		}
		if subresource == "status" {
			n.Spec, n.ObjectMeta = o.Spec, *o.ObjectMeta.DeepCopy()
		} else {
			n.Status = o.Status
		}
		return !apiequality.Semantic.DeepEqual(o.Spec, n.Spec), nil
	case *appsv1.ReplicaSet:
		n, ok := obj.(*appsv1.ReplicaSet)
		if !ok {
			return false, mismatch
		}
		if subresource == "status" {
			n.Spec, n.ObjectMeta = o.Spec, *o.ObjectMeta.DeepCopy()
		} else {
			n.Status = o.Status
		}
		return !apiequality.Semantic.DeepEqual(o.Spec, n.Spec), nil
	case *corev1.Pod:
		n, ok := obj.(*corev1.Pod)
		if !ok {
			return false, mismatch
		}
		if subresource == "status" {
			n.Spec, n.ObjectMeta = o.Spec, *o.ObjectMeta.DeepCopy()
		} else {
			n.Status = o.Status
		}
		return false, nil // pods have no generation-tracked spec
	}
	return false, nil
}

func (s *Sandbox) updateScale(ns string, obj runtime.Object, dry bool) (runtime.Object, error) {
	sc, ok := obj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("scale update with a %T", obj))
	}
	if sc.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "Scale"}, sc.Name, nil)
	}
	old, err := s.tracker.Get(deploymentsGVR, ns, sc.Name)
	if err != nil {
		return nil, err
	}
	d := old.(*appsv1.Deployment)
	if sc.ResourceVersion != "" && sc.ResourceVersion != d.ResourceVersion {
		return nil, conflict(deploymentsGVR, sc.Name)
	}
	// d is the tracker's copy, ours alone: the update may share its
	// insides (store only sets metadata fields and the status, and the
	// tracker stores a copy of its own).
	upd := *d
	upd.Spec.Replicas = ptr(sc.Spec.Replicas)
	stored, err := s.store(deploymentsGVR, old, &upd, "", dry)
	if err != nil {
		return nil, err
	}
	return scaleOf(stored.(*appsv1.Deployment)), nil
}

// applyPatch lets the fake compute and store the patched object, then
// checks a resourceVersion in the patch as a precondition (restoring the
// old object on a mismatch or a dry run) and finishes the write like an
// update.
func (s *Sandbox) applyPatch(a k8stesting.PatchActionImpl, dry bool) (runtime.Object, error) {
	old, err := s.tracker.Get(a.Resource, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	_, patched, err := s.patch(a)
	if err != nil {
		return nil, err
	}
	om, _ := meta.Accessor(old)
	pm, err := meta.Accessor(patched)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	mismatch := pm.GetResourceVersion() != om.GetResourceVersion()
	if mismatch || dry { // the fake stored the patched object: put the old one back
		if err := s.tracker.Update(a.Resource, old, a.Namespace); err != nil {
			return nil, err
		}
	}
	if mismatch {
		return nil, conflict(a.Resource, a.Name)
	}
	return s.store(a.Resource, old, patched.DeepCopyObject(), "", dry)
}

// delete removes an object and, like the garbage collector, what it owns;
// the controller replaces what a deployment still wants.
func (s *Sandbox) delete(gvr schema.GroupVersionResource, ns, name string, opts metav1.DeleteOptions, dry bool) error {
	obj, err := s.tracker.Get(gvr, ns, name)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if p := opts.Preconditions; p != nil {
		if (p.UID != nil && *p.UID != m.GetUID()) || (p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion()) {
			return conflict(gvr, name)
		}
	}
	if dry {
		return nil
	}
	if err := s.deleteOwned(gvr, obj); err != nil {
		return err
	}
	return s.afterWrite(gvr, obj)
}

func (s *Sandbox) deleteOwned(gvr schema.GroupVersionResource, obj runtime.Object) error {
	m, _ := meta.Accessor(obj)
	if err := s.tracker.Delete(gvr, m.GetNamespace(), m.GetName()); err != nil {
		return err
	}
	var children schema.GroupVersionResource
	switch gvr {
	case deploymentsGVR:
		children = replicaSetsGVR
	case replicaSetsGVR:
		children = podsGVR
	default:
		return nil
	}
	for _, o := range s.tracker.owned(children, m.GetNamespace(), m.GetUID()) {
		if err := s.deleteOwned(children, o); err != nil {
			return err
		}
	}
	return nil
}

// afterWrite runs the controllers for what the written object belongs to:
// its deployment, or for a ReplicaSet without one, the ReplicaSet itself.
func (s *Sandbox) afterWrite(gvr schema.GroupVersionResource, obj runtime.Object) error {
	m, _ := meta.Accessor(obj)
	ns := m.GetNamespace()
	switch gvr {
	case deploymentsGVR:
		return s.reconcile(ns, m.GetName())
	case podsGVR:
		ref := metav1.GetControllerOfNoCopy(m)
		if ref == nil || ref.Kind != "ReplicaSet" {
			return nil
		}
		rsObj, err := s.tracker.Get(replicaSetsGVR, ns, ref.Name)
		if err != nil {
			return nil // an orphan now; nothing owns it
		}
		return s.afterWrite(replicaSetsGVR, rsObj)
	case replicaSetsGVR:
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.Kind == "Deployment" {
			return s.reconcile(ns, ref.Name)
		}
		rsObj, err := s.tracker.Get(replicaSetsGVR, ns, m.GetName())
		if err != nil {
			return nil // deleted
		}
		return s.syncReplicaSet(rsObj.(*appsv1.ReplicaSet))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
