package kubernetes

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The sandbox's deployment and ReplicaSet controllers. They follow the real
// ones (k8s.io/kubernetes/pkg/controller/deployment) in everything the
// actions and a status reply can observe, but settle in one synchronous
// pass instead of stepping through a rolling update:
//
//   - the ReplicaSet whose template equals the deployment's (ignoring
//     pod-template-hash) is the new one; if it has an older revision (a
//     rollback) it becomes revision max+1 and remembers the old number in
//     revision-history; if there is none, deployment-<hash> is created
//     with revision max+1 (a paused deployment gets no new ReplicaSet);
//   - the new ReplicaSet runs spec.replicas pods, all others zero, and old
//     ReplicaSets beyond revisionHistoryLimit are deleted;
//   - pods are created Running and Ready, or deleted (unready, then newest
//     first) to match each ReplicaSet;
//   - deployment annotations are copied to the new ReplicaSet, the
//     deployment gets its revision annotation, status counts from the pods,
//     observedGeneration and the Available and Progressing conditions.
//
// All of it runs with the sandbox lock held and writes to the tracker
// directly, never through the clientset.

// sandboxNode is the node every sandbox pod runs on.
const sandboxNode = "sandbox-node-1"

func (s *Sandbox) reconcile(ns, name string) error {
	obj, err := s.tracker.Get(deploymentsGVR, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := obj.(*appsv1.Deployment)
	rss := s.replicaSetsOf(d)
	var maxRev int64
	var newRS *appsv1.ReplicaSet
	for _, rs := range rss {
		maxRev = max(maxRev, revision(rs))
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) && (newRS == nil || revision(rs) > revision(newRS)) {
			newRS = rs
		}
	}
	switch {
	case newRS == nil && !d.Spec.Paused:
		if newRS, err = s.newReplicaSet(d, maxRev+1); err != nil {
			return err
		}
		rss = append(rss, newRS)
	case newRS != nil:
		upd := newRS.DeepCopy()
		if old := revision(newRS); old < maxRev {
			history := slices.DeleteFunc(strings.Split(upd.Annotations[RevisionHistoryAnnotation], ","), func(s string) bool { return s == "" })
			setAnnotation(&upd.ObjectMeta, RevisionHistoryAnnotation, strings.Join(append(history, strconv.FormatInt(old, 10)), ","))
			setAnnotation(&upd.ObjectMeta, RevisionAnnotation, strconv.FormatInt(maxRev+1, 10))
		}
		copyDeploymentAnnotations(d, upd)
		if !apiequality.Semantic.DeepEqual(upd.Annotations, newRS.Annotations) {
			if err := s.put(replicaSetsGVR, upd); err != nil {
				return err
			}
			*newRS = *upd
		}
	}

	active := newRS
	if active == nil && len(rss) > 0 { // paused before its new template rolled out
		active = rss[0]
	}
	for _, rs := range rss {
		want := int32(0)
		if active != nil && rs.UID == active.UID {
			want = replicasOf(d)
		}
		if *rs.Spec.Replicas != want {
			if err := s.scaleReplicaSet(d, rs, want); err != nil {
				return err
			}
		}
		if err := s.syncReplicaSet(rs); err != nil {
			return err
		}
	}
	if err := s.cleanupHistory(d, rss, active); err != nil {
		return err
	}
	return s.updateDeploymentStatus(d, newRS)
}

