package app

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/chat"
)

// Through the whole pipeline: a status of a healthy deployment is a
// success; once its pods stop being ready, the same request is styled for
// attention, which Slack and Discord render without a check mark.
func TestStatusReplyStyleFollowsReadiness(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	last := func() chat.Reply {
		h.out.mu.Lock()
		defer h.out.mu.Unlock()
		for i := len(h.out.replies) - 1; i >= 0; i-- {
			if h.out.replies[i].Kind != chat.KindAudit {
				return h.out.replies[i]
			}
		}
		t.Fatal("no reply")
		return chat.Reply{}
	}
	h.say("alice", "ops", "status of search in prod")
	if r := last(); r.Kind != chat.KindSuccess {
		t.Fatalf("healthy search styled %q: %s", r.Kind, r.Text)
	}
	ctx := context.Background()
	pods, err := h.p.Sandbox.Client().CoreV1().Pods("prod").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Labels["app.kubernetes.io/name"] != "search" {
			continue
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		// A status write, as the kubelet makes it.
		status := k8stesting.NewUpdateSubresourceActionWithOptions(corev1.SchemeGroupVersion.WithResource("pods"), "status", "prod", &p, metav1.UpdateOptions{})
		if _, err := h.p.Sandbox.Invoke(status); err != nil {
			t.Fatal(err)
		}
	}
	got := h.say("alice", "ops", "status of search in prod")
	mustContain(t, got, "search (prod): 0/2 ready")
	if r := last(); r.Kind != chat.KindAttention {
		t.Errorf("0/2 ready styled %q, want %q", r.Kind, chat.KindAttention)
	}
}
