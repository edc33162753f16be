package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// TestLLMBudgetSurvivesRestart wires Parley with the LLM router against an
// OpenAI-compatible server on 127.0.0.1 that sends no usage, and a
// 1,500-token daily budget per user: the estimated spend trips the budget
// after a few requests; a restart on the same database remembers it, and
// the model is not called again.
func TestLLMBudgetSurvivesRestart(t *testing.T) {
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		resp := llmtest.OpenAIToolCall(r, "kubernetes_status", `{"deployment":"checkout","namespace":"prod"}`)
		delete(resp.Body.(map[string]any), "usage")
		return resp
	})
	src := fmt.Sprintf(`
database: %s
router:
  mode: llm
  llm: {provider: openai, base_url: %q, model: gpt-test, api_key: {env: KEY}, timeout: 5s, max_retries: 0, cache_ttl: 1ns,
        budget: {per_user: {tokens: 1500}}}
`, filepath.Join(t.TempDir(), "p.db"), srv.BaseURL())
	cfg, err := config.Parse([]byte(src), "llm.yaml", func(string) string { return "test-key-value" })
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	start := func() *harness {
		out := &recorder{}
		p, err := Build(context.Background(), Options{Config: cfg, Now: c.Now}, out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		return &harness{t: t, p: p, out: out, clock: c}
	}

	h := start()
	served := 0
	for range 10 {
		got := h.say("alice", "ops", "how is checkout doing in prod")
		if strings.Contains(got, "budget for this user is used up") {
			break
		}
		mustContain(t, got, "checkout (prod): 3/3 ready")
		served++
	}
	if served == 0 || served >= 10 || srv.Count() != served {
		t.Fatalf("%d requests served, model called %d times: want the budget to trip after a few", served, srv.Count())
	}
	routed := h.events(audit.IntentRouted)
	if d := routed[0].Details; d["llm_tokens_estimated"] != "true" || d["llm_tokens"] == "" {
		t.Errorf("intent.routed does not mark the estimated tokens: %v", d)
	}
	h.p.Close(context.Background())

	// A restart on the same database: the day's spend is remembered.
	h = start()
	mustContain(t, h.say("alice", "ops", "how is checkout doing in prod"), "budget for this user is used up")
	if srv.Count() != served {
		t.Errorf("after a restart the model was called again (%d calls, %d before)", srv.Count(), served)
	}
	// Another user still has a budget.
	mustContain(t, h.say("bob", "ops", "how is checkout doing in prod"), "checkout (prod): 3/3 ready")
	// The next day starts afresh.
	c.Add(24 * time.Hour)
	mustContain(t, h.say("alice", "ops", "how is checkout doing in prod"), "checkout (prod): 3/3 ready")
}
