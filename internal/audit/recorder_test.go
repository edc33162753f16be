package audit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/store"
)

// clock is a manual clock: each call returns the next millisecond.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 14, 2, 14, 7, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

type fixture struct {
	db    *store.DB
	dbase database
	rec   *Recorder
}

func newFixture(t *testing.T, bk backend, opts Options) *fixture { return newFixtureTB(t, bk, opts) }

func newFixtureTB(t testing.TB, bk backend, opts Options) *fixture {
	t.Helper()
	dbase := bk.Fresh(t)
	db := dbase.OpenHandle(t)
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	// As Parley asks: it only applies to an in-memory database (the
	// memory backend of behind_test.go).
	opts.WriteBehind = true
	rec := New(db, opts)
	t.Cleanup(func() {
		if err := rec.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &fixture{db: db, dbase: dbase, rec: rec}
}

func (f *fixture) record(t *testing.T, e Event) Event {
	t.Helper()
	got, err := f.rec.Record(context.Background(), e)
	if err != nil {
		t.Fatalf("Record(%s): %v", e.Type, err)
	}
	return got
}

// requestEvents is the trail of one confirmed scale request.
func requestEvents() []Event {
	base := Event{RequestID: "req-1", Platform: "console", Channel: "console:ops", Subject: "console:alice"}
	params := action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}
	with := func(e Event) Event {
		e.RequestID, e.Platform, e.Channel, e.Subject = base.RequestID, base.Platform, base.Channel, base.Subject
		return e
	}
	return []Event{
		with(Event{Type: MessageReceived, Text: "scale checkout to 5 in prod"}),
		with(Event{Type: IntentRouted, Action: action.KubernetesScale, Params: params, Router: "rules", Confidence: 0.92,
			Details: map[string]string{"note": "exact deployment name"}}),
		with(Event{Type: PolicyDecided, Action: action.KubernetesScale, Params: params, Decision: Confirm, Rule: "sre changes prod"}),
		with(Event{Type: ConfirmationRequested, Action: action.KubernetesScale, Params: params, ConfirmationID: "c0ffee00c0ffee00c0ffee00c0ffee00"}),
		with(Event{Type: ActionStarted, Action: action.KubernetesScale, Params: params, ConfirmationID: "c0ffee00c0ffee00c0ffee00c0ffee00"}),
		with(Event{Type: ActionSucceeded, Action: action.KubernetesScale, Params: params, Outcome: "replicas 3 -> 5",
			Duration: 1234567 * time.Microsecond}),
	}
}

func TestRecordChainsAndReadsBack(t *testing.T) { forBackends(t, testRecordChainsAndReadsBack) }

func testRecordChainsAndReadsBack(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	ctx := context.Background()
	var recorded []Event
	for i, e := range requestEvents() {
		got := f.record(t, e)
		if got.Seq != int64(i+1) {
			t.Errorf("event %d: Seq = %d, want %d", i, got.Seq, i+1)
		}
		wantPrev := Genesis
		if i > 0 {
			wantPrev = recorded[i-1].Hash
		}
		if got.PrevHash != wantPrev {
			t.Errorf("#%d PrevHash = %s, want %s", got.Seq, got.PrevHash, wantPrev)
		}
		if len(got.Hash) != 64 {
			t.Errorf("#%d Hash = %q, want 64 hex digits", got.Seq, got.Hash)
		}
		if got.Time.Location() != time.UTC || got.Time.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("#%d Time = %v, want UTC at millisecond precision", got.Seq, got.Time)
		}
		recorded = append(recorded, got)
	}
	if d := recorded[5].Duration; d != 1234*time.Millisecond {
		t.Errorf("Duration = %v, want truncated to 1.234s", d)
	}

	for _, want := range recorded {
		got, err := f.rec.Get(ctx, want.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%d) =\n%#v\nwant\n%#v", want.Seq, got, want)
		}
	}
	// Integer parameters come back as int, so canonical forms agree.
	if n, ok := recorded[1].Params.Int("replicas"); !ok || n != 5 {
		t.Errorf("replicas = %v, want int 5", recorded[1].Params["replicas"])
	}

	res, err := f.rec.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Count != 6 || res.HeadSeq != 6 || res.HeadHash != recorded[5].Hash {
		t.Errorf("Verify = %+v, want OK with 6 events and head %s", res, recorded[5].Hash)
	}
	if want := "audit log OK: 6 events, head 6:" + recorded[5].Hash; res.String() != want {
		t.Errorf("String() = %q, want %q", res.String(), want)
	}
	seq, hash, err := f.rec.Head(ctx)
	if err != nil || seq != 6 || hash != recorded[5].Hash {
		t.Errorf("Head = %d, %s, %v", seq, hash, err)
	}
}

