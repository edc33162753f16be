package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/store"
)

// fakeSeen is a shared de-duplication store: a set of keys, or an error.
type fakeSeen struct {
	mu     sync.Mutex
	keys   map[string]bool
	err    error
	calls  []string
	purges []time.Time
}

func (f *fakeSeen) Seen(_ context.Context, key string, _ time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, key)
	if f.err != nil {
		return false, f.err
	}
	seen := f.keys[key]
	f.keys[key] = true
	return seen, nil
}

func (f *fakeSeen) SeenTx(ctx context.Context, _ *store.Tx, key string, now time.Time) (bool, error) {
	return f.Seen(ctx, key, now)
}

func (f *fakeSeen) Shared(string) bool { return true }

func (f *fakeSeen) Purge(_ context.Context, now time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges = append(f.purges, now)
	return 0, f.err
}

// Collaborators a message reaches: the audit log refuses every write, the
// router fails, so a handled message is one message.received handed to the
// audit log (counted in received) and one error reply.
type refusingAudit struct{ received int }

func (a *refusingAudit) count(events []audit.Event) {
	for _, e := range events {
		if e.Type == audit.MessageReceived {
			a.received++
		}
	}
}

func (a *refusingAudit) Record(_ context.Context, e audit.Event) (audit.Event, error) {
	a.count([]audit.Event{e})
	return audit.Event{}, errors.New("audit unavailable")
}

// RecordWith refuses every write that has an event to record (the
// expiry sweep has none in these tests).
func (a *refusingAudit) RecordWith(_ context.Context, write func(*store.Tx) ([]audit.Event, error)) ([]audit.Event, error) {
	evs, err := write(nil)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	a.count(evs)
	return nil, errors.New("audit unavailable")
}

func (a *refusingAudit) EnqueueOne(_ context.Context, e audit.Event) *audit.Pending {
	a.count([]audit.Event{e})
	return audit.Settled(nil, errors.New("audit unavailable"))
}

func (a *refusingAudit) List(context.Context, audit.Filter) ([]audit.Event, error) { return nil, nil }

func (a *refusingAudit) Each(context.Context, audit.Filter, func(audit.Event) error) error {
	return nil
}

type countingSender struct{ replies []chat.Reply }

func (s *countingSender) Send(_ context.Context, r chat.Reply) (string, error) {
	s.replies = append(s.replies, r)
	return "", nil
}

type noExpiry struct{ Confirmations }

func (noExpiry) Self() string { return "test/run" }

func (noExpiry) ExpireDueTx(context.Context, *store.Tx, time.Time) ([]confirm.Confirmation, error) {
	return nil, nil
}

type noRouter struct{}

func (noRouter) Route(context.Context, intent.Query) (intent.Intent, error) {
	return intent.Intent{}, errors.New("not routed in this test")
}

type noPolicy struct{ Policy }

func newDedupePipeline(t *testing.T, seen SeenEvents) (*Pipeline, *refusingAudit, *countingSender) {
	t.Helper()
	reg, err := action.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	aud, snd := &refusingAudit{}, &countingSender{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := New(Config{Now: func() time.Time { return now }}, Deps{
		Router: noRouter{}, Actions: reg, Policy: noPolicy{}, Audit: aud,
		Confirmations: noExpiry{}, Sender: snd, SeenEvents: seen,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, aud, snd
}

func dedupeMsg(event string) chat.Message {
	return chat.Message{Platform: chat.Slack, Channel: "C1", User: "U1", Text: "status of checkout", EventID: event}
}

func TestSharedDedupeDropsWhatAnotherReplicaTook(t *testing.T) {
	// Ev1 was taken by another replica (before a failover); Ev2 is new.
	seen := &fakeSeen{keys: map[string]bool{"slack:Ev1": true}}
	p, aud, snd := newDedupePipeline(t, seen)
	ctx := context.Background()

	p.Handle(ctx, dedupeMsg("Ev1"))
	if aud.received != 0 || len(snd.replies) != 0 {
		t.Errorf("a redelivery another replica took was handled: %d messages received, %d replies", aud.received, len(snd.replies))
	}
	p.Handle(ctx, dedupeMsg("Ev2"))
	if aud.received != 1 || len(snd.replies) != 1 {
		t.Fatalf("a new event: %d messages received, %d replies; want 1 and 1", aud.received, len(snd.replies))
	}
	// A redelivery to this process is caught in memory, without a store call.
	p.Handle(ctx, dedupeMsg("Ev2"))
	if aud.received != 1 || len(snd.replies) != 1 {
		t.Errorf("a redelivery was handled again: %d messages received, %d replies", aud.received, len(snd.replies))
	}
	if got := len(seen.calls); got != 2 {
		t.Errorf("store asked %d times (%v), want 2: the in-memory check comes first", got, seen.calls)
	}
	// Messages without an event id are never de-duplicated.
	p.Handle(ctx, dedupeMsg(""))
	p.Handle(ctx, dedupeMsg(""))
	if aud.received != 3 {
		t.Errorf("messages without event ids: %d messages received, want 3", aud.received)
	}
}

func TestSharedDedupeFailureHandlesTheMessage(t *testing.T) {
	seen := &fakeSeen{keys: map[string]bool{}, err: errors.New("database unreachable")}
	p, aud, snd := newDedupePipeline(t, seen)
	p.Handle(context.Background(), dedupeMsg("Ev1"))
	if aud.received != 1 || len(snd.replies) != 1 {
		t.Errorf("with the store failing: %d messages received, %d replies; want the message handled", aud.received, len(snd.replies))
	}
	// The in-memory check still holds.
	p.Handle(context.Background(), dedupeMsg("Ev1"))
	if aud.received != 1 {
		t.Errorf("a redelivery to the same process was handled again with the store failing")
	}
}

func TestSweepPurgesSeenEvents(t *testing.T) {
	seen := &fakeSeen{keys: map[string]bool{}}
	p, _, _ := newDedupePipeline(t, seen)
	p.Sweep(context.Background())
	p.Handle(context.Background(), dedupeMsg("Ev1")) // the per-message sweep does not purge
	if len(seen.purges) != 1 || !seen.purges[0].Equal(p.cfg.Now()) {
		t.Errorf("purges = %v, want one at the pipeline's now", seen.purges)
	}
	seen.err = errors.New("database unreachable")
	p.Sweep(context.Background()) // logged, not fatal
	if len(seen.purges) != 2 {
		t.Errorf("purges = %d, want 2", len(seen.purges))
	}

	// Without SeenEvents, Sweep only expires confirmations (and must not
	// reach for the missing store).
	q, _, _ := newDedupePipeline(t, nil)
	q.Sweep(context.Background())
}
