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

// Recorder receives every accounted call. The Ledger is an in-memory
// Recorder; a durable one (the store) can be chained with Tee.
type Recorder interface {
	Record(ctx context.Context, r Record) error
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

// Ledger keeps today's spend per channel and per user in memory and
// refuses calls over the Limits. Days are calendar days in Location (UTC
// when nil); a new day starts every window afresh. It is safe for
// concurrent use.
type Ledger struct {
	limits Limits
	loc    *time.Location
	now    func() time.Time

	mu   sync.Mutex
	day  string
	by   map[Scope]map[string]Spend
	next Recorder
}

// LedgerOptions configure a Ledger.
type LedgerOptions struct {
	Limits   Limits
	Location *time.Location   // day boundaries; nil = UTC
	Now      func() time.Time // nil = time.Now
	// Next, when set, receives every record after the ledger counted it
	// (the durable store).
	Next Recorder
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
	return &Ledger{limits: o.Limits, loc: o.Location, now: o.Now, next: o.Next, by: map[Scope]map[string]Spend{}}, nil
}

// roll starts a new day's windows when the day changed. l.mu is held.
func (l *Ledger) roll() {
	d := l.now().In(l.loc).Format(time.DateOnly)
	if d != l.day {
		l.day = d
		l.by = map[Scope]map[string]Spend{ScopeChannel: {}, ScopeUser: {}}
	}
}

// Allow returns a *BudgetError when the channel's or the subject's budget
// for today is used up (the channel is checked first), nil otherwise. An
// empty channel or subject is not limited.
func (l *Ledger) Allow(_ context.Context, subject, channel string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	if channel != "" && !l.limits.PerChannel.zero() && l.by[ScopeChannel][channel].over(l.limits.PerChannel) {
		return &BudgetError{Scope: ScopeChannel, Key: channel}
	}
	if subject != "" && !l.limits.PerUser.zero() && l.by[ScopeUser][subject].over(l.limits.PerUser) {
		return &BudgetError{Scope: ScopeUser, Key: subject}
	}
	return nil
}

// Record counts a call against today's windows and passes it on to Next.
// Cached answers cost nothing and are not counted.
func (l *Ledger) Record(ctx context.Context, r Record) error {
	if !r.Usage.Cached {
		l.mu.Lock()
		l.roll()
		add := func(s Scope, key string) {
			if key == "" {
				return
			}
			sp := l.by[s][key]
			sp.Cost += r.Usage.Cost
			sp.Tokens += r.Usage.TotalTokens()
			sp.Requests++
			l.by[s][key] = sp
		}
		add(ScopeChannel, r.Channel)
		add(ScopeUser, r.Subject)
		l.mu.Unlock()
	}
	if l.next != nil {
		if err := l.next.Record(ctx, r); err != nil {
			return fmt.Errorf("record llm usage: %w", err)
		}
	}
	return nil
}

// Spent returns today's spend of a channel or a subject.
func (l *Ledger) Spent(s Scope, key string) Spend {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.by[s][key]
}
