package app

// The model's proposals in the audit log, and what a model that answers
// badly gets: Parley wired with the LLM router against a local
// OpenAI-compatible server on 127.0.0.1 (internal/testenv/llmtest:
// chat.completion payloads shaped as OpenAI documents them, langchaingo's
// real client), as in llm_test.go.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

func lastRouted(h *harness) audit.Event {
	h.t.Helper()
	evs := h.events(audit.IntentRouted)
	if len(evs) == 0 {
		h.t.Fatal("no intent.routed event")
	}
	return evs[len(evs)-1]
}

// TestProposalsAudited: an accepted and a refused proposal each leave the
// tool and arguments the model sent (redacted), the prompt template and
// its version, the variant, attempts, latency, tokens and cost on the
// intent.routed event; a response without usage is estimated and says so.
func TestProposalsAudited(t *testing.T) {
	secret := "ghp_" + strings.Repeat("A1b2C3d4", 5)[:36]
	h, _ := llmHarnessWith(t, "llm", "timeout: 5s, max_retries: 2, prices: {gpt-test: {input_per_1m: 1, output_per_1m: 2}}",
		func(r llmtest.Request) llmtest.Response {
			switch {
			case r.N == 0: // one rate limit, then the answer: two attempts
				return llmtest.OpenAIRateLimited("0")
			case userRequest(r) == "scale checkout to 4 in prod":
				return llmtest.OpenAIToolCall(r, "kubernetes_scale", `{"deployment":"checkout","namespace":"prod","replicas":4}`)
			default: // a hallucinated tool, a secret in its arguments, and no usage block
				resp := llmtest.OpenAIToolCall(r, "drop_database", `{"name":"prod","token":"`+secret+`"}`)
				delete(resp.Body.(map[string]any), "usage")
				return resp
			}
		})
	mustContain(t, h.say("alice", "ops", "scale checkout to 4 in prod"), "checkout replicas 3 -> 4")
	d := lastRouted(h).Details
	want := map[string]string{
		"llm_proposed": "kubernetes_scale", "llm_arguments": `{"deployment":"checkout","namespace":"prod","replicas":4}`,
		"llm_proposal": "accepted", "llm_prompt": "router/v3", "llm_prompt_version": "router-v3 2026-05", "variant": "v3",
		"llm_attempts": "2", "llm_model": "gpt-test", "llm_cached": "false",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("accepted: %s = %q, want %q (details %v)", k, d[k], v, d)
		}
	}
	for _, k := range []string{"llm_tokens", "llm_cost_usd", "llm_latency_ms"} {
		if d[k] == "" || d[k] == "0+0" || d[k] == "0.000000" {
			t.Errorf("accepted: %s = %q", k, d[k])
		}
	}

	got := h.say("alice", "ops", "wipe the thing please")
	ev := lastRouted(h)
	d = ev.Details
	if ev.Action != "none" || d["llm_proposal"] != "refused" || d["llm_proposed"] != "drop_database" ||
		!strings.Contains(d["note"], `model proposed an unknown action: "drop_database"`) {
		t.Errorf("refused: action %s details %v", ev.Action, d)
	}
	if !strings.Contains(d["llm_arguments"], `"name":"prod"`) || strings.Contains(d["llm_arguments"], secret) {
		t.Errorf("refused: arguments %q: want them recorded, the token redacted", d["llm_arguments"])
	}
	if d["llm_tokens_estimated"] != "true" || d["llm_cost_usd"] == "0.000000" || d["llm_attempts"] != "1" {
		t.Errorf("no usage: tokens %q estimated %q cost %q attempts %q", d["llm_tokens"], d["llm_tokens_estimated"], d["llm_cost_usd"], d["llm_attempts"])
	}
	mustContain(t, got, `model proposed an unknown action: "drop_database"`, "nothing was run")
	if strings.Contains(got, secret) {
		t.Error("the token reached the chat")
	}
}

// TestFailedModelCallAudited: a model that keeps failing leaves its
// attempts on the audit event, in llm mode (the request fails) and in
// hybrid mode (the rules reading stands).
func TestFailedModelCallAudited(t *testing.T) {
	for _, mode := range []string{"llm", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			h, srv := llmHarnessWith(t, mode, "timeout: 5s, max_retries: 2", func(r llmtest.Request) llmtest.Response {
				return llmtest.OpenAIError(http.StatusServiceUnavailable, "server_error", "", "overloaded")
			})
			h.say("alice", "ops", "show me the checkout deployment in prod")
			if srv.Count() != 3 {
				t.Fatalf("%d attempts, want 3", srv.Count())
			}
			d := lastRouted(h).Details
			if d["llm_attempts"] != "3" || d["llm_prompt"] != "router/v3" || d["llm_prompt_version"] == "" || d["llm_latency_ms"] == "" {
				t.Errorf("details %v", d)
			}
		})
	}
}
