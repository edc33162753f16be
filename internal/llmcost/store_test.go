package llmcost

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/internal/testenv/storetest"
)

// One PostgreSQL server for the package's tests; each test gets its own
// database on it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixedClock is a settable clock.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// TestBudgetSurvivesRestart: spend recorded by one process is read by the
// next one on the same database; the next day starts afresh.
func TestBudgetSurvivesRestart(t *testing.T) {
	storetest.ForBackends(t, func(t *testing.T, bk storetest.Backend) {
		ctx := context.Background()
		dbase := bk.Fresh(t)
		clock := &fixedClock{t: time.Date(2026, 3, 14, 22, 30, 0, 0, time.UTC)}
		limits := Limits{PerChannel: Budget{Tokens: 3000}, PerUser: Budget{Cost: 0.02}}

		first := dbase.OpenHandle(t)
		l1, err := NewLedger(LedgerOptions{Limits: limits, Store: NewDBStore(first), Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // 3 x 1,100 tokens: over the channel's 3,000
			if err := l1.Allow(ctx, "slack:U1", "slack:C1"); err != nil {
				t.Fatalf("under budget: %v", err)
			}
			if err := l1.Record(ctx, Record{Time: clock.Now(), Subject: "slack:U1", Channel: "slack:C1", Purpose: "route",
				Usage: Usage{Provider: "openai", Model: "m", PromptTokens: 1000, CompletionTokens: 100, Cost: 0.001, Estimated: true}}); err != nil {
				t.Fatal(err)
			}
		}
		var be *BudgetError
		if err := l1.Allow(ctx, "slack:U2", "slack:C1"); !errors.As(err, &be) || be.Scope != ScopeChannel {
			t.Fatalf("over the channel budget: %v", err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}

		// A restart: a new handle and a new ledger on the same database.
		second := dbase.OpenHandle(t)
		l2, err := NewLedger(LedgerOptions{Limits: limits, Store: NewDBStore(second), Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := l2.Allow(ctx, "slack:U2", "slack:C1"); !errors.As(err, &be) || be.Scope != ScopeChannel {
			t.Fatalf("after a restart the channel's spend was forgotten: %v", err)
		}
		if err := l2.Allow(ctx, "slack:U1", "slack:C2"); err != nil {
			t.Errorf("another channel, user under budget: %v", err)
		}
		sp, err := l2.Spent(ctx, ScopeChannel, "slack:C1")
		if err != nil || sp.Tokens != 3300 || sp.Requests != 3 || sp.Cost < 0.0029 || sp.Cost > 0.0031 {
			t.Errorf("spend after restart = %+v, %v; want 3300 tokens, 3 requests, $0.003", sp, err)
		}
		var estimated int
		if err := second.QueryRowContext(ctx, `SELECT COUNT(*) FROM llm_spend WHERE estimated = 1`).Scan(&estimated); err != nil || estimated != 3 {
			t.Errorf("estimated rows = %d, %v; want 3", estimated, err)
		}

		// The day boundary (UTC) starts every budget afresh.
		clock.set(time.Date(2026, 3, 15, 0, 0, 1, 0, time.UTC))
		if err := l2.Allow(ctx, "slack:U2", "slack:C1"); err != nil {
			t.Errorf("a new day: %v", err)
		}
	})
}

// TestBudgetHoldsAcrossReplicas: two replicas on one database, each with
// its own ledger, share the spend. Concurrent calls may go over by what
// is in flight, never further: once the spend is recorded, both refuse.
func TestBudgetHoldsAcrossReplicas(t *testing.T) {
	storetest.ForBackends(t, func(t *testing.T, bk storetest.Backend) {
		ctx := context.Background()
		dbase := bk.Fresh(t)
		limits := Limits{PerUser: Budget{Tokens: 1000}}
		var ledgers [2]*Ledger
		for i := range ledgers {
			l, err := NewLedger(LedgerOptions{Limits: limits, Store: NewDBStore(dbase.OpenHandle(t))})
			if err != nil {
				t.Fatal(err)
			}
			ledgers[i] = l
		}
		// Each replica serves calls of 100 tokens for the same user, in
		// turn, until one refuses.
		served := 0
		for i := 0; served < 50; i++ {
			l := ledgers[i%2]
			if err := l.Allow(ctx, "discord:42", "discord:7"); err != nil {
				if !errors.Is(err, ErrBudgetExceeded) {
					t.Fatal(err)
				}
				break
			}
			if err := l.Record(ctx, Record{Subject: "discord:42", Channel: "discord:7", Usage: Usage{PromptTokens: 90, CompletionTokens: 10}}); err != nil {
				t.Fatal(err)
			}
			served++
		}
		if served != 10 {
			t.Errorf("%d calls served across two replicas under a 1,000-token budget of 100-token calls, want 10", served)
		}
		for i, l := range ledgers {
			if err := l.Allow(ctx, "discord:42", "discord:8"); !errors.Is(err, ErrBudgetExceeded) {
				t.Errorf("replica %d allowed the user over budget: %v", i, err)
			}
		}

		// Both replicas at once: 20 goroutines each check and record one
		// call. The spend read before a call does not include calls in
		// flight, so some may pass together; afterwards every check fails.
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				l := ledgers[i%2]
				if err := l.Allow(ctx, "discord:43", "discord:7"); err == nil {
					if err := l.Record(ctx, Record{Subject: "discord:43", Usage: Usage{PromptTokens: 100}}); err != nil {
						t.Error(err)
					}
				} else if !errors.Is(err, ErrBudgetExceeded) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		sp, err := ledgers[0].Spent(ctx, ScopeUser, "discord:43")
		if err != nil {
			t.Fatal(err)
		}
		if sp.Requests < 10 {
			t.Errorf("only %d of 20 concurrent calls served; the budget allows 10", sp.Requests)
		}
		for i, l := range ledgers {
			if err := l.Allow(ctx, "discord:43", ""); !errors.Is(err, ErrBudgetExceeded) {
				t.Errorf("replica %d allowed the user over budget after concurrent calls: %v", i, err)
			}
		}
	})
}

// TestLedgerPurgesOldCalls: calls past the retention are forgotten, at
// the next Record after an hour.
func TestLedgerPurgesOldCalls(t *testing.T) {
	storetest.ForBackends(t, func(t *testing.T, bk storetest.Backend) {
		ctx := context.Background()
		db := bk.Fresh(t).OpenHandle(t)
		clock := &fixedClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
		l, err := NewLedger(LedgerOptions{Store: NewDBStore(db), Now: clock.Now, Retention: 48 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, Record{Channel: "c", Usage: Usage{PromptTokens: 1}}); err != nil {
			t.Fatal(err)
		}
		clock.set(clock.Now().Add(72 * time.Hour))
		if err := l.Record(ctx, Record{Channel: "c", Usage: Usage{PromptTokens: 2}}); err != nil {
			t.Fatal(err)
		}
		var n, tokens int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*), CAST(SUM(prompt_tokens) AS BIGINT) FROM llm_spend`).Scan(&n, &tokens); err != nil || n != 1 || tokens != 2 {
			t.Errorf("rows = %d (tokens %d), %v; want only the recent call", n, tokens, err)
		}
	})
}
