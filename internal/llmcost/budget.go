package llmcost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Record is one model call, as accounted: who asked, where, what it was
// read as, and what it cost.
type Record struct {
	Time      time.Time
	RequestID string
	Subject   string // "platform:user"
	Channel   string // "platform:channel"
	Action    string // the action the call resulted in ("" for summaries)
	Purpose   string // "route", "summary"
	Usage     Usage
}

// Budget is a daily allowance. A zero field is no limit on that measure.
type Budget struct {
	Cost   float64 `yaml:"cost_usd" json:"cost_usd"` // US dollars per day
	Tokens int     `yaml:"tokens" json:"tokens"`     // prompt+completion tokens per day
}

func (b Budget) zero() bool { return b.Cost <= 0 && b.Tokens <= 0 }

// Spend is what was spent in one window.
type Spend struct {
	Cost     float64
	Tokens   int
	Requests int
}

func (s Spend) over(b Budget) bool {
	return b.Cost > 0 && s.Cost >= b.Cost || b.Tokens > 0 && s.Tokens >= b.Tokens
}

// Limits are the daily budgets.
type Limits struct {
	PerChannel Budget `yaml:"per_channel" json:"per_channel"`
	PerUser    Budget `yaml:"per_user" json:"per_user"`
}

// Scope names what a budget applies to.
type Scope string

// Budget scopes.
const (
	ScopeChannel Scope = "channel"
	ScopeUser    Scope = "user"
)

// ErrBudgetExceeded is wrapped by every *BudgetError.
var ErrBudgetExceeded = errors.New("LLM budget used up")

// BudgetError says whose budget is used up. Key is the channel or subject;
// it is an id, never a secret.
type BudgetError struct {
	Scope Scope
	Key   string
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("LLM budget for this %s is used up today", e.Scope)
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExceeded }

// SpendStore keeps every paid call and sums them. *DBStore keeps them in
// Parley's database, so that budgets hold across restarts and replicas;
// without one a Ledger keeps them in memory.
type SpendStore interface {
	// Add keeps one call.
	Add(ctx context.Context, r Record) error
	// Sum is the spend of a channel (ScopeChannel) or a subject
	// (ScopeUser) in [from, to).
	Sum(ctx context.Context, scope Scope, key string, from, to time.Time) (Spend, error)
	// Purge forgets calls before t.
	Purge(ctx context.Context, before time.Time) (int64, error)
}

// DefaultRetention is how long a Ledger keeps calls: long enough for a
// month's cost report, short enough that the table stays small.
const DefaultRetention = 90 * 24 * time.Hour

// purgeEvery is how often Record purges calls past the retention.
const purgeEvery = time.Hour

// Ledger checks daily budgets per channel and per user against the spend
// its SpendStore holds, and records every paid call there. Days are
// calendar days in Location (UTC when nil). It is safe for concurrent use.
//
// The budget is checked before each call and the call recorded after it,
// so calls in flight at once (in this process or in other replicas) may
// together go over a budget by at most their own cost; the next call
// after them is refused.
type Ledger struct {
	limits    Limits
	loc       *time.Location
	now       func() time.Time
	store     SpendStore
	retention time.Duration

	mu       sync.Mutex
	lastPurg time.Time
}

// LedgerOptions configure a Ledger.
type LedgerOptions struct {
	Limits   Limits
	Location *time.Location   // day boundaries; nil = UTC
	Now      func() time.Time // nil = time.Now
	// Store keeps the calls; nil keeps them in this process's memory
	// (lost at exit, not shared with other replicas).
	Store SpendStore
	// Retention is how long calls are kept (default DefaultRetention;
	// negative: for ever).
	Retention time.Duration
}

// NewLedger returns a Ledger.
func NewLedger(o LedgerOptions) (*Ledger, error) {
	for name, b := range map[string]Budget{"per_channel": o.Limits.PerChannel, "per_user": o.Limits.PerUser} {
		if b.Cost < 0 || b.Tokens < 0 {
			return nil, fmt.Errorf("llm budget %s: negative limit", name)
		}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Store == nil {
		o.Store = &memStore{}
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	return &Ledger{limits: o.Limits, loc: o.Location, now: o.Now, store: o.Store, retention: o.Retention}, nil
}

// today is the current day's window in the ledger's location.
func (l *Ledger) today() (from, to time.Time) {
	n := l.now().In(l.loc)
	from = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, l.loc)
	return from, from.AddDate(0, 0, 1)
}

// Allow returns a *BudgetError when the channel's or the subject's budget
// for today is used up (the channel is checked first), nil otherwise. An
// empty channel or subject is not limited. When today's spend cannot be
// read, Allow refuses too (with that error): an unknown spend is not a
// licence to spend.
func (l *Ledger) Allow(ctx context.Context, subject, channel string) error {
	from, to := l.today()
	for _, c := range []struct {
		scope Scope
		key   string
		b     Budget
	}{{ScopeChannel, channel, l.limits.PerChannel}, {ScopeUser, subject, l.limits.PerUser}} {
		if c.key == "" || c.b.zero() {
			continue
		}
		sp, err := l.store.Sum(ctx, c.scope, c.key, from, to)
		if err != nil {
			return fmt.Errorf("llm budget: today's spend of this %s is unknown, so the model is not called: %w", c.scope, err)
		}
		if sp.over(c.b) {
			return &BudgetError{Scope: c.scope, Key: c.key}
		}
	}
	return nil
}

// Record keeps a paid call. Cached answers cost nothing and are not kept.
// It also purges calls past the retention, at most once an hour.
func (l *Ledger) Record(ctx context.Context, r Record) error {
	if r.Usage.Cached {
		return nil
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	if err := l.store.Add(ctx, r); err != nil {
		return fmt.Errorf("record llm usage: %w", err)
	}
	if l.retention > 0 {
		now := l.now()
		l.mu.Lock()
		due := now.Sub(l.lastPurg) >= purgeEvery
		if due {
			l.lastPurg = now
		}
		l.mu.Unlock()
		if due {
			if _, err := l.store.Purge(ctx, now.Add(-l.retention)); err != nil {
				return fmt.Errorf("purge llm usage: %w", err)
			}
		}
	}
	return nil
}

// Spent returns today's spend of a channel or a subject.
func (l *Ledger) Spent(ctx context.Context, s Scope, key string) (Spend, error) {
	from, to := l.today()
	return l.store.Sum(ctx, s, key, from, to)
}

// memStore is the in-memory SpendStore.
type memStore struct {
	mu    sync.Mutex
	calls []Record
}

func (m *memStore) Add(_ context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, r)
	return nil
}

func (m *memStore) Sum(_ context.Context, scope Scope, key string, from, to time.Time) (Spend, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sp Spend
	for _, r := range m.calls {
		k := r.Channel
		if scope == ScopeUser {
			k = r.Subject
		}
		if k != key || r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		sp.Cost += r.Usage.Cost
		sp.Tokens += r.Usage.TotalTokens()
		sp.Requests++
	}
	return sp, nil
}

func (m *memStore) Purge(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.calls[:0]
	for _, r := range m.calls {
		if !r.Time.Before(before) {
			kept = append(kept, r)
		}
	}
	n := int64(len(m.calls) - len(kept))
	clear(m.calls[len(kept):])
	m.calls = kept
	return n, nil
}
