package kubernetes

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

func TestRestartRollsANewRevision(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	r := req(action.KubernetesRestart, action.Params{"namespace": "staging", "deployment": "checkout"})
	oldPods := k.pods(t, "staging", "checkout")

	plan, err := k.restart.Plan(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Target != "staging/checkout" || plan.Summary != "restart all 1 pod of checkout (rolling)" ||
		plan.Changes[0] != (action.Change{Field: "revision", Before: "2", After: "3"}) {
		t.Errorf("plan %+v", plan)
	}
	res, err := k.restart.Run(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Format(time.RFC3339)
	if res.Text != "Restarted checkout (staging): rolling restart of 1 pod started." || res.Outcome["restarted_at"] != at {
		t.Errorf("result %+v", res)
	}
	d := k.deployment(t, "staging", "checkout")
	if got := d.Spec.Template.Annotations[RestartedAtAnnotation]; got != at {
		t.Errorf("restartedAt %q, want %q", got, at)
	}
	rss := k.replicaSets(t, "staging", "checkout")
	if len(rss) != 3 || revision(&rss[0]) != 3 || rss[0].Spec.Template.Annotations[RestartedAtAnnotation] != at {
		t.Fatalf("want a new revision-3 ReplicaSet, got %d ReplicaSets, newest revision %d", len(rss), revision(&rss[0]))
	}
	pods := k.pods(t, "staging", "checkout")
	if len(pods) != 1 || pods[0].Name == oldPods[0].Name {
		t.Errorf("pods were not replaced: %v -> %v", oldPods[0].Name, pods[0].Name)
	}
	if got := firstLine(k.statusText(t, "staging", "checkout")); got != "checkout (staging): 1/1 ready, image shop/checkout:1.5.0-rc1, revision 3" {
		t.Errorf("status after restart %q", got)
	}
}
