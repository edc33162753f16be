package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/audit"
)

// At a restart Parley tells the threads of requests a stopped process took
// but never answered, once, and nothing about requests that were answered.
func TestRestartTellsOnlyUnansweredRequests(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	h1 := newHarness(t, db)
	for _, c := range []struct{ user, text string }{
		{"alice", "status of checkout in prod"},  // a read
		{"alice", "help"},                        // help
		{"eve", "scale checkout to 5 in prod"},   // denied
		{"alice", "delete the prod database"},    // nothing fits
		{"alice", "scale checkout"},              // parameters missing
		{"alice", "confirm"},                     // nothing pending
		{"alice", "scale checkout to 7 in prod"}, // a prompt ...
	} {
		h1.say(c.user, "ops", c.text)
	}
	all, _ := h1.out.since(0)
	code := mustCode(t, all)
	mustContain(t, h1.say("alice", "ops", "confirm "+code), "Scaled checkout (prod) 3 -> 7.")
	mustContain(t, h1.say("alice", "ops", "confirm "+code), "Nothing was run")
	// A process that took a request and stopped before anything else.
	if _, err := h1.p.Audit.Record(context.Background(), audit.Event{Type: audit.MessageReceived, RequestID: "lost-1",
		Platform: "console", Channel: "console:ops", Thread: "ops", Subject: "console:bob", Text: "status of payments in prod",
		Details: map[string]string{"taken_by": "parley/deadrun"}}); err != nil {
		t.Fatal(err)
	}
	h1.p.Close(context.Background())

	h2 := newHarness(t, db) // Recover runs here
	told, _ := h2.out.since(0)
	if n := strings.Count(told, "Parley restarted"); n != 1 ||
		!strings.Contains(told, `Parley restarted before it answered your request "status of payments in prod". It was not finished and nothing was run for it`) {
		t.Errorf("told at the restart:\n%s\nwant only the lost request", told)
	}
	if n := len(h2.events(audit.RequestInterrupted)); n != 1 {
		t.Errorf("request.interrupted events = %d, want 1", n)
	}
	h2.p.Close(context.Background())

	h3 := newHarness(t, db)
	if told, _ := h3.out.since(0); told != "" {
		t.Errorf("told again at the next restart:\n%s", told)
	}
}
