package incident

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
)

// TestStateSaveHasItsOwnDeadline: the chat calls of a flush use up all of
// SendTimeout (the platform answers after the deadline, as a slow one
// does), and the state is still saved, because the save runs on its own
// deadline rather than on what the chat calls left of SendTimeout.
// The same post shows the first-post latency and the audited duration
// measured from the webhook request, not 0.
func TestStateSaveHasItsOwnDeadline(t *testing.T) {
	db := openDB(t, t.TempDir())
	const slow = 150 * time.Millisecond
	h := startManager(t, db, Options{SendTimeout: 50 * time.Millisecond})
	h.sender.mu.Lock()
	h.sender.delay = slow
	h.sender.mu.Unlock()

	p := payload("g-slow", map[string]string{"alertname": "Slow"}, alert("Slow", "fp1", Firing))
	if code := h.post(t, p); code != http.StatusOK {
		t.Fatalf("post = %d", code)
	}
	first := h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	h.idle(t)

	var msgID string
	if err := db.QueryRowContext(context.Background(), `SELECT message_id FROM incidents WHERE group_key = ?`, p.GroupKey).Scan(&msgID); err != nil {
		t.Fatalf("incident state not saved: %v", err)
	}
	if msgID != first.ID {
		t.Errorf("saved message id %q, want %q", msgID, first.ID)
	}
	if n := h.met.stateFails.Load(); n != 0 {
		t.Errorf("%d state save failures counted, want 0", n)
	}

	// First-post latency: from the webhook request to the message, so at
	// least the platform's answer time.
	if n := h.met.posted.Load(); n != 1 {
		t.Fatalf("posted = %d, want 1", n)
	}
	if got := time.Duration(h.met.latencyNum.Load()); got < slow {
		t.Errorf("first-post latency observed %s, want at least the %s the post took", got, slow)
	}
	posted := h.audit.of(audit.IncidentPosted)
	if len(posted) != 1 {
		t.Fatalf("%d incident.posted events, want 1", len(posted))
	}
	if d := posted[0].Duration; d < slow {
		t.Errorf("incident.posted duration = %s, want at least %s", d, slow)
	}
}

// TestNoPostWhileTheStoreRefusesWrites: when the incidents table refuses
// every write, nothing is posted (a post is made only once it is recorded
// as begun, so a crash can never leave an unknown message behind), the
// failures are counted and logged, and the message goes out once, as soon
// as the store takes writes again.
func TestNoPostWhileTheStoreRefusesWrites(t *testing.T) {
	db := openDB(t, t.TempDir())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER incidents_full BEFORE INSERT ON incidents BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	h := startManager(t, db, Options{RetryMax: 100 * time.Millisecond})
	if code := h.post(t, payload("g-full", map[string]string{"alertname": "Full"}, alert("Full", "fp1", Firing))); code != http.StatusOK {
		t.Fatalf("post = %d, want 200 (the inbox takes it)", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.met.stateFails.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.met.stateFails.Load(); n < 2 {
		t.Fatalf("%d state save failures counted, want the refused writes counted", n)
	}
	if n := len(h.sender.all()); n != 0 {
		t.Fatalf("%d messages sent while the store refused to record them, want none:\n%s", n, dump(h.sender.all()))
	}
	if _, err := db.ExecContext(ctx, `DROP TRIGGER incidents_full`); err != nil {
		t.Fatal(err)
	}
	h.sender.wait(t, "first post once the store takes writes", func(s sent) bool { return s.UpdateOf == "" })
	h.idle(t)
	if posts, _ := h.sender.tops(); len(posts) != 1 {
		t.Errorf("%d posts, want 1:\n%s", len(posts), dump(posts))
	}
	if n := len(h.audit.of(audit.IncidentPosted)); n != 1 {
		t.Errorf("%d incident.posted events, want 1", n)
	}
	var msgID string
	if err := db.QueryRowContext(ctx, `SELECT message_id FROM incidents WHERE group_key = ?`, "g-full").Scan(&msgID); err != nil || msgID == "" {
		t.Errorf("message id not recorded: %q, %v", msgID, err)
	}
}
