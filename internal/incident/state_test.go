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

// TestStateSaveFailureIsCounted: when the incidents table refuses the
// write, the message is out, and the failure is counted and logged, not
// silent.
func TestStateSaveFailureIsCounted(t *testing.T) {
	db := openDB(t, t.TempDir())
	h := startManager(t, db, Options{})
	// Run has created the table; make every write to it fail.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.Exec(`CREATE TRIGGER incidents_full BEFORE INSERT ON incidents BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create trigger: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.post(t, payload("g-full", map[string]string{"alertname": "Full"}, alert("Full", "fp1", Firing)))
	h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" })
	h.idle(t)
	if n := h.met.stateFails.Load(); n != 1 {
		t.Errorf("%d state save failures counted, want 1", n)
	}
	if n := len(h.audit.of(audit.IncidentPosted)); n != 1 {
		t.Errorf("%d incident.posted events, want 1 (the message is out)", n)
	}
}
