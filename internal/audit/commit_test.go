package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// holdCommitter queues a write that blocks the committer inside its
// transaction until release is called, so that the writes queued meanwhile
// form the next batch.
func holdCommitter(t *testing.T, f *fixture) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := f.rec.RecordWith(context.Background(), func(*store.Tx) ([]Event, error) {
			close(entered)
			<-gate
			return []Event{{Type: MessageReceived, Text: "hold"}}, nil
		})
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the committer did not start the holding write")
	}
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// waitQueued waits until n writes wait in the recorder's queue.
func waitQueued(t *testing.T, r *Recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.qmu.Lock()
		got := len(r.queue)
		r.qmu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentWritesShareACommit: writes that arrive while a batch
// commits are written together in the next one, in arrival order, and
// the chain verifies.
func TestConcurrentWritesShareACommit(t *testing.T) { forBackends(t, testConcurrentWritesShareACommit) }

func testConcurrentWritesShareACommit(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	ctx := context.Background()
	release := holdCommitter(t, f)
	const n = 20
	results := make([]Event, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := f.rec.Record(ctx, Event{Type: MessageReceived, Text: fmt.Sprint("w", i)})
			if err != nil {
				t.Error(err)
			}
			results[i] = e
		})
		waitQueued(t, f.rec, i+1) // arrival order is i's order
	}
	before := f.rec.batches.Load()
	release()
	wg.Wait()
	if got := f.rec.batches.Load() - before; got != 1 {
		t.Errorf("%d writes queued together took %d transactions, want 1", n, got)
	}
	for i, e := range results {
		if want := int64(i + 2); e.Seq != want { // the holding write is #1
			t.Errorf("write %d stored as #%d, want #%d (arrival order)", i, e.Seq, want)
		}
	}
	res, err := f.rec.Verify(ctx)
	if err != nil || !res.OK || res.Count != n+1 {
		t.Fatalf("Verify = %v, %v; want %d events OK", res, err, n+1)
	}
}

// TestRecordWithFailureInABatchFailsOnlyItself: a RecordWith whose write
// fails after writing, in a batch with other writes, is undone alone (a
// savepoint); the others commit.
func TestRecordWithFailureInABatchFailsOnlyItself(t *testing.T) {
	forBackends(t, testRecordWithFailureInABatch)
}

func testRecordWithFailureInABatch(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	scratch(t, f)
	ctx := context.Background()
	release := holdCommitter(t, f)
	boom := errors.New("boom")
	type outcome struct {
		stored []Event
		err    error
	}
	out := make([]outcome, 4)
	var wg sync.WaitGroup
	writes := []func(tx *store.Tx) ([]Event, error){
		func(tx *store.Tx) ([]Event, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "kept-1"); err != nil {
				return nil, err
			}
			return []Event{{Type: ConfirmationRequested, ConfirmationID: "kept-1"}}, nil
		},
		func(tx *store.Tx) ([]Event, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "undone"); err != nil {
				return nil, err
			}
			return nil, boom
		},
		func(tx *store.Tx) ([]Event, error) {
			// A statement that fails: on PostgreSQL it aborts the
			// transaction, which only the savepoint can take back.
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "kept-1"); err != nil {
				return nil, err
			}
			return []Event{{Type: ConfirmationRequested, ConfirmationID: "duplicate"}}, nil
		},
		func(tx *store.Tx) ([]Event, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "kept-2"); err != nil {
				return nil, err
			}
			return []Event{{Type: ConfirmationRequested, ConfirmationID: "kept-2"}}, nil
		},
	}
	for i, w := range writes {
		wg.Go(func() {
			stored, err := f.rec.RecordWith(ctx, w)
			out[i] = outcome{stored, err}
		})
		waitQueued(t, f.rec, i+1)
	}
	before := f.rec.batches.Load()
	release()
	wg.Wait()
	if got := f.rec.batches.Load() - before; got != 1 {
		t.Errorf("the batch took %d transactions, want 1 (the failures are undone by savepoints)", got)
	}
	if out[0].err != nil || len(out[0].stored) != 1 || out[0].stored[0].Seq != 2 {
		t.Errorf("first write: %+v", out[0])
	}
	if !errors.Is(out[1].err, boom) || out[1].stored != nil {
		t.Errorf("failing write: %+v, want boom", out[1])
	}
	if out[2].err == nil || out[2].stored != nil {
		t.Errorf("duplicate row: %+v, want its error", out[2])
	}
	if out[3].err != nil || len(out[3].stored) != 1 || out[3].stored[0].Seq != 3 || out[3].stored[0].PrevHash != out[0].stored[0].Hash {
		t.Errorf("last write: %+v, want #3 right after #2", out[3])
	}
	if n := scratchRows(t, f); n != 2 {
		t.Errorf("scratch rows = %d, want 2 (kept-1, kept-2)", n)
	}
	res, err := f.rec.Verify(ctx)
	if err != nil || !res.OK || res.Count != 3 {
		t.Fatalf("Verify = %v, %v; want 3 events OK", res, err)
	}
}

