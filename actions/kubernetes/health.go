package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/parley-chatops/parley/internal/chat"
)

// health is what a status reply says about a deployment's state, beyond
// the counts: the words for the summary line, a longer explanation, and
// how the reply is styled. A deployment is healthy only when every desired
// replica is updated, ready and available, the controller has observed the
// latest spec, and no rollout is stuck; anything less is never a success.
type health struct {
	kind    chat.ReplyKind // KindSuccess, KindInfo, KindProgress or KindAttention
	issues  []string       // short phrases for the summary line
	details []string       // one line each, under the summary
}

// waitingTrouble are container waiting reasons that mean the pod will not
// become ready by itself: a crash loop or an image or config it cannot use.
var waitingTrouble = map[string]bool{
	"CrashLoopBackOff":           true,
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// assess reads a deployment's rollout state and its pods.
func assess(d *appsv1.Deployment, pods []corev1.Pod) health {
	h := health{kind: chat.KindSuccess}
	worse := func(k chat.ReplyKind) { h.kind = worstKind(h.kind, k) }
	st := d.Status
	want := replicasOf(d)

	stuck := false
	if c := condition(d, appsv1.DeploymentProgressing); c != nil && c.Reason == "ProgressDeadlineExceeded" {
		stuck = true
		worse(chat.KindAttention)
		h.issues = append(h.issues, "rollout stuck (ProgressDeadlineExceeded)")
		h.details = append(h.details, "The rollout has made no progress within its deadline: "+strings.TrimSpace(c.Message))
	}
	if c := condition(d, appsv1.DeploymentReplicaFailure); c != nil && c.Status == corev1.ConditionTrue {
		worse(chat.KindAttention)
		h.issues = append(h.issues, "cannot create pods ("+c.Reason+")")
		h.details = append(h.details, "Pods cannot be created: "+strings.TrimSpace(c.Message))
	}
	if n, reasons := troubledPods(pods); n > 0 {
		worse(chat.KindAttention)
		noun := "pods"
		if n == 1 {
			noun = "pod"
		}
		h.issues = append(h.issues, fmt.Sprintf("%d %s failing (%s)", n, noun, strings.Join(reasons, ", ")))
	}

	observed := st.ObservedGeneration >= d.Generation
	rolling := !observed || st.UpdatedReplicas < want || st.Replicas > st.UpdatedReplicas
	switch {
	case d.Spec.Paused:
		if st.ReadyReplicas < want {
			worse(chat.KindAttention)
		} else {
			worse(chat.KindInfo)
		}
		h.issues = append(h.issues, "paused")
	case rolling && !stuck:
		worse(chat.KindProgress)
		if observed {
			h.issues = append(h.issues, fmt.Sprintf("rolling out (%d/%d updated)", st.UpdatedReplicas, want))
		} else {
			h.issues = append(h.issues, "rolling out (change not yet observed)")
		}
	}
	// The ready count leads the summary line, so these need no words of
	// their own; they decide the style.
	switch {
	case want == 0:
		worse(chat.KindInfo)
		h.issues = append(h.issues, "scaled to 0")
	case st.ReadyReplicas == 0:
		worse(chat.KindAttention)
	case st.ReadyReplicas < want && !rolling:
		worse(chat.KindAttention)
	case st.AvailableReplicas < want && !rolling && st.ReadyReplicas >= want:
		// Ready but not yet available for minReadySeconds.
		worse(chat.KindProgress)
		h.issues = append(h.issues, fmt.Sprintf("%d/%d available", st.AvailableReplicas, want))
	}
	if c := condition(d, appsv1.DeploymentAvailable); c != nil && c.Status == corev1.ConditionFalse && want > 0 {
		worse(chat.KindAttention)
		h.issues = append(h.issues, "below minimum availability")
	}
	return h
}

// condition returns the deployment's condition of type t, or nil.
func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// troubledPods counts the pods with a container that cannot run (a crash
// loop, an image it cannot pull) and names the reasons, most common first.
func troubledPods(pods []corev1.Pod) (int, []string) {
	n := 0
	count := map[string]int{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		reason := ""
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && waitingTrouble[w.Reason] {
				reason = w.Reason
				break
			}
		}
		if reason != "" {
			n++
			count[reason]++
		}
	}
	reasons := make([]string, 0, len(count))
	for r := range count {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if count[reasons[i]] != count[reasons[j]] {
			return count[reasons[i]] > count[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	return n, reasons
}
