package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestReplicasAppendToOneChain: two handles on one database (two Parley
// processes on one SQLite file, or two replicas on one PostgreSQL
// database), each with its own Recorder and clock, recording at once,
// leave one unbroken chain holding every event exactly once.
func TestReplicasAppendToOneChain(t *testing.T) { forBackends(t, testReplicasAppendToOneChain) }

func testReplicasAppendToOneChain(t *testing.T, bk backend) {
	dbase := bk.Fresh(t)
	ctx := context.Background()
	const replicas, workers, each = 2, 8, 15
	recs := make([]*Recorder, replicas)
	for i := range recs {
		recs[i] = New(dbase.OpenHandle(t), Options{Now: newClock().Now})
		t.Cleanup(func() { recs[i].Close(ctx) })
	}
	var wg sync.WaitGroup
	errs := make(chan error, replicas*workers)
	for r, rec := range recs {
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					if _, err := rec.Record(ctx, Event{Type: MessageReceived,
						Subject: fmt.Sprintf("console:r%d", r), Text: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
						errs <- err
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
	const total = replicas * workers * each
	for r, rec := range recs {
		res, err := rec.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Count != total {
			t.Fatalf("replica %d: Verify = %s, want OK with %d events", r, res, total)
		}
	}
	evs, err := recs[0].List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		key := e.Subject + "/" + e.Text
		if seen[key] {
			t.Fatalf("event %s stored twice", key)
		}
		seen[key] = true
	}
	if len(seen) != total {
		t.Errorf("%d distinct events stored, want %d", len(seen), total)
	}
}

// TestVerifyBesideRecordingReplica: a verification running while another
// replica records reads one consistent snapshot, so it never mistakes the
// other's fresh appends for tampering.
func TestVerifyBesideRecordingReplica(t *testing.T) {
	forBackends(t, testVerifyBesideRecordingReplica)
}

func testVerifyBesideRecordingReplica(t *testing.T, bk backend) {
	dbase := bk.Fresh(t)
	ctx := context.Background()
	writer := New(dbase.OpenHandle(t), Options{Now: newClock().Now})
	reader := New(dbase.OpenHandle(t), Options{Now: newClock().Now})
	const events = 150
	done := make(chan error, 1)
	go func() {
		for i := range events {
			if _, err := writer.Record(ctx, Event{Type: MessageReceived, Text: fmt.Sprint(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verifying := true; verifying; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			verifying = false
		default:
		}
		res, err := reader.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK {
			t.Fatalf("Verify beside a recording replica = %s", res)
		}
	}
	if res, err := reader.Verify(ctx); err != nil || !res.OK || res.Count != events {
		t.Errorf("final Verify = %s, %v; want OK with %d events", res, err, events)
	}
}

// TestRecordStoresNULAlikeEverywhere: PostgreSQL's TEXT cannot hold a NUL
// byte, so the recorder replaces it on every backend: the event is stored,
// not refused, and reads back as recorded.
func TestRecordStoresNULAlikeEverywhere(t *testing.T) { forBackends(t, testRecordStoresNUL) }

func testRecordStoresNUL(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	got := f.record(t, Event{Type: InputRejected, Text: "scale\x00checkout", Error: "bad\x00byte",
		Subject: "console:a\x00b", Details: map[string]string{"note": "x\x00y"}})
	if strings.Contains(got.Text+got.Error+got.Subject, "\x00") {
		t.Fatalf("a NUL byte survived normalisation: %q %q %q", got.Text, got.Error, got.Subject)
	}
	if got.Text != "scale\uFFFDcheckout" {
		t.Errorf("Text = %q, want the NUL replaced by U+FFFD", got.Text)
	}
	stored, err := f.rec.Get(context.Background(), got.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Text != got.Text || stored.Details["note"] != "x\uFFFDy" {
		t.Errorf("stored Text %q, Details %q; want %q and x\uFFFDy", stored.Text, stored.Details["note"], got.Text)
	}
	if res, err := f.rec.Verify(context.Background()); err != nil || !res.OK {
		t.Errorf("Verify = %s, %v", res, err)
	}
}

// TestAppendAfterTheHeadMovedElsewhere: on PostgreSQL a recorder appends
// in one statement after the head it last wrote. When another replica
// moved the head since, that statement writes nothing, and the recorder
// locks the head and appends after the real one: the chain stays one
// order, every event once.
func TestAppendAfterTheHeadMovedElsewhere(t *testing.T) {
	for _, bk := range backends() {
		if bk.Name == "postgres" {
			testAppendAfterTheHeadMoved(t, bk)
		}
	}
}

func testAppendAfterTheHeadMoved(t *testing.T, bk backend) {
	dbase := bk.Fresh(t)
	ctx := context.Background()
	a := New(dbase.OpenHandle(t), Options{Now: newClock().Now})
	b := New(dbase.OpenHandle(t), Options{Now: newClock().Now})
	t.Cleanup(func() { a.Close(ctx); b.Close(ctx) })
	record := func(r *Recorder, text string) Event {
		t.Helper()
		e, err := r.Record(ctx, Event{Type: MessageReceived, Text: text})
		if err != nil {
			t.Fatalf("Record(%s): %v", text, err)
		}
		return e
	}
	// appendDirect runs a's one-statement append by hand. The committer
	// is idle: every write of a was waited for.
	appendDirect := func(text string) (bool, error) {
		t.Helper()
		st, err := a.statements(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := &Pending{r: a, ctx: ctx, events: []Event{{Type: MessageReceived, Text: text, Time: newClock().Now()}}}
		return a.writeAppend(ctx, st, []*Pending{p})
	}
	count := func() (rows, head int64) {
		t.Helper()
		if err := a.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_events), seq FROM audit_head`).Scan(&rows, &head); err != nil {
			t.Fatal(err)
		}
		return rows, head
	}

	record(a, "a1")
	// With the head where a left it, the statement appends.
	if done, err := appendDirect("a2"); !done || err != nil {
		t.Fatalf("append after a's own head: done %v, %v; want done", done, err)
	}
	if rows, head := count(); rows != 2 || head != 2 {
		t.Fatalf("after a's append: %d rows, head #%d; want 2, #2", rows, head)
	}
	b1 := record(b, "b1")
	// a's head is stale: its next write finds the real one.
	a3 := record(a, "a3")
	if a3.Seq != 4 || a3.PrevHash != b1.Hash {
		t.Fatalf("a's write after b's: #%d after %.8s; want #4 after b's %.8s", a3.Seq, a3.PrevHash, b1.Hash)
	}
	record(b, "b2")
	// Stale again: the statement writes nothing, and says so.
	if done, err := appendDirect("lost"); done || err != nil {
		t.Fatalf("append after a stale head: done %v, %v; want not done, no error", done, err)
	}
	if rows, head := count(); rows != 5 || head != 5 {
		t.Fatalf("after the refused append: %d rows, head #%d; want 5, #5 (nothing written)", rows, head)
	}
	if a6 := record(a, "a6"); a6.Seq != 6 {
		t.Fatalf("a's write after the refused append: #%d, want #6", a6.Seq)
	}
	res, err := a.Verify(ctx)
	if err != nil || !res.OK || res.Count != 6 {
		t.Fatalf("Verify = %s, %v; want OK with 6 events", res, err)
	}
	evs, err := a.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range evs {
		texts = append(texts, e.Text)
	}
	if got, want := strings.Join(texts, " "), "a1 a2 b1 a3 b2 a6"; got != want {
		t.Errorf("chain holds %q, want %q", got, want)
	}
}