// TestFailedBatchIsRetriedWriteByWrite: when the database refuses one
// event of a batch (here a trigger), the batch's transaction fails; each
// write is then tried alone, so only the refused one fails, and its
// waiter hears why.
func TestFailedBatchIsRetriedWriteByWrite(t *testing.T) { forBackends(t, testFailedBatchIsRetried) }

func testFailedBatchIsRetried(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	ctx := context.Background()
	poison(t, f)
	release := holdCommitter(t, f)
	texts := []string{"before", "poison", "after"}
	errs := make([]error, len(texts))
	var wg sync.WaitGroup
	for i, text := range texts {
		wg.Go(func() { _, errs[i] = f.rec.Record(ctx, Event{Type: MessageReceived, Text: text}) })
		waitQueued(t, f.rec, i+1)
	}
	release()
	wg.Wait()
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("the writes beside the refused one failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "refused by test") {
		t.Errorf("refused write: err = %v, want the database's refusal", errs[1])
	}
	evs, err := f.rec.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Text)
	}
	if want := "hold before after"; strings.Join(got, " ") != want {
		t.Errorf("log holds %q, want %q", strings.Join(got, " "), want)
	}
	res, err := f.rec.Verify(ctx)
	if err != nil || !res.OK {
		t.Fatalf("Verify = %v, %v", res, err)
	}
}

// poison makes the database refuse any event whose text is "poison".
func poison(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{`CREATE TRIGGER poison BEFORE INSERT ON audit_events WHEN NEW.text = 'poison'
		BEGIN SELECT RAISE(ABORT, 'refused by test'); END`}
	if f.db.Dialect() == store.Postgres {
		stmts = []string{
			`CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER poison BEFORE INSERT ON audit_events FOR EACH ROW WHEN (NEW.text = 'poison') EXECUTE FUNCTION poison()`,
		}
	}
	for _, s := range stmts {
		if _, err := f.db.SQL().ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestEnqueuedEventsRideWithTheNextWait: events handed over with Enqueue
// are not written alone when a wait follows soon; they share its commit,
// and come first in the chain.
func TestEnqueuedEventsRideWithTheNextWait(t *testing.T) { forBackends(t, testEnqueuedRide) }

func testEnqueuedRide(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{CommitWindow: time.Minute})
	ctx := context.Background()
	evs := requestEvents()
	first := f.rec.Enqueue(ctx, evs[0], evs[1])
	second := f.rec.Enqueue(ctx, evs[2])
	select {
	case <-first.Done():
		t.Fatal("lazy events were written before anyone waited, inside the window")
	case <-time.After(50 * time.Millisecond):
	}
	before := f.rec.batches.Load()
	last, err := f.rec.Record(ctx, evs[3])
	if err != nil {
		t.Fatal(err)
	}
	if got := f.rec.batches.Load() - before; got != 1 {
		t.Errorf("the wait took %d transactions, want 1 with the lazy events", got)
	}
	a, err := first.Wait(ctx)
	if err != nil || len(a) != 2 || a[0].Seq != 1 || a[1].Seq != 2 {
		t.Fatalf("first = %+v, %v", a, err)
	}
	b, err := second.Wait(ctx)
	if err != nil || len(b) != 1 || b[0].Seq != 3 || last.Seq != 4 {
		t.Fatalf("second = %+v, %v; last #%d", b, err, last.Seq)
	}
}

// TestEnqueuedEventsAreWrittenWithinTheWindow: lazy events nobody waits
// for are durable after the commit window, without any other write.
func TestEnqueuedEventsAreWrittenWithinTheWindow(t *testing.T) { forBackends(t, testEnqueuedWindow) }

func testEnqueuedWindow(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{CommitWindow: 20 * time.Millisecond})
	p := f.rec.Enqueue(context.Background(), requestEvents()[0])
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lazy events were not written after the window")
	}
	if evs, err := f.rec.List(context.Background(), Filter{}); err != nil || len(evs) != 1 {
		t.Fatalf("List = %d events, %v; want 1", len(evs), err)
	}
}

// TestWaitGivenUpWithdrawsTheWrite: a waiter whose context ends while its
// write is still queued takes it back; it is never written.
func TestWaitGivenUpWithdrawsTheWrite(t *testing.T) { forBackends(t, testWaitGivenUp) }

func testWaitGivenUp(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	release := holdCommitter(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.rec.Record(ctx, Event{Type: MessageReceived, Text: "given up"})
		done <- err
	}()
	waitQueued(t, f.rec, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Record = %v, want context.Canceled", err)
	}
	release()
	evs, err := f.rec.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Text == "given up" {
			t.Errorf("a withdrawn write was stored: #%d", e.Seq)
		}
	}
}

