package app

// No silent failures: every audit or store write on the execution path
// that fails reaches the user in plain words, and the log. The store fails
// on demand here: a trigger in the real SQLite file aborts exactly the
// write under test (RAISE(ABORT, ...), as a full disk or an I/O error
// would abort it), while every other write goes through.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/confirm"
)

// injected is the error the triggers raise.
const injected = "disk I/O error (injected)"

// faultHarness is a harness whose log is kept and whose database can be
// made to fail one kind of write.
type faultHarness struct {
	*harness
	db   string
	logs *logBuffer
}

func newFaultHarness(t *testing.T, sender chat.Sender) *faultHarness {
	t.Helper()
	db := filepath.Join(t.TempDir(), "p.db")
	logs := &logBuffer{}
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	out := &recorder{}
	cfg := config.Default()
	cfg.Database = db
	var s chat.Sender = out
	if sender != nil {
		s = &tee{first: out, then: sender}
	}
	p, err := Build(context.Background(), Options{Config: cfg, Now: c.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))}, s)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	if err := p.Pipeline.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &faultHarness{harness: &harness{t: t, p: p, out: out, clock: c}, db: db, logs: logs}
}

// tee records every reply, then lets then decide whether it was delivered.
type tee struct {
	first *recorder
	then  chat.Sender
}

func (s *tee) Send(ctx context.Context, r chat.Reply) (string, error) {
	if _, err := s.first.Send(ctx, r); err != nil {
		return "", err
	}
	return s.then.Send(ctx, r)
}