// replicaSetsOf lists the ReplicaSets a deployment controls, newest
// revision first.
func (s *Sandbox) replicaSetsOf(d *appsv1.Deployment) []*appsv1.ReplicaSet {
	objs := s.tracker.owned(replicaSetsGVR, d.Namespace, d.UID)
	out := make([]*appsv1.ReplicaSet, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*appsv1.ReplicaSet))
	}
	slices.SortStableFunc(out, func(a, b *appsv1.ReplicaSet) int {
		if c := int(revision(b) - revision(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// newReplicaSet creates the ReplicaSet for the deployment's current
// template, named deployment-<hash>, with zero replicas.
func (s *Sandbox) newReplicaSet(d *appsv1.Deployment, rev int64) (*appsv1.ReplicaSet, error) {
	var collisions int32
	if d.Status.CollisionCount != nil {
		collisions = *d.Status.CollisionCount
	}
	var hash string
	for {
		hash = templateHash(&d.Spec.Template, collisions)
		_, err := s.tracker.Get(replicaSetsGVR, d.Namespace, d.Name+"-"+hash)
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			return nil, err
		}
		collisions++ // the name belongs to another template
	}
	if collisions > 0 {
		d.Status.CollisionCount = ptr(collisions)
	}
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = withLabel(tmpl.Labels, podTemplateHashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withLabel(sel.MatchLabels, podTemplateHashLabel, hash)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          maps.Clone(tmpl.Labels),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr(int32(0)),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *tmpl,
		},
	}
	copyDeploymentAnnotations(d, rs)
	setAnnotation(&rs.ObjectMeta, RevisionAnnotation, strconv.FormatInt(rev, 10))
	obj, err := s.create(replicaSetsGVR, d.Namespace, rs, false, false)
	if err != nil {
		return nil, fmt.Errorf("create replica set %s: %w", rs.Name, err)
	}
	return obj.(*appsv1.ReplicaSet), nil
}

// copyDeploymentAnnotations copies the deployment's annotations to its new
// ReplicaSet, except the rollout bookkeeping, and records the desired and
// maximum replica counts.
func copyDeploymentAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	for k, v := range d.Annotations {
		if !rollbackSkipAnnotations[k] {
			setAnnotation(&rs.ObjectMeta, k, v)
		}
	}
	desired := replicasOf(d)
	setAnnotation(&rs.ObjectMeta, DesiredReplicasAnnotation, strconv.Itoa(int(desired)))
	setAnnotation(&rs.ObjectMeta, MaxReplicasAnnotation, strconv.Itoa(int(desired+maxSurge(d))))
}

func (s *Sandbox) scaleReplicaSet(d *appsv1.Deployment, rs *appsv1.ReplicaSet, want int32) error {
	from := *rs.Spec.Replicas
	upd := rs.DeepCopy()
	upd.Spec.Replicas = ptr(want)
	upd.Generation++
	if want > 0 {
		setAnnotation(&upd.ObjectMeta, DesiredReplicasAnnotation, strconv.Itoa(int(replicasOf(d))))
		setAnnotation(&upd.ObjectMeta, MaxReplicasAnnotation, strconv.Itoa(int(replicasOf(d)+maxSurge(d))))
	}
	if err := s.put(replicaSetsGVR, upd); err != nil {
		return err
	}
	*rs = *upd
	direction := "up"
	if want < from {
		direction = "down"
	}
	return s.event(d, corev1.EventTypeNormal, "ScalingReplicaSet",
		fmt.Sprintf("Scaled %s replica set %s from %d to %d", direction, rs.Name, from, want))
}

// syncReplicaSet is the ReplicaSet controller: pods to match the replica
// count, status from the pods.
func (s *Sandbox) syncReplicaSet(rs *appsv1.ReplicaSet) error {
	objs := s.tracker.owned(podsGVR, rs.Namespace, rs.UID)
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		pods = append(pods, o.(*corev1.Pod))
	}
	want := int(*rs.Spec.Replicas)
	if len(pods) > want {
		// Delete unready pods first, then the newest, as the real controller does.
		slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
			if ra, rb := podReady(a), podReady(b); ra != rb {
				return boolRank(ra) - boolRank(rb)
			}
			if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
				return c
			}
			return strings.Compare(b.Name, a.Name)
		})
		for _, p := range pods[:len(pods)-want] {
			if err := s.tracker.Delete(podsGVR, p.Namespace, p.Name); err != nil {
				return err
			}
		}
		pods = pods[len(pods)-want:]
	}
	for len(pods) < want {
		p, err := s.newPod(rs)
		if err != nil {
			return err
		}
		pods = append(pods, p)
	}
	st := appsv1.ReplicaSetStatus{
		Replicas:             int32(len(pods)),
		FullyLabeledReplicas: int32(len(pods)),
		ObservedGeneration:   rs.Generation,
	}
	for _, p := range pods {
		if podReady(p) {
			st.ReadyReplicas++
			st.AvailableReplicas++
		}
	}
	if apiequality.Semantic.DeepEqual(rs.Status, st) {
		return nil
	}
	upd := rs.DeepCopy()
	upd.Status = st
	if err := s.put(replicaSetsGVR, upd); err != nil {
		return err
	}
	*rs = *upd
	return nil
}

// newPod creates a Running, Ready pod for the ReplicaSet. A pod made while
// the manifests load started when its ReplicaSet did, as it would have in
// the cluster the manifests describe.
func (s *Sandbox) newPod(rs *appsv1.ReplicaSet) (*corev1.Pod, error) {
	name := rs.Name + "-" + s.nameSuffix()
	for {
		if _, err := s.tracker.Get(podsGVR, rs.Namespace, name); apierrors.IsNotFound(err) {
			break
		}
		name = rs.Name + "-" + s.nameSuffix()
	}
	now := metav1.NewTime(s.now().UTC().Truncate(1e9))
	if s.loading && !rs.CreationTimestamp.IsZero() && rs.CreationTimestamp.Before(&now) {
		now = rs.CreationTimestamp
	}
	tmpl := rs.Spec.Template.DeepCopy()
	r := s.random()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       rs.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))},
		},
		Spec: tmpl.Spec,
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			HostIP:    "10.0.0.11",
			PodIP:     fmt.Sprintf("10.42.%d.%d", r[0], r[1]|1),
			StartTime: &now,
		},
	}
	p.Spec.NodeName = sandboxNode
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range tmpl.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			Ready:       true,
			Started:     ptr(true),
			ContainerID: fmt.Sprintf("containerd://%x", r[2:18]),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	p.CreationTimestamp = now
	obj, err := s.create(podsGVR, rs.Namespace, p, s.loading, false)
	if err != nil {
		return nil, fmt.Errorf("create pod %s: %w", name, err)
	}
	return obj.(*corev1.Pod), nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// cleanupHistory deletes the oldest scaled-down ReplicaSets beyond the
