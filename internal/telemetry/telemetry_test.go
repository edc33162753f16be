package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-chatops/parley/internal/llmcost"
)

func TestMetrics(t *testing.T) {
	m := New(Options{})
	m.Message("slack", "routed")
	m.Message("slack", "routed")
	m.Routed("llm", "kubernetes.scale", 300*time.Millisecond)
	m.ActionFinished("kubernetes.scale", "success", 2*time.Second)
	m.PolicyDecided("kubernetes.scale", "confirm")
	m.Confirmation("granted")
	m.LLMRequest("ok", llmcost.Usage{Provider: "openai", Model: "gpt-4o-mini", Variant: "v1", PromptTokens: 800, CompletionTokens: 20, Cost: 0.00013, Latency: time.Second})
	m.LLMCacheHit("v1")
	m.BudgetExhausted("channel")
	m.RateLimited("discord")

	if got := testutil.ToFloat64(m.messages.WithLabelValues("slack", "routed")); got != 2 {
		t.Errorf("messages = %v", got)
	}
	if got := testutil.ToFloat64(m.llmTokens.WithLabelValues("openai", "gpt-4o-mini", "v1", "prompt")); got != 800 {
		t.Errorf("prompt tokens = %v", got)
	}
	if got := testutil.ToFloat64(m.budgetExhausted.WithLabelValues("channel")); got != 1 {
		t.Errorf("budget exhausted = %v", got)
	}
	want := `
# HELP parley_llm_requests_total Model calls, by provider, model, prompt variant and outcome (ok, error, timeout).
# TYPE parley_llm_requests_total counter
parley_llm_requests_total{model="gpt-4o-mini",outcome="ok",provider="openai",variant="v1"} 1
# HELP parley_chat_rate_limited_total Chat messages refused by the per-user or per-channel rate limit, by platform.
# TYPE parley_chat_rate_limited_total counter
parley_chat_rate_limited_total{platform="discord"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_llm_requests_total", "parley_chat_rate_limited_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.routeDuration); n != 1 {
		t.Errorf("route duration series = %d", n)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, name := range []string{"parley_messages_total", "parley_routes_total", "parley_action_duration_seconds_bucket", "parley_policy_decisions_total",
		"parley_confirmations_total", "parley_llm_cost_usd_total", "parley_llm_cache_hits_total", "parley_llm_budget_exhausted_total"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(string(body), "go_goroutines") {
		t.Error("runtime collectors registered without being asked for")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Message("slack", "routed")
	m.LLMRequest("ok", llmcost.Usage{})
	m.BudgetExhausted("user")
	if m.Registry() != nil {
		t.Error("nil metrics have a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("nil handler status %d", rec.Code)
	}
}

func TestSeparateRegistries(t *testing.T) {
	a, b := New(Options{RuntimeCollectors: true}), New(Options{RuntimeCollectors: true})
	a.Confirmation("denied")
	if got := testutil.ToFloat64(b.confirmations.WithLabelValues("denied")); got != 0 {
		t.Error("two Metrics share series")
	}
	if _, err := a.Registry().Gather(); err != nil {
		t.Error(err)
	}
}
