package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// memory is an in-memory database: each handle is its own private one, so
// only suites that open a single handle run on it.
var memory = backend{Name: "memory", Fresh: func(t testing.TB) database {
	return database{Open: func(ctx context.Context) (*store.DB, error) { return store.Open(ctx, store.Memory) }}
}}

// The package's suites that use one handle run on an in-memory database
// with write-behind too (fixtures ask for it; other databases ignore it):
// the log keeps every guarantee it has on a file.
func TestWriteBehindKeepsTheLogsGuarantees(t *testing.T) {
	for _, s := range []struct {
		name string
		test func(*testing.T, backend)
	}{
		{"RecordChainsAndReadsBack", testRecordChainsAndReadsBack},
		{"RecordKeepsCallerTime", testRecordKeepsCallerTime},
		{"RecordRejectsInvalidEvents", testRecordRejectsInvalidEvents},
		{"RecordBoundsText", testRecordBoundsText},
		{"ConcurrentRecordKeepsOneChain", testConcurrentRecordKeepsOneChain},
		{"GetNotFound", testGetNotFound},
		{"List", testList},
		{"SinksGetEventsInOrder", testSinksGetEventsInOrderAndNeverFailRecord},
		{"SlowSinkDoesNotBlockRecord", testSlowSinkDoesNotBlockRecord},
		{"RecordWithCommitsTogether", testRecordWithCommitsTogether},
		{"RecordWithFailureInABatch", testRecordWithFailureInABatch},
		{"EnqueuedRide", testEnqueuedRide},
		{"WaitGivenUp", testWaitGivenUp},
		{"CloseWhileAWaiterWrites", testCloseWhileAWaiterWrites},
		{"MixedWriters", testMixedWriters},
		{"ExportJSONLRoundTrips", testExportJSONLRoundTrips},
	} {
		t.Run(s.name, func(t *testing.T) { s.test(t, memory) })
	}
}

// copied counts the events in the database itself, past the recorder.
func copied(t *testing.T, f *fixture) int {
	t.Helper()
	return rowsIn(t, f, "audit_events")
}

// behindFixture records on an in-memory database whose copy waits for a
// read (the window is an hour) unless window says otherwise.
func behindFixture(t *testing.T, window time.Duration) *fixture {
	t.Helper()
	f := newFixture(t, memory, Options{CommitWindow: window})
	if f.rec.behind == nil {
		t.Fatal("no write-behind on an in-memory database")
	}
	return f
}

func recordN(t *testing.T, f *fixture, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		f.record(t, Event{Type: MessageReceived, Platform: "console", Channel: "console:ops", Subject: "console:u", Text: fmt.Sprintf("message %d", i)})
	}
}

func TestWriteBehindAnswersBeforeTheCopyAndReadsCatchUp(t *testing.T) {
	ctx := context.Background()
	f := behindFixture(t, time.Hour)
	recordN(t, f, 0, 5)
	// The first write read the head in a transaction; the others are in
	// the recorder's memory only.
	if n := copied(t, f); n != 1 {
		t.Fatalf("%d events copied before any read, want only the first (1)", n)
	}
	got, err := f.rec.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4].Seq != 5 || got[4].Text != "message 4" {
		t.Fatalf("List after 5 records: %d events, last %+v", len(got), got[len(got)-1])
	}
	if n := copied(t, f); n != 5 {
		t.Fatalf("%d events copied after a read, want 5", n)
	}
	seq, hash, err := f.rec.Head(ctx)
	if err != nil || seq != 5 || hash != got[4].Hash {
		t.Fatalf("Head = %d %s, %v; want 5 %s", seq, hash, err, got[4].Hash)
	}
	recordN(t, f, 5, 3)
	if res, err := f.rec.Verify(ctx); err != nil || !res.OK || res.Count != 8 {
		t.Fatalf("Verify = %v, %v; want OK with 8 events", res, err)
	}
	if e, err := f.rec.Get(ctx, 8); err != nil || e.Text != "message 7" {
		t.Fatalf("Get(8) = %+v, %v", e, err)
	}
}