// deployment's revisionHistoryLimit (default 10).
func (s *Sandbox) cleanupHistory(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, active *appsv1.ReplicaSet) error {
	limit := 10
	if d.Spec.RevisionHistoryLimit != nil {
		limit = int(*d.Spec.RevisionHistoryLimit)
	}
	var old []*appsv1.ReplicaSet
	for _, rs := range rss {
		if (active == nil || rs.UID != active.UID) && *rs.Spec.Replicas == 0 && rs.Status.Replicas == 0 {
			old = append(old, rs)
		}
	}
	slices.SortFunc(old, func(a, b *appsv1.ReplicaSet) int { return int(revision(a) - revision(b)) })
	for len(old) > limit {
		if err := s.deleteOwned(replicaSetsGVR, old[0]); err != nil {
			return err
		}
		old = old[1:]
	}
	return nil
}

// updateDeploymentStatus sets the revision annotation, status counts and
// conditions, writing only when something changed.
func (s *Sandbox) updateDeploymentStatus(d *appsv1.Deployment, newRS *appsv1.ReplicaSet) error {
	rss := s.replicaSetsOf(d)
	upd := d.DeepCopy()
	desired := replicasOf(d)
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         slices.Clone(d.Status.Conditions),
	}
	for _, rs := range rss {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
		if newRS != nil && rs.UID == newRS.UID {
			st.UpdatedReplicas = rs.Status.Replicas
			setAnnotation(&upd.ObjectMeta, RevisionAnnotation, rs.Annotations[RevisionAnnotation])
		}
	}
	st.UnavailableReplicas = max(0, desired-st.AvailableReplicas)

	now := metav1.NewTime(s.now().UTC().Truncate(1e9))
	if st.AvailableReplicas >= desired-maxUnavailable(d) {
		setCondition(&st, appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
	} else {
		setCondition(&st, appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now)
	}
	switch {
	case d.Spec.Paused:
		setCondition(&st, appsv1.DeploymentProgressing, corev1.ConditionUnknown, "DeploymentPaused", "Deployment is paused", now)
	case newRS != nil && st.UpdatedReplicas == desired && st.Replicas == desired && st.AvailableReplicas == desired:
		setCondition(&st, appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable",
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name), now)
	case newRS != nil:
		setCondition(&st, appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated",
			fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), now)
	}
	upd.Status = st
	if apiequality.Semantic.DeepEqual(upd.Status, d.Status) && apiequality.Semantic.DeepEqual(upd.Annotations, d.Annotations) {
		return nil
	}
	return s.put(deploymentsGVR, upd)
}

// setCondition sets a condition, keeping its transition time while its
// status holds and its update time while nothing about it changes.
func setCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	c := appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
	for i, old := range st.Conditions {
		if old.Type != t {
			continue
		}
		if old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
			if old.Reason == reason && old.Message == msg {
				c.LastUpdateTime = old.LastUpdateTime
			}
		}
		st.Conditions[i] = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}

func maxUnavailable(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0
	}
	v := intstr.FromString("25%")
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v = *ru.MaxUnavailable
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, int(replicasOf(d)), false)
	if err != nil {
		return 0
	}
	return int32(n)
}

func maxSurge(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0
	}
	v := intstr.FromString("25%")
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
		v = *ru.MaxSurge
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, int(replicasOf(d)), true)
	if err != nil {
		return 0
	}
	return int32(n)
}

// event records a controller event about the deployment.
func (s *Sandbox) event(d *appsv1.Deployment, typ, reason, msg string) error {
	now := metav1.NewTime(s.now().UTC().Truncate(1e9))
	r := s.random()
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", d.Name, r[:8]), Namespace: d.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: d.Namespace,
			Name: d.Name, UID: d.UID, ResourceVersion: d.ResourceVersion},
		Reason: reason, Message: msg, Type: typ, Count: 1,
		Source:         corev1.EventSource{Component: "deployment-controller"},
		FirstTimestamp: now, LastTimestamp: now,
		ReportingController: "deployment-controller",
	}
	if _, err := s.create(eventsGVR, d.Namespace, e, false, false); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// put writes an object the controllers changed, with a new resourceVersion.
func (s *Sandbox) put(gvr schema.GroupVersionResource, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	m.SetResourceVersion(s.nextRV())
	return s.tracker.Update(gvr, obj, m.GetNamespace())
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}