// TestInvalidEnqueueFailsAtOnce: an invalid event fails its call before
// anything is queued.
func TestInvalidEnqueueFailsAtOnce(t *testing.T) {
	f := newFixture(t, backends()[0], Options{})
	p := f.rec.Enqueue(context.Background(), Event{Type: MessageReceived}, Event{Type: "nope"})
	if _, err := p.Wait(context.Background()); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("Wait = %v, want ErrInvalidEvent", err)
	}
	if n, _, err := f.rec.Head(context.Background()); err != nil || n != 0 {
		t.Fatalf("head = %d, %v; want an empty log", n, err)
	}
}

// TestLazyEventsLeftByAFullBatchAreWrittenWithinTheWindow: a waiter that
// writes the queue itself takes at most one batch; lazy events left
// behind it are still written within the commit window, with nobody
// waiting for them.
func TestLazyEventsLeftByAFullBatchAreWrittenWithinTheWindow(t *testing.T) {
	forBackends(t, testLazyLeftByAFullBatch)
}

func testLazyLeftByAFullBatch(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{CommitWindow: 20 * time.Millisecond})
	ctx := context.Background()
	e := requestEvents()[0]
	var lazy []*Pending
	for range maxBatchEvents + 44 {
		lazy = append(lazy, f.rec.Enqueue(ctx, e))
	}
	if _, err := lazy[0].Wait(ctx); err != nil {
		t.Fatal(err)
	}
	last := lazy[len(lazy)-1]
	select {
	case <-last.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lazy events left after a full batch were not written after the window")
	}
	if _, err := last.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := f.rec.List(ctx, Filter{})
	if err != nil || len(evs) != len(lazy) {
		t.Fatalf("List = %d events, %v; want %d", len(evs), err, len(lazy))
	}
}

// TestCloseWhileAWaiterWrites: Close called while a lone writer writes its
// own batch (the committer waiting for its turn) returns once that batch
// is done, with the write in the log.
func TestCloseWhileAWaiterWrites(t *testing.T) { forBackends(t, testCloseWhileAWaiterWrites) }

func testCloseWhileAWaiterWrites(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	release := holdCommitter(t, f)
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- f.rec.Close(ctx)
	}()
	// Close is waiting for the committer, which waits for the holding
	// write's turn to end.
	select {
	case err := <-closed:
		t.Fatalf("Close returned while a write was in progress: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close after the write ended: %v", err)
	}
	evs, err := f.rec.List(context.Background(), Filter{})
	if err != nil || len(evs) != 1 || evs[0].Text != "hold" {
		t.Fatalf("List = %+v, %v; want the holding write", evs, err)
	}
}

// TestPanicInABatchFailsItsWritesOnly: a RecordWith callback that panics
// fails its own write (the panic goes up the goroutine that wrote the
// batch, or is logged by the committer), nothing of it is stored, and the
// recorder goes on writing for everyone else.
func TestPanicInABatchFailsItsWritesOnly(t *testing.T) { forBackends(t, testPanicInABatch) }

func testPanicInABatch(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	ctx := context.Background()
	// Whoever writes the batch meets the panic: the waiter itself (the
	// panic comes up through RecordWith) or the committer, when it took
	// the write first (RecordWith fails with the panic in its error).
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil && v != "boom" {
				t.Errorf("recovered %v, want the callback's panic", v)
			} else if v != nil {
				err = fmt.Errorf("panicked: %v", v)
			}
		}()
		_, err = f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
			if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = 99`); err != nil {
				t.Error(err)
			}
			panic("boom")
		})
	}()
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("RecordWith whose callback panicked: %v, want the panic", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := f.rec.Record(wctx, requestEvents()[0])
	if err != nil {
		t.Fatalf("Record after the panic: %v", err)
	}
	if got.Seq != 1 {
		t.Errorf("the next event is #%d, want #1 (the panicked write left nothing)", got.Seq)
	}

	// While another write holds the turn, the committer writes the
	// panicking one: its waiter hears the panic as an error.
	release := holdCommitter(t, f)
	failed := make(chan error, 1)
	go func() {
		_, err := f.rec.RecordWith(wctx, func(*store.Tx) ([]Event, error) { panic("boom again") })
		failed <- err
	}()
	waitQueued(t, f.rec, 1)
	release()
	if err := <-failed; err == nil || !strings.Contains(err.Error(), "boom again") {
		t.Fatalf("RecordWith written by the committer: %v, want the panic as its error", err)
	}
	if _, err := f.rec.Record(wctx, requestEvents()[1]); err != nil {
		t.Fatalf("Record after the committer met a panic: %v", err)
	}
	if evs, err := f.rec.List(ctx, Filter{}); err != nil || len(evs) != 3 {
		t.Fatalf("List = %d events, %v; want 3 (two records and the holding write)", len(evs), err)
	}
}