// fail makes the database abort the writes a trigger selects: on table
// (audit_events or confirmations), op (INSERT or UPDATE OF column), when
// cond holds of NEW. It returns the undo.
func (h *faultHarness) fail(name, op, table, cond string) func() {
	h.t.Helper()
	raw, err := sql.Open("sqlite", h.db)
	if err != nil {
		h.t.Fatal(err)
	}
	defer raw.Close()
	stmt := fmt.Sprintf(`CREATE TRIGGER %s BEFORE %s ON %s WHEN %s BEGIN SELECT RAISE(ABORT, '%s'); END`,
		name, op, table, cond, injected)
	if _, err := raw.Exec(stmt); err != nil {
		h.t.Fatalf("%s: %v", stmt, err)
	}
	return func() {
		h.t.Helper()
		raw, err := sql.Open("sqlite", h.db)
		if err != nil {
			h.t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DROP TRIGGER ` + name); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *faultHarness) confirmation(t *testing.T, code string) confirm.Confirmation {
	t.Helper()
	c, err := h.p.Confirmations.LatestByCode(context.Background(), "console:ops", code)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *faultHarness) replicas(t *testing.T, deployment string) int32 {
	t.Helper()
	d, err := h.p.Sandbox.Client().AppsV1().Deployments("prod").Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func (h *faultHarness) mustLog(t *testing.T, want string) {
	t.Helper()
	if !strings.Contains(h.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, h.logs.String())
	}
}

// The change ran, but action.succeeded could not be written: the reply
// says so plainly (it used to look like a normal success).
func TestFailedSuccessRecordIsTold(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 6 in prod"))
	defer h.fail("no_success", "INSERT", "audit_events", "NEW.type = 'action.succeeded'")()
	got := h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "Scaled checkout (prod) 3 -> 6.", "The change ran, but its audit record failed: ", injected)
	if strings.Contains(got, "[audit #") {
		t.Errorf("the reply cites an audit record that was not written:\n%s", got)
	}
	if n := h.replicas(t, "checkout"); n != 6 {
		t.Errorf("checkout has %d replicas, want 6", n)
	}
	if c := h.confirmation(t, code); c.State != confirm.Done {
		t.Errorf("confirmation %s, want done", c.State)
	}
	h.mustLog(t, "audit write failed")
}

// The confirmation could not be marked finished (decide used to drop this
// error, leaving it executing with a misleading reply): the user is told,
// and the next start settles it from the audit log.
func TestFailedFinishIsToldAndSettledAtRestart(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 6 in prod"))
	undo := h.fail("no_finish", "UPDATE OF state", "confirmations", "NEW.state IN ('done', 'failed')")
	got := h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "Scaled checkout (prod) 3 -> 6.", code+" ran, but saving its final state failed: ", injected,
		"settles it from the audit log")
	if c := h.confirmation(t, code); c.State != confirm.Executing {
		t.Fatalf("confirmation %s, want still executing", c.State)
	}
	h.mustLog(t, "recording confirmation outcome failed")
	undo()
	h.p.Close(context.Background())

	// The next start: done, from the audit log, and the channel is told.
	out := &recorder{}
	cfg := config.Default()
	cfg.Database = h.db
	p, err := Build(context.Background(), Options{Config: cfg, Now: h.clock.Now}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.Pipeline.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	told, _ := out.since(0)
	mustContain(t, told, "Before Parley restarted, "+code+" (checkout replicas 3 -> 6) ran and succeeded")
	c, err := p.Confirmations.LatestByCode(context.Background(), "console:ops", code)
	if err != nil || c.State != confirm.Done {
		t.Errorf("after the restart: %+v, %v; want done", c.State, err)
	}
}

// action.started could not be written: nothing runs, the user is told, and
// the confirmation ends failed, not executing.
func TestFailedStartRecordRunsNothing(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 6 in prod"))
	defer h.fail("no_start", "INSERT", "audit_events", "NEW.type = 'action.started'")()
	got := h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "I cannot write the audit log right now (", injected, "so I did not run kubernetes.scale. Nothing was changed.")
	if n := h.replicas(t, "checkout"); n != 3 {
		t.Errorf("checkout has %d replicas, want 3", n)
	}
	if c := h.confirmation(t, code); c.State != confirm.Failed || !strings.Contains(c.Outcome, "not run") {
		t.Errorf("confirmation %s (%s), want failed, not run", c.State, c.Outcome)
	}
}

// confirmation.granted could not be written: the claim is rolled back with
// it, so the request stays pending and runs once when confirmed again.
func TestFailedGrantLeavesItPending(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 6 in prod"))
	undo := h.fail("no_grant", "INSERT", "audit_events", "NEW.type = 'confirmation.granted'")
	got := h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "I could not record your confirmation of "+code, injected, "so nothing was run. It is still pending")
	if c := h.confirmation(t, code); c.State != confirm.Pending {
		t.Fatalf("confirmation %s, want pending", c.State)
	}
	undo()
	mustContain(t, h.say("alice", "ops", "confirm "+code), "Scaled checkout (prod) 3 -> 6.")
	if n := len(h.events(audit.ActionStarted)); n != 1 {
		t.Errorf("action.started = %d, want 1", n)
	}
}

// confirmation.requested could not be written: no confirmation is stored
// either (they commit together), and the user is told nothing was asked.
func TestFailedRequestRecordStoresNothing(t *testing.T) {
	h := newFaultHarness(t, nil)
	undo := h.fail("no_request", "INSERT", "audit_events", "NEW.type = 'confirmation.requested'")
	got := h.say("alice", "ops", "scale checkout to 6 in prod")
	mustContain(t, got, "I could not store and record the confirmation for this change (", injected, "Nothing was run.")
	if codeRE.MatchString(got) {
		t.Errorf("a prompt was shown:\n%s", got)
	}
	undo()
	mustContain(t, h.say("alice", "ops", "confirm"), "no pending request")
	var rows int
	raw, err := sql.Open("sqlite", h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(`SELECT COUNT(*) FROM confirmations`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("confirmations stored: %d, %v; want none", rows, err)
	}
}

// The prompt was shown but could not be recorded as shown: the request is
// cancelled, since nobody may claim what is not known to be shown.
func TestFailedShownRecordCancels(t *testing.T) {
	h := newFaultHarness(t, nil)
	defer h.fail("no_shown", "UPDATE OF shown_at", "confirmations", "1")()
	got := h.say("alice", "ops", "scale checkout to 6 in prod")
	code := mustCode(t, got)
	mustContain(t, got, "I could not record that I asked you to confirm "+code, injected, "I cancelled it. Nothing was run")
	if c := h.confirmation(t, code); c.State != confirm.Cancelled {
		t.Errorf("confirmation %s, want cancelled", c.State)
	}
	mustContain(t, h.say("alice", "ops", "confirm "+code), "already cancelled")
	h.mustLog(t, "recording a shown confirmation prompt failed")
}

// refusingPrompts fails to deliver confirmation prompts, as a chat API
// that is down would.
type refusingPrompts struct{}

func (refusingPrompts) Send(_ context.Context, r chat.Reply) (string, error) {
	if r.Kind == chat.KindConfirm {
		return "", errors.New("chat API unavailable (injected)")
	}
	return "m1", nil
}

// The prompt could not be delivered: the confirmation is withdrawn (a bare
// "confirm" used to run such an unseen change), and the failure audited.
func TestUndeliveredPromptIsWithdrawn(t *testing.T) {
	h := newFaultHarness(t, refusingPrompts{})
	got := h.say("alice", "ops", "scale checkout to 6 in prod")
	mustContain(t, got, "I could not show the confirmation prompt for ", "chat API unavailable (injected)", "so I cancelled it. Nothing was run")
	mustContain(t, h.say("alice", "ops", "confirm"), "no pending request")
	if n := len(h.events(audit.ReplyFailed)); n != 1 {
		t.Errorf("reply.failed events = %d, want 1", n)
	}
	if n := len(h.events(audit.ConfirmationCancelled)); n != 1 {
		t.Errorf("confirmation.cancelled events = %d, want 1", n)
	}
}

// A cancellation that cannot be recorded is not done, and the user hears
// that it is still pending.
func TestFailedCancelIsTold(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 6 in prod"))
	undo := h.fail("no_cancel", "INSERT", "audit_events", "NEW.type = 'confirmation.cancelled'")
	mustContain(t, h.say("alice", "ops", "cancel "+code), "I could not cancel "+code+": recording it failed (", injected, "It is still pending")
	if c := h.confirmation(t, code); c.State != confirm.Pending {
		t.Errorf("confirmation %s, want pending", c.State)
	}
	undo()
	mustContain(t, h.say("alice", "ops", "cancel "+code), "Cancelled "+code)
}

// A refusal whose audit record fails still refuses, and says the record
// failed.
func TestFailedRefusalRecordIsTold(t *testing.T) {
	h := newFaultHarness(t, nil)
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 40 in prod"))
	defer h.fail("no_denial", "INSERT", "audit_events", "NEW.type = 'confirmation.denied'")()
	mustContain(t, h.say("alice", "ops", "confirm "+code), "cannot confirm", "I could not write this to the audit log: ", injected)
	if c := h.confirmation(t, code); c.State != confirm.Pending {
		t.Errorf("confirmation %s, want pending", c.State)
	}
}
