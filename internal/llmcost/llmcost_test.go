package llmcost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPrices(t *testing.T) {
	p := Prices{
		"gpt-4o-mini":   {InputPer1M: 0.15, OutputPer1M: 0.60},
		"gpt-4o*":       {InputPer1M: 2.5, OutputPer1M: 10},
		"gpt-4o-mini-*": {InputPer1M: 0.2, OutputPer1M: 0.8},
	}
	cases := []struct {
		model string
		in    float64
		ok    bool
	}{
		{"gpt-4o-mini", 0.15, true},           // exact beats prefixes
		{"gpt-4o-mini-2024-07-18", 0.2, true}, // longest prefix
		{"gpt-4o-2024-08-06", 2.5, true},      // shorter prefix
		{"claude-3-5-haiku-latest", 0, false}, // unknown
	}
	for _, c := range cases {
		pr, ok := p.Lookup(c.model)
		if ok != c.ok || pr.InputPer1M != c.in {
			t.Errorf("%s: %v %v", c.model, pr, ok)
		}
	}
	cost, ok := p.Cost("gpt-4o-mini", 1_000_000, 500_000)
	if !ok || fmt.Sprintf("%.4f", cost) != "0.4500" {
		t.Errorf("cost = %v %v, want 0.45", cost, ok)
	}
	if err := (Prices{"m": {InputPer1M: -1}}).Check(); err == nil {
		t.Error("negative price accepted")
	}
	if ApproxTokens(0) != 0 || ApproxTokens(1) != 1 || ApproxTokens(8) != 2 || ApproxTokens(9) != 3 {
		t.Error("ApproxTokens is not bytes/4 rounded up")
	}
}

func TestLedger(t *testing.T) {
	now := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	l, err := NewLedger(LedgerOptions{
		Limits: Limits{PerChannel: Budget{Cost: 0.01}, PerUser: Budget{Tokens: 1000}},
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := func(subject, channel string, tokens int, cost float64, cached bool) {
		t.Helper()
		if err := l.Record(ctx, Record{Subject: subject, Channel: channel, Usage: Usage{PromptTokens: tokens, Cost: cost, Cached: cached}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Allow(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	rec("u1", "c1", 600, 0.004, false)
	rec("u1", "c1", 600, 0.004, true) // cached: free
	if err := l.Allow(ctx, "u1", "c1"); err != nil {
		t.Fatalf("under both budgets: %v", err)
	}
	rec("u1", "c2", 500, 0.001, false) // user now at 1100 tokens
	var be *BudgetError
	if err := l.Allow(ctx, "u1", "c3"); !errors.As(err, &be) || be.Scope != ScopeUser || !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("user over tokens: %v", err)
	}
	rec("u2", "c1", 10, 0.007, false) // channel c1 at $0.011
	if err := l.Allow(ctx, "u3", "c1"); !errors.As(err, &be) || be.Scope != ScopeChannel || be.Error() != "LLM budget for this channel is used up today" {
		t.Fatalf("channel over cost: %v", err)
	}
	if err := l.Allow(ctx, "u3", "c9"); err != nil {
		t.Errorf("fresh user and channel: %v", err)
	}
	if sp, err := l.Spent(ctx, ScopeChannel, "c1"); err != nil || sp.Requests != 2 || sp.Tokens != 610 {
		t.Errorf("c1 spend = %+v, %v", sp, err)
	}
	now = now.Add(2 * time.Hour) // next UTC day
	if err := l.Allow(ctx, "u1", "c1"); err != nil {
		t.Errorf("new day: %v", err)
	}
	if _, err := NewLedger(LedgerOptions{Limits: Limits{PerUser: Budget{Tokens: -1}}}); err == nil {
		t.Error("negative budget accepted")
	}
}

// failing is a SpendStore whose database is gone.
type failing struct{}

func (failing) Add(context.Context, Record) error { return errors.New("disk full") }
func (failing) Sum(context.Context, Scope, string, time.Time, time.Time) (Spend, error) {
	return Spend{}, errors.New("connection refused")
}
func (failing) Purge(context.Context, time.Time) (int64, error) { return 0, errors.New("disk full") }

// TestLedgerFailsClosed: a spend that cannot be read refuses the call (it
// is not a budget error: the caller says the model is unavailable), and a
// call that cannot be recorded is reported. Without limits nothing is read.
func TestLedgerFailsClosed(t *testing.T) {
	ctx := context.Background()
	l, _ := NewLedger(LedgerOptions{Store: failing{}, Limits: Limits{PerUser: Budget{Tokens: 10}}})
	err := l.Allow(ctx, "u", "c")
	if err == nil || errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Allow with an unreadable spend = %v", err)
	}
	if err := l.Record(ctx, Record{Channel: "c", Usage: Usage{PromptTokens: 5}}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Record into a failing store = %v", err)
	}
	if err := l.Record(ctx, Record{Channel: "c", Usage: Usage{Cached: true}}); err != nil {
		t.Errorf("a cached answer is not recorded, so cannot fail: %v", err)
	}
	free, _ := NewLedger(LedgerOptions{Store: failing{}})
	if err := free.Allow(ctx, "u", "c"); err != nil {
		t.Errorf("without limits Allow reads nothing: %v", err)
	}
}

func TestCache(t *testing.T) {
	now := time.Unix(0, 0)
	c := NewCache[int](time.Minute, 2, func() time.Time { return now })
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatal("miss right after put")
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Error("hit after the TTL")
	}
	c.Put("a", 1)
	c.Put("b", 2)
	c.Put("a", 3) // re-put: a is now the newest
	c.Put("c", 4) // evicts b, the oldest live entry
	if _, ok := c.Get("b"); ok {
		t.Error("b not evicted")
	}
	if v, ok := c.Get("a"); !ok || v != 3 {
		t.Errorf("a = %v %v, want 3", v, ok)
	}
	if c.Len() != 2 {
		t.Errorf("len = %d", c.Len())
	}
	var off *Cache[int] = NewCache[int](0, 0, nil)
	off.Put("x", 1)
	if _, ok := off.Get("x"); ok || off.Len() != 0 {
		t.Error("a disabled cache cached")
	}
	if a, b := Key("ab", "c"), Key("a", "bc"); a == b || a != Key("ab", "c") {
		t.Error("Key is ambiguous or unstable")
	}
}

func TestUsageString(t *testing.T) {
	u := Usage{PromptTokens: 812, CompletionTokens: 14, Cost: 0.00013}
	if u.String() != "812+14 tokens, $0.000130" || u.TotalTokens() != 826 {
		t.Errorf("%s %d", u, u.TotalTokens())
	}
	if (Usage{Cached: true}).String() != "cached, 0 tokens" {
		t.Error("cached usage string")
	}
	if got := (Usage{PromptTokens: 880, CompletionTokens: 9, Estimated: true}).String(); got != "~880+9 tokens (estimated), $0.000000" {
		t.Errorf("estimated usage string = %q", got)
	}
}
