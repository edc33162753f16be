package llm

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// TestBudgetCountsResponsesWithoutUsage: an OpenAI-compatible server on
// 127.0.0.1 (llmtest, chat.completion payloads as documented) answers
// without the usage block, as some self-hosted servers do. Each call is
// charged an estimate (llmcost.ApproxTokens of the request body, and of
// the tool call the model wrote), marked as estimated in the ledger and
// on the intent, so a 3,000-token daily budget in the store trips after
// exactly the calls the estimate predicts: not never, as when a missing
// usage counted as 0.
func TestBudgetCountsResponsesWithoutUsage(t *testing.T) {
	const (
		budget = 3000
		tool   = "kubernetes_scale"
		args   = `{"deployment":"checkout","namespace":"prod","replicas":5}`
	)
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		resp := llmtest.OpenAIToolCall(r, tool, args)
		delete(resp.Body.(map[string]any), "usage")
		return resp
	})
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ledger, err := llmcost.NewLedger(llmcost.LedgerOptions{Limits: llmcost.Limits{PerUser: llmcost.Budget{Tokens: budget}}, Store: llmcost.NewDBStore(db)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newRouter(t, OpenAI, srv, func(o *Options) { o.Budget = ledger })

	served, charged, predicted := 0, 0, 0
	for i := range 10 {
		in, err := r.Route(ctx, query("scale checkout to 5 in prod"))
		if err != nil {
			if !errors.Is(err, llmcost.ErrBudgetExceeded) {
				t.Fatalf("call %d: %v", i+1, err)
			}
			break
		}
		served++
		u := in.Usage
		req := srv.Last(t)
		want := llmcost.ApproxTokens(len(req.Body)) + llmcost.ApproxTokens(len(tool)+len(args))
		if !u.Estimated || u.TotalTokens() != want {
			t.Errorf("call %d: usage %+v, want %d estimated tokens", i+1, u, want)
		}
		if !strings.Contains(in.Note, "estimated") {
			t.Errorf("call %d: note %q does not say the tokens are estimated", i+1, in.Note)
		}
		charged += want
		if predicted == 0 && charged >= budget {
			predicted = served // the budget is spent: the next call is refused
		}
	}
	t.Logf("%d calls of ≈%d estimated tokens each served under a %d-token budget", served, charged/max(served, 1), budget)
	if predicted == 0 || served != predicted {
		t.Fatalf("%d calls served, the estimate predicts %d (%d tokens charged)", served, predicted, charged)
	}
	if srv.Count() != served {
		t.Errorf("the model was called %d times for %d served calls: a refused call must not reach it", srv.Count(), served)
	}
	var rows, estimated, tokens int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), CAST(SUM(estimated) AS BIGINT), CAST(SUM(prompt_tokens + completion_tokens) AS BIGINT) FROM llm_spend WHERE subject = ?`,
		"console:alice").Scan(&rows, &estimated, &tokens); err != nil {
		t.Fatal(err)
	}
	if rows != served || estimated != served || tokens != charged {
		t.Errorf("ledger rows %d (estimated %d, %d tokens), want %d estimated rows of %d tokens", rows, estimated, tokens, served, charged)
	}
}

// TestPartialUsageIsCompleted: a response reporting prompt tokens but no
// completion tokens keeps the reported count and estimates the rest.
func TestPartialUsageIsCompleted(t *testing.T) {
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		resp := llmtest.OpenAIToolCall(r, "help", `{}`)
		resp.Body.(map[string]any)["usage"] = llmtest.OpenAIUsage{PromptTokens: 321, TotalTokens: 321}
		return resp
	})
	r, _ := newRouter(t, OpenAI, srv, nil)
	in, err := r.Route(context.Background(), query("help"))
	if err != nil {
		t.Fatal(err)
	}
	if u := in.Usage; u.PromptTokens != 321 || u.CompletionTokens != llmcost.ApproxTokens(len("help")+len("{}")) || !u.Estimated {
		t.Errorf("usage = %+v, want 321 reported prompt tokens and an estimated completion", u)
	}
	full := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response { return llmtest.OpenAIToolCall(r, "help", `{}`) })
	r2, _ := newRouter(t, OpenAI, full, nil)
	in, err = r2.Route(context.Background(), query("help"))
	if err != nil {
		t.Fatal(err)
	}
	if in.Usage.Estimated || in.Usage.PromptTokens == 0 {
		t.Errorf("a response with usage was estimated: %+v", in.Usage)
	}
}

// TestSummaryRespectsChannelBudget: a summary is charged to its channel
// and, once the channel's budget is spent, not asked for (the caller
// writes its deterministic summary instead).
func TestSummaryRespectsChannelBudget(t *testing.T) {
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		resp := llmtest.OpenAIText(r, "Error rate is 4.2% [M1].")
		delete(resp.Body.(map[string]any), "usage")
		return resp
	})
	ledger, err := llmcost.NewLedger(llmcost.LedgerOptions{Limits: llmcost.Limits{PerChannel: llmcost.Budget{Tokens: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSummarizer(Options{Provider: OpenAI, BaseURL: srv.BaseURL(), Model: "m", APIKey: testKey, Budget: ledger})
	if err != nil {
		t.Fatal(err)
	}
	ev := Evidence{Title: "HighErrorRate checkout", Service: "checkout", Window: "30m", Channel: "slack:C0INC",
		Metrics: []Metric{{Name: "error_rate", Value: 0.042, Unit: "ratio"}}}
	_, u, err := s.Summarize(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Estimated || u.TotalTokens() < 100 {
		t.Fatalf("usage %+v: want an estimate over the 100-token budget", u)
	}
	if sp, err := ledger.Spent(context.Background(), llmcost.ScopeChannel, "slack:C0INC"); err != nil || sp.Tokens != u.TotalTokens() {
		t.Errorf("channel spend = %+v, %v; want %d", sp, err, u.TotalTokens())
	}
	_, _, err = s.Summarize(context.Background(), ev)
	if !errors.Is(err, llmcost.ErrBudgetExceeded) {
		t.Errorf("second summary over budget: %v", err)
	}
	if srv.Count() != 1 {
		t.Errorf("model called %d times, want 1", srv.Count())
	}
}
