package app

import (
	"path/filepath"
	"testing"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// TestExplicitCall: "/parley ACTION key:value" (or the same without
// "/parley" in the console) selects exactly that action and those
// parameters, through the same validation, policy and confirmation as a
// sentence; what is wrong is said with what is allowed, before policy.
func TestExplicitCall(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))

	got := h.say("alice", "ops", "kubernetes.scale deployment:checkout namespace:prod replicas:5")
	mustContain(t, got, "checkout replicas 3 -> 5")
	code := mustCode(t, got)
	mustContain(t, h.say("alice", "ops", "confirm "+code), "checkout")
	if n := len(h.events(audit.ActionSucceeded)); n != 1 {
		t.Fatalf("%d actions succeeded after the confirmation, want 1", n)
	}
	routed := h.events(audit.IntentRouted)
	if last := routed[len(routed)-1]; last.Router != rules.ExplicitSource || last.Confidence != 1 {
		t.Errorf("intent.routed = router %q confidence %v, want an explicit call", last.Router, last.Confidence)
	}

	// a read runs at once; the slash form works too
	mustContain(t, h.say("alice", "ops", "/parley kubernetes.status deployment:checkout namespace:prod"), "checkout")

	// refused before policy, with what is allowed
	before := len(h.events(audit.PolicyDecided))
	mustContain(t, h.say("alice", "ops", "/parley kubernetes.scale deployment:checkout namespace:prod replicas:5000"),
		"replicas must be at most 1000", "Nothing was run")
	mustContain(t, h.say("alice", "ops", "kubernetes.scale deployment:checkout namespace:prod replica:5"),
		`kubernetes.scale has no parameter "replica"`, "replicas (required, 0 to 1000)")
	mustContain(t, h.say("alice", "ops", "kubernetes.explode deployment:checkout"),
		`there is no action "kubernetes.explode"`, "kubernetes.scale")
	mustContain(t, h.say("alice", "ops", "kubernetes.scale checkout to 5"),
		"give its parameters as key:value", "kubernetes.scale deployment:checkout namespace:prod replicas:5")
	if n := len(h.events(audit.PolicyDecided)); n != before {
		t.Errorf("%d policy decisions for refused calls, want none", n-before)
	}

	// policy applies as to a sentence: eve may not scale
	got = h.say("eve", "ops", "kubernetes.scale deployment:checkout namespace:prod replicas:1")
	mustContain(t, got, "may not run kubernetes.scale")
	if codeRE.MatchString(got) {
		t.Fatalf("an explicit call by an outsider got a confirmation prompt:\n%s", got)
	}
	// a missing parameter is asked for
	mustContain(t, h.say("alice", "ops", "kubernetes.restart deployment:checkout"), "I also need the namespace")
	// help says how
	mustContain(t, h.say("alice", "ops", "help"), "call an action with its parameters as key:value (prometheus.query service:checkout metric:error_rate window:1h)")
}

// TestExplicitCallNeverAsksTheModel: in llm and hybrid mode an explicit
// call is read without the model, and an action the user may not run is
// refused by policy rather than hidden from them.
func TestExplicitCallNeverAsksTheModel(t *testing.T) {
	for _, mode := range []string{"llm", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			h, srv := llmHarness(t, mode, func(r llmtest.Request) llmtest.Response { return llmtest.OpenAIText(r, "no") })
			mustContain(t, h.say("alice", "ops", "/parley kubernetes.scale deployment:checkout namespace:prod replicas:4"),
				"checkout replicas 3 -> 4")
			mustContain(t, h.say("eve", "ops", "kubernetes.scale deployment:checkout namespace:prod replicas:4"),
				"may not run kubernetes.scale")
			mustContain(t, h.say("alice", "ops", "cdn.purge site:shop"), `there is no action "cdn.purge"`)
			if n := srv.Count(); n != 0 {
				t.Errorf("%d model requests for explicit calls, want none", n)
			}
		})
	}
}
