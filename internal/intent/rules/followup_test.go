package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// TestFollowUps: what the thread gives a message and what it never does
// (the routing gate evals/routing-extra/followups.yaml has the phrasings;
// these are the rules around them).
func TestFollowUps(t *testing.T) {
	specs := builtin.Specs()
	r := New(specs)
	inv := intent.Inventory{Namespaces: []string{"prod", "staging"},
		Deployments: map[string][]string{"prod": {"checkout", "payments"}, "staging": {"checkout"}},
		Services:    []string{"checkout", "payments"}}
	status := func(dep, ns string) intent.Turn {
		return intent.Turn{Text: "status of " + dep + " in " + ns, Action: action.KubernetesStatus,
			Params: action.Params{"deployment": dep, "namespace": ns}}
	}
	route := func(text string, history ...intent.Turn) intent.Intent {
		t.Helper()
		got, err := r.Route(context.Background(), intent.Query{Text: text, Catalog: specs, Inventory: inv, History: history})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// the change takes the thread's target, says so, and is not as sure
	// as one that names it
	got := route("scale it to 4", status("checkout", "prod"))
	if got.Action != action.KubernetesScale || got.Params.Canonical() != `{"deployment":"checkout","namespace":"prod","replicas":4}` ||
		got.Confidence > 0.85 || !strings.Contains(got.Note, "from the thread") {
		t.Errorf("scale it to 4 = %s %s %.2f (%s)", got.Action, got.Params.Canonical(), got.Confidence, got.Note)
	}
	// a turn that was read as nothing in between does not hide it
	got = route("roll that back", status("payments", "prod"), intent.Turn{Text: "thanks", Action: action.None})
	if got.Action != action.KubernetesRollback || got.Params.String("deployment") != "payments" {
		t.Errorf("roll that back = %s %s", got.Action, got.Params.Canonical())
	}
	// a name the inventory does not have is never a change's target
	got = route("restart it", status("shop", "prod"))
	if got.Action != action.None {
		t.Errorf("restart it after an unknown name = %s %s, want none", got.Action, got.Params.Canonical())
	}
	// a read may pass it on: the action answers "not found"
	got = route("show its pods", status("shop", "prod"))
	if got.Action != "kubernetes.pods" || got.Params.String("deployment") != "shop" {
		t.Errorf("show its pods after an unknown name = %s %s", got.Action, got.Params.Canonical())
	}
	// without a thread nothing is made up
	for _, text := range []string{"scale it to 4", "roll that back", "and in staging?"} {
		if got := route(text); got.Action != action.None {
			t.Errorf("%q without a thread = %s %s, want none", text, got.Action, got.Params.Canonical())
		}
	}
	// an explicit call is exactly what it says, whatever the thread
	got = route("/parley kubernetes.status deployment:payments", status("checkout", "prod"))
	if got.Params.Canonical() != `{"deployment":"payments"}` {
		t.Errorf("explicit call = %s %s", got.Action, got.Params.Canonical())
	}
	// a message that names its target keeps it; the namespace of the same
	// target comes from the thread, another target's does not
	got = route("restart payments", status("checkout", "staging"))
	if got.Action != action.KubernetesRestart || got.Params.Canonical() != `{"deployment":"payments"}` {
		t.Errorf("restart payments after checkout = %s %s", got.Action, got.Params.Canonical())
	}
	got = route("restart checkout", status("checkout", "staging"))
	if got.Params.Canonical() != `{"deployment":"checkout","namespace":"staging"}` {
		t.Errorf("restart checkout after checkout in staging = %s %s", got.Action, got.Params.Canonical())
	}
	// a read that needs no target stays as asked
	got = route("what's firing?", status("checkout", "prod"))
	if got.Action != "alertmanager.alerts" || len(got.Params) != 0 {
		t.Errorf("what's firing? = %s %s", got.Action, got.Params.Canonical())
	}
}