func TestRecordKeepsCallerTime(t *testing.T) { forBackends(t, testRecordKeepsCallerTime) }

func testRecordKeepsCallerTime(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))
	got := f.record(t, Event{Type: MessageReceived, Time: at})
	if want := at.UTC().Truncate(time.Millisecond); !got.Time.Equal(want) || got.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v", got.Time, want)
	}
}

func TestRecordRejectsInvalidEvents(t *testing.T) { forBackends(t, testRecordRejectsInvalidEvents) }

func testRecordRejectsInvalidEvents(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	for name, e := range map[string]Event{
		"no type":           {},
		"unknown type":      {Type: "action.exploded"},
		"unknown decision":  {Type: PolicyDecided, Decision: "maybe"},
		"negative duration": {Type: ActionSucceeded, Duration: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := f.rec.Record(context.Background(), e); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Record = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if evs, err := f.rec.List(context.Background(), Filter{}); err != nil || len(evs) != 0 {
		t.Errorf("List after rejected events = %d events, %v; want none", len(evs), err)
	}
}

func TestRecordBoundsText(t *testing.T) { forBackends(t, testRecordBoundsText) }

func testRecordBoundsText(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	long := strings.Repeat("ü", 3000) // 6000 bytes of two-byte runes
	params := action.Params{"filter": long, "limit": 10}
	details := map[string]string{"note": long}
	for i := range 40 {
		details[fmt.Sprintf("x%02d", i)] = "v" // sorted after "note", so these overflow
	}
	got := f.record(t, Event{Type: InputRejected, Text: long, Error: long, Outcome: long,
		Subject: long, Params: params, Details: details, Confidence: 7})

	check := func(field, v string, limit int) {
		t.Helper()
		if len(v) > limit || !strings.HasSuffix(v, truncMarker) || !utf8.ValidString(v) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, marked %v; want at most %d, valid, marked",
				field, len(v), utf8.ValidString(v), strings.HasSuffix(v, truncMarker), limit)
		}
	}
	check("Text", got.Text, maxText)
	check("Error", got.Error, maxLong)
	check("Outcome", got.Outcome, maxLong)
	check("Subject", got.Subject, maxShort)
	check("Params[filter]", got.Params.String("filter"), maxValue)
	check("Details[note]", got.Details["note"], maxValue)
	if len(got.Details) != maxMapEntries+1 || got.Details[paramsOverflow] == "" {
		t.Errorf("Details has %d entries, want %d with an overflow note", len(got.Details), maxMapEntries+1)
	}
	if got.Confidence != 1 {
		t.Errorf("Confidence = %v, want clamped to 1", got.Confidence)
	}
	// The caller's maps are not modified.
	if params.String("filter") != long || len(details) != 41 {
		t.Error("Record modified the caller's params or details")
	}
	stored, err := f.rec.Get(context.Background(), got.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, got) {
		t.Error("stored event differs from the returned one")
	}
}

func TestConcurrentRecordKeepsOneChain(t *testing.T) {
	forBackends(t, testConcurrentRecordKeepsOneChain)
}

func testConcurrentRecordKeepsOneChain(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	const workers, each = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := f.rec.Record(context.Background(), Event{
					Type: MessageReceived, Subject: fmt.Sprintf("console:u%d", w), Text: fmt.Sprint(i)})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res, err := f.rec.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Count != workers*each {
		t.Fatalf("Verify = %s, want OK with %d events", res, workers*each)
	}
}

func TestChainContinuesAfterReopen(t *testing.T) { forBackends(t, testChainContinuesAfterReopen) }

