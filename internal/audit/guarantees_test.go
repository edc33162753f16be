package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chatops/parley/internal/store"
)

// The guarantees of group commit, each write kind beside the others and
// across replicas: one total order that keeps every writer's own order,
// a write's events together, a RecordWith's store writes with its events,
// and a failure told to every waiter it touches.

// TestMixedWritersOnReplicasKeepOneOrder: two replicas (handles on one
// database, each with its own recorder), each with writers of every
// kind at once — Record, Enqueue then Wait, RecordWith with a store write
// — leave one chain that verifies, every event once, each writer's events
// in the order it handed them over, each write's events side by side, and
// a scratch row for each RecordWith, no more.
func TestMixedWritersOnReplicasKeepOneOrder(t *testing.T) { forBackends(t, testMixedWriters) }

func testMixedWriters(t *testing.T, bk backend) {
	dbase := bk.Fresh(t)
	ctx := context.Background()
	const writers, each = 6, 12
	replicas := 2
	if bk.Name == memory.Name {
		replicas = 1 // each handle is a database of its own
	}
	recs := make([]*Recorder, replicas)
	for i := range recs {
		recs[i] = New(dbase.OpenHandle(t), Options{Now: newClock().Now, WriteBehind: true})
		t.Cleanup(func() { recs[i].Close(ctx) })
	}
	if _, err := recs[0].db.ExecContext(ctx, `CREATE TABLE scratch (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, replicas*writers)
	withs := 0
	for r, rec := range recs {
		for w := range writers {
			who := fmt.Sprintf("console:r%dw%d", r, w)
			kind := w % 3
			if kind == 2 {
				withs += each
			}
			wg.Go(func() {
				ev := func(i, k int) Event {
					return Event{Type: MessageReceived, Subject: who, Text: fmt.Sprintf("%d.%d", i, k)}
				}
				for i := range each {
					var err error
					switch kind {
					case 0:
						_, err = rec.Record(ctx, ev(i, 0))
					case 1:
						_, err = rec.Enqueue(ctx, ev(i, 0), ev(i, 1), ev(i, 2)).Wait(ctx)
					case 2:
						_, err = rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
							if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, fmt.Sprintf("%s/%d", who, i)); err != nil {
								return nil, err
							}
							return []Event{ev(i, 0), ev(i, 1)}, nil
						})
					}
					if err != nil {
						errs <- fmt.Errorf("%s write %d: %w", who, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Per replica: writers of kind 0, 1, 2 write 1, 3 and 2 events a call.
	total := replicas * (writers / 3) * each * (1 + 3 + 2)
	for r, rec := range recs {
		res, err := rec.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Count != int64(total) {
			t.Fatalf("replica %d: Verify = %s, want OK with %d events", r, res, total)
		}
	}
	evs, err := recs[0].List(ctx, Filter{Limit: total + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != total {
		t.Fatalf("List = %d events, want %d", len(evs), total)
	}
	seen := map[string]bool{}
	last := map[string]string{} // writer -> its last event's text
	for k, e := range evs {
		key := e.Subject + "/" + e.Text
		if seen[key] {
			t.Fatalf("event %s stored twice", key)
		}
		seen[key] = true
		// A writer's events come in its order: i rising, and the k of
		// one write in a row.
		if prev, ok := last[e.Subject]; ok && !inOrder(prev, e.Text) {
			t.Fatalf("%s: #%d %q after %q, out of the writer's order", e.Subject, e.Seq, e.Text, prev)
		}
		last[e.Subject] = e.Text
		// A write's events side by side: k > 0 follows k-1 of the same
		// write directly.
		if i, kk, _ := strings.Cut(e.Text, "."); kk != "0" {
			if k == 0 || evs[k-1].Subject != e.Subject || !strings.HasPrefix(evs[k-1].Text, i+".") {
				t.Fatalf("%s: #%d %q does not follow the rest of its write", e.Subject, e.Seq, e.Text)
			}
		}
	}
	var rows int
	if err := recs[0].db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scratch`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != withs {
		t.Errorf("scratch rows = %d, want %d (one per RecordWith)", rows, withs)
	}
}

// inOrder reports whether text b ("i.k") comes after a in one writer's
// order.
func inOrder(a, b string) bool {
	var ai, ak, bi, bk int
	fmt.Sscanf(a, "%d.%d", &ai, &ak)
	fmt.Sscanf(b, "%d.%d", &bi, &bk)
	return bi > ai || (bi == ai && bk == ak+1)
}

// TestFailedWritesFailEveryWaiter: when the database refuses every write
// of a batch (as a full disk would), each waiter — Record, a Wait on
// enqueued events, RecordWith — hears the refusal; none is told its
// events are stored, nothing of theirs is stored, and the log goes on
// once the database takes writes again.
func TestFailedWritesFailEveryWaiter(t *testing.T) { forBackends(t, testFailedWritesFailEveryWaiter) }

func testFailedWritesFailEveryWaiter(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	scratch(t, f)
	ctx := context.Background()
	// Every event but the holding write's is refused.
	refuse := []string{`CREATE TRIGGER poison BEFORE INSERT ON audit_events WHEN NEW.text <> 'hold'
		BEGIN SELECT RAISE(ABORT, 'refused by test'); END`}
	allow := []string{`DROP TRIGGER poison`}
	if f.db.Dialect() == store.Postgres {
		refuse = []string{
			`CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER poison BEFORE INSERT ON audit_events FOR EACH ROW WHEN (NEW.text <> 'hold') EXECUTE FUNCTION poison()`,
		}
		allow = []string{`DROP TRIGGER poison ON audit_events`}
	}
	for _, s := range refuse {
		if _, err := f.db.SQL().ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	release := holdCommitter(t, f)
	const n = 9
	errs := make([]error, n)
	stored := make([][]Event, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := Event{Type: MessageReceived, Text: fmt.Sprint("w", i)}
			switch i % 3 {
			case 0:
				var got Event
				got, errs[i] = f.rec.Record(ctx, e)
				if errs[i] == nil {
					stored[i] = []Event{got}
				}
			case 1:
				stored[i], errs[i] = f.rec.Enqueue(ctx, e, e).Wait(ctx)
			case 2:
				stored[i], errs[i] = f.rec.RecordWith(ctx, func(tx *store.Tx) ([]Event, error) {
					if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (id) VALUES (?)`, fmt.Sprint(i)); err != nil {
						return nil, err
					}
					return []Event{e}, nil
				})
			}
		})
		waitQueued(t, f.rec, i+1)
	}
	release()
	wg.Wait()
	for i := range n {
		if errs[i] == nil || !strings.Contains(errs[i].Error(), "refused by test") {
			t.Errorf("write %d: err = %v, want the database's refusal", i, errs[i])
		}
		if stored[i] != nil {
			t.Errorf("write %d failed but returned stored events %+v", i, stored[i])
		}
	}
	if rows := scratchRows(t, f); rows != 0 {
		t.Errorf("scratch rows = %d, want 0: a RecordWith whose events failed kept its store write", rows)
	}
	if seq, _, err := f.rec.Head(ctx); err != nil || seq != 1 {
		t.Errorf("head = #%d, %v; want #1 (the holding write only)", seq, err)
	}
	for _, s := range allow {
		if _, err := f.db.SQL().ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if e := f.record(t, Event{Type: MessageReceived, Text: "after"}); e.Seq != 2 {
		t.Errorf("the write after the failures is #%d, want #2", e.Seq)
	}
	if res, err := f.rec.Verify(ctx); err != nil || !res.OK || res.Count != 2 {
		t.Errorf("Verify = %s, %v; want OK with 2 events", res, err)
	}
}