// A RecordWith write goes after the backlog, in its own transaction, and
// its store change and events still commit together.
func TestWriteBehindRecordWithFollowsTheBacklog(t *testing.T) {
	ctx := context.Background()
	f := behindFixture(t, time.Hour)
	scratch(t, f)
	recordN(t, f, 0, 4)
	stored, err := f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES ('one')`); err != nil {
			return nil, err
		}
		return []Event{{Type: ConfirmationRequested, Platform: "console", Channel: "console:ops", Subject: "console:u", Action: "kubernetes.scale", ConfirmationID: "c1"}}, nil
	})
	if err != nil || len(stored) != 1 || stored[0].Seq != 5 {
		t.Fatalf("RecordWith after 4 records = %+v, %v; want #5", stored, err)
	}
	if n := copied(t, f); n != 5 {
		t.Fatalf("%d events in the database after RecordWith, want the backlog and its event (5)", n)
	}
	if n := scratchRows(t, f); n != 1 {
		t.Fatalf("%d scratch rows after RecordWith, want its 1", n)
	}
	recordN(t, f, 4, 2)
	if res, err := f.rec.Verify(ctx); err != nil || !res.OK || res.Count != 7 {
		t.Fatalf("Verify = %v, %v; want OK with 7 events", res, err)
	}
}

// Without a read, the copy runs within the window.
func TestWriteBehindCopiesWithinTheWindow(t *testing.T) {
	f := behindFixture(t, time.Millisecond)
	recordN(t, f, 0, 10)
	deadline := time.Now().Add(10 * time.Second)
	for copied(t, f) != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 events copied after 10s, with a 1ms window", copied(t, f))
		}
		time.Sleep(time.Millisecond)
	}
}

// A full backlog is copied by the writer that filled it: it stays bounded
// even when nothing reads and the window is long.
func TestWriteBehindBacklogIsBounded(t *testing.T) {
	ctx := context.Background()
	f := behindFixture(t, time.Hour)
	recordN(t, f, 0, 1)
	batch := make([]Event, 100)
	for i := range batch {
		batch[i] = Event{Type: IntentRouted, Platform: "console", Channel: "console:ops", Subject: "console:u", Action: "help"}
	}
	for range maxBehindRows/len(batch) + 1 {
		if _, err := f.rec.Enqueue(ctx, batch...).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	total := 1 + (maxBehindRows/len(batch)+1)*len(batch)
	if n := copied(t, f); n < maxBehindRows || n > total {
		t.Fatalf("%d of %d events copied without a read, want at least the bound %d", n, total, maxBehindRows)
	}
}

// When the copy fails, the log fails: no write is answered as recorded
// after it, and reads say why.
func TestWriteBehindFailedCopyFailsTheLog(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Not a fixture: its clean-up would close the recorder again.
	f := &fixture{db: db, rec: New(db, Options{WriteBehind: true, CommitWindow: time.Hour, Now: newClock().Now})}
	recordN(t, f, 0, 3)
	// Events #2 and #3 wait to be copied; the table they go to is gone.
	if _, err := f.db.ExecContext(ctx, `ALTER TABLE audit_events RENAME TO audit_events_gone`); err != nil {
		t.Fatal(err)
	}
	_, err = f.rec.List(ctx, Filter{})
	if err == nil || !strings.Contains(err.Error(), "copying events #2 to #3") {
		t.Fatalf("List after a failed copy: %v, want the copy's failure", err)
	}
	if _, err := f.rec.Record(ctx, Event{Type: MessageReceived, Text: "after"}); err == nil || !strings.Contains(err.Error(), "the log is failed") {
		t.Fatalf("Record after a failed copy: %v, want it refused", err)
	}
	if _, err := f.rec.RecordWith(ctx, func(*store.Tx) ([]Event, error) { return nil, errors.New("not reached") }); err == nil || !strings.Contains(err.Error(), "the log is failed") {
		t.Fatalf("RecordWith after a failed copy: %v, want it refused", err)
	}
	if _, err := f.rec.Verify(ctx); err == nil {
		t.Fatal("Verify after a failed copy succeeded")
	}
	if err := f.rec.Close(ctx); err == nil || !strings.Contains(err.Error(), "the log is failed") {
		t.Fatalf("Close after a failed copy: %v, want the failure", err)
	}
	if !f.rec.closed {
		t.Error("Close that reported a failed copy left the sinks running")
	}
}

// Close copies the backlog; writes after it are transactions again.
func TestWriteBehindCloseCopiesTheBacklog(t *testing.T) {
	ctx := context.Background()
	f := behindFixture(t, time.Hour)
	recordN(t, f, 0, 4)
	if err := f.rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := copied(t, f); n != 4 {
		t.Fatalf("%d events in the database after Close, want 4", n)
	}
	recordN(t, f, 4, 1)
	if n := copied(t, f); n != 5 {
		t.Fatalf("%d events in the database after a write after Close, want 5", n)
	}
}

// Anywhere but an in-memory database, WriteBehind is ignored: a record
// is in the database when Record returns.
func TestWriteBehindOnlyInMemory(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := New(db, Options{WriteBehind: true, CommitWindow: time.Hour})
	defer rec.Close(ctx)
	if rec.behind != nil {
		t.Fatal("write-behind on a file")
	}
	f := &fixture{db: db, rec: rec}
	recordN(t, f, 0, 3)
	if n := copied(t, f); n != 3 {
		t.Fatalf("%d events in the file after 3 records, want 3", n)
	}
}