func testChainContinuesAfterReopen(t *testing.T, bk backend) {
	dbase := bk.Fresh(t)
	ctx := context.Background()
	clk := newClock()
	for round := range 3 {
		db, err := dbase.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rec := New(db, Options{Now: clk.Now})
		for range 2 {
			if _, err := rec.Record(ctx, Event{Type: MessageReceived, Text: fmt.Sprint("round ", round)}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := rec.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Count != int64(2*(round+1)) {
			t.Errorf("round %d: %s", round, res)
		}
		if err := rec.Close(ctx); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestRecordRefusesWithoutHeadRow(t *testing.T) { forBackends(t, testRecordRefusesWithoutHeadRow) }

func testRecordRefusesWithoutHeadRow(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	f.record(t, Event{Type: MessageReceived})
	if _, err := f.db.ExecContext(context.Background(), `DELETE FROM audit_head`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Record(context.Background(), Event{Type: ActionStarted}); err == nil {
		t.Fatal("Record succeeded with the head row deleted; want an error")
	}
}

func TestGetNotFound(t *testing.T) { forBackends(t, testGetNotFound) }

func testGetNotFound(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	if _, err := f.rec.Get(context.Background(), 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(1) on empty log = %v, want ErrNotFound", err)
	}
}

func TestList(t *testing.T) { forBackends(t, testList) }

func testList(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	for _, e := range requestEvents() {
		f.record(t, e)
	}
	f.record(t, Event{Type: MessageReceived, RequestID: "req-2", Channel: "slack:C1", Subject: "slack:U1", Text: "help"})
	f.record(t, Event{Type: ReplyFailed, RequestID: "req-2", Channel: "slack:C1", Subject: "slack:U1", Error: "rate limited"})
	first, _ := f.rec.Get(context.Background(), 1)

	seqs := func(evs []Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	tests := []struct {
		name   string
		filter Filter
		want   []int64
	}{
		{"all", Filter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"after seq", Filter{AfterSeq: 6}, []int64{7, 8}},
		{"types", Filter{Types: []Type{MessageReceived, ReplyFailed}}, []int64{1, 7, 8}},
		{"subject", Filter{Subject: "slack:U1"}, []int64{7, 8}},
		{"channel", Filter{Channel: "console:ops"}, []int64{1, 2, 3, 4, 5, 6}},
		{"action", Filter{Action: action.KubernetesScale, Types: []Type{PolicyDecided}}, []int64{3}},
		{"request", Filter{RequestID: "req-2"}, []int64{7, 8}},
		{"confirmation", Filter{ConfirmationID: "c0ffee00c0ffee00c0ffee00c0ffee00"}, []int64{4, 5}},
		{"newest first with limit", Filter{NewestFirst: true, Limit: 3}, []int64{8, 7, 6}},
		{"limit", Filter{Limit: 2}, []int64{1, 2}},
		{"since until", Filter{Since: first.Time.Add(time.Millisecond), Until: first.Time.Add(3 * time.Millisecond)}, []int64{2, 3}},
		{"nothing", Filter{Subject: "discord:nobody"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := f.rec.List(context.Background(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(evs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List = %v, want %v", got, tt.want)
			}
		})
	}
}

// recordingSink collects events; it can be told to fail or to block.
type recordingSink struct {
	mu     sync.Mutex
	events []Event
	fail   bool
	block  chan struct{} // when set, Write waits for it to close
}

func (s *recordingSink) Write(ctx context.Context, e Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	if s.fail {
		return errors.New("sink down")
	}
	return nil
}

func (s *recordingSink) seqs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, e := range s.events {
		out = append(out, e.Seq)
	}
	return out
}

func TestSinksGetEventsInOrderAndNeverFailRecord(t *testing.T) {
	forBackends(t, testSinksGetEventsInOrderAndNeverFailRecord)
}

func testSinksGetEventsInOrderAndNeverFailRecord(t *testing.T, bk backend) {
	ok, failing := &recordingSink{}, &recordingSink{fail: true}
	f := newFixture(t, bk, Options{Sinks: []Sink{ok, failing}})
	for range 5 {
		f.record(t, Event{Type: MessageReceived})
	}
	if err := f.rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 2, 3, 4, 5}
	if got := ok.seqs(); !reflect.DeepEqual(got, want) {
		t.Errorf("sink got %v, want %v", got, want)
	}
	if got := failing.seqs(); !reflect.DeepEqual(got, want) {
		t.Errorf("failing sink got %v, want %v", got, want)
	}
	// Recording after Close still reaches the database.
	if e := f.record(t, Event{Type: MessageReceived}); e.Seq != 6 {
		t.Errorf("Seq after Close = %d, want 6", e.Seq)
	}
	if got := ok.seqs(); len(got) != 5 {
		t.Errorf("sink got %d events after Close, want 5", len(got))
	}
}

func TestSlowSinkDoesNotBlockRecord(t *testing.T) { forBackends(t, testSlowSinkDoesNotBlockRecord) }

func testSlowSinkDoesNotBlockRecord(t *testing.T, bk backend) {
	slow := &recordingSink{block: make(chan struct{})}
	f := newFixture(t, bk, Options{Sinks: []Sink{slow}, SinkQueue: 2})
	// The sink holds one event and queues two; the rest are dropped. If
	// Record waited for the sink, this loop would never finish.
	for range 10 {
		f.record(t, Event{Type: MessageReceived})
	}
	close(slow.block)
	if err := f.rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := slow.seqs(); len(got) < 1 || len(got) > 3 || got[0] != 1 {
		t.Errorf("slow sink got %v, want the first one to three events", got)
	}
	res, err := f.rec.Verify(context.Background())
	if err != nil || !res.OK || res.Count != 10 {
		t.Errorf("Verify = %v, %v; want 10 events OK", res, err)
	}
}
