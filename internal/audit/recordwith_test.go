package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chatops/parley/internal/store"
)

// A scratch table stands for the store writes a caller makes beside its
// events (a confirmation stored or claimed).
func scratch(t *testing.T, f *fixture) {
	t.Helper()
	if _, err := f.db.ExecContext(context.Background(), `CREATE TABLE scratch (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
}

func scratchRows(t *testing.T, f *fixture) int {
	t.Helper()
	return rowsIn(t, f, "scratch")
}

// rowsIn counts the rows of a table, read from the database itself.
func rowsIn(t *testing.T, f *fixture, table string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordWithCommitsWritesAndEventsTogether(t *testing.T) {
	forBackends(t, testRecordWithCommitsTogether)
}

func testRecordWithCommitsTogether(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	scratch(t, f)
	ctx := context.Background()
	evs := requestEvents()

	// Both: the row and two events, in order, chained.
	stored, err := f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "c1"); err != nil {
			return nil, err
		}
		return evs[:2], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].Seq != 1 || stored[1].Seq != 2 || stored[1].PrevHash != stored[0].Hash {
		t.Fatalf("stored = %+v", stored)
	}
	if n := scratchRows(t, f); n != 1 {
		t.Fatalf("scratch rows = %d, want 1", n)
	}

	// The write fails after its first statement: nothing of it, no event.
	boom := errors.New("boom")
	_, err = f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "c2"); err != nil {
			return nil, err
		}
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the write's", err)
	}
	// An event does not validate: the write is rolled back with it.
	_, err = f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "c3"); err != nil {
			return nil, err
		}
		return []Event{evs[2], {Type: "no.such.type"}}, nil
	})
	if !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("err = %v, want ErrInvalidEvent", err)
	}
	if n := scratchRows(t, f); n != 1 {
		t.Errorf("scratch rows = %d after failed writes, want 1", n)
	}
	got, err := f.rec.List(ctx, Filter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("events after failed writes: %d, %v; want 2", len(got), err)
	}

	// No event: only the write is committed.
	if stored, err := f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, "c4")
		return nil, err
	}); err != nil || len(stored) != 0 {
		t.Fatalf("RecordWith without events = %v, %v", stored, err)
	}
	if n := scratchRows(t, f); n != 2 {
		t.Errorf("scratch rows = %d, want 2", n)
	}
	if res, err := f.rec.Verify(ctx); err != nil || !res.OK || res.Count != 2 {
		t.Errorf("verify = %v, %v", res, err)
	}
}

func TestVerifyTail(t *testing.T) { forBackends(t, testVerifyTail) }

func testVerifyTail(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	ctx := context.Background()
	for i := range 30 {
		f.record(t, Event{Type: MessageReceived, Text: fmt.Sprint("message ", i)})
	}
	tail := func(n int) VerifyResult {
		t.Helper()
		res, err := f.rec.VerifyTail(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := tail(10); !res.OK || res.Count != 10 || res.HeadSeq != 30 {
		t.Errorf("intact, last 10: %v", res)
	}
	if res := tail(100); !res.OK || res.Count != 30 {
		t.Errorf("intact, more than there are: %v", res)
	}

	// An edit before the tail is for the full check only.
	handEdit(t, f.dbase, `UPDATE audit_events SET text = 'forged' WHERE seq = 5`)
	if res := tail(10); !res.OK {
		t.Errorf("an edit at #5 failed the last 10: %v", res)
	}
	if res, err := f.rec.Verify(ctx); err != nil || res.OK || res.BadSeq != 5 {
		t.Errorf("full verify = %v, %v; want #5", res, err)
	}
	handEdit(t, f.dbase, `UPDATE audit_events SET text = 'message 4' WHERE seq = 5`)

	// Inside the tail: named.
	handEdit(t, f.dbase, `UPDATE audit_events SET text = 'forged' WHERE seq = 25`)
	if res := tail(10); res.OK || res.BadSeq != 25 || res.Problem != ProblemContent {
		t.Errorf("an edit at #25, last 10: %v", res)
	}
	handEdit(t, f.dbase, `UPDATE audit_events SET text = 'message 24' WHERE seq = 25`)

	// The first event of the tail is checked against the one before it.
	handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+Genesis+`' WHERE seq = 20`)
	if res := tail(10); res.OK || res.BadSeq != 21 || res.Problem != ProblemBrokenLink {
		t.Errorf("the hash before the tail rewritten, last 10: %v", res)
	}
	handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq = 20`)
	if res := tail(10); res.OK || res.BadSeq != 20 || res.Problem != ProblemMissing {
		t.Errorf("the event before the tail deleted, last 10: %v", res)
	}

	// A cut-off tail shows against the head row.
	f2 := newFixture(t, bk, Options{})
	for range 5 {
		f2.record(t, Event{Type: MessageReceived, Text: "m"})
	}
	handEdit(t, f2.dbase, `DELETE FROM audit_events WHERE seq = 5`)
	if res, err := f2.rec.VerifyTail(ctx, 3); err != nil || res.OK || res.Problem != ProblemTruncated {
		t.Errorf("truncated tail: %v, %v", res, err)
	}
}
