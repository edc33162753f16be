package app

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/pipeline"
)

// recorder is a chat.Sender that keeps every reply.
type recorder struct {
	mu      sync.Mutex
	replies []chat.Reply
}

func (r *recorder) Send(_ context.Context, rep chat.Reply) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, rep)
	return fmt.Sprint(len(r.replies)), nil
}

// since returns the non-audit replies after index n, joined, and the new length.
func (r *recorder) since(n int) (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rep := range r.replies[n:] {
		if rep.Kind == chat.KindAudit {
			continue
		}
		b.WriteString(rep.Text)
		for _, f := range rep.Fields {
			b.WriteString("\n" + f.Label + ": " + f.Value)
		}
		b.WriteString("\n")
	}
	return b.String(), len(r.replies)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is one wired Parley instance with a recording sender.
type harness struct {
	t     *testing.T
	p     *Parley
	out   *recorder
	clock *clock
	n     int
	seq   int
}

func newHarness(t *testing.T, dbPath string) *harness {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	out := &recorder{}
	cfg := config.Default()
	cfg.Database = dbPath
	p, err := Build(context.Background(), Options{Config: cfg, Now: c.Now}, out)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	if err := p.Pipeline.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, p: p, out: out, clock: c}
}

// say sends a message as user in channel (console platform) and returns
// the replies it produced.
func (h *harness) say(user, channel, text string) string {
	h.t.Helper()
	h.seq++
	h.p.Pipeline.Handle(context.Background(), chat.Message{
		Platform: chat.Console, Channel: channel, Thread: channel, User: user,
		Text: text, EventID: fmt.Sprintf("t-%d", h.seq), Time: h.clock.Now(),
	})
	got, n := h.out.since(h.n)
	h.n = n
	return got
}

var codeRE = regexp.MustCompile(`"confirm ([A-Z0-9]{4})"`)

func mustCode(t *testing.T, reply string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no confirmation code in reply:\n%s", reply)
	}
	return m[1]
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reply lacks %q:\n%s", w, got)
		}
	}
}

func (h *harness) events(typ audit.Type) []audit.Event {
	h.t.Helper()
	evs, err := h.p.Audit.List(context.Background(), audit.Filter{Types: []audit.Type{typ}})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func TestScaleNeedsConfirmationAndRunsOnce(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))

	got := h.say("alice", "ops", "status of checkout in prod")
	mustContain(t, got, "checkout (prod): 3/3 ready, image shop/checkout:1.4.2, revision 4")

	got = h.say("alice", "ops", "scale checkout to 5 in prod")
	mustContain(t, got, "This changes prod: checkout replicas 3 -> 5.", "within 10m")
	code := mustCode(t, got)
	if n := len(h.events(audit.ActionStarted)); n != 1 { // only the status read so far
		t.Fatalf("action.started before confirmation: %d events", n)
	}

	got = h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "Scaled checkout (prod) 3 -> 5.", "[audit #")

	got = h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "Nothing was run")
	if n := len(h.events(audit.ActionSucceeded)); n != 2 {
		t.Errorf("action.succeeded events = %d, want 2 (status, one scale)", n)
	}

	got = h.say("alice", "ops", "status of checkout in prod")
	mustContain(t, got, "5/5 ready")
	for _, typ := range []audit.Type{audit.MessageReceived, audit.IntentRouted, audit.PolicyDecided,
		audit.ConfirmationRequested, audit.ConfirmationGranted, audit.ActionStarted, audit.ActionSucceeded, audit.ConfirmationDenied} {
		if len(h.events(typ)) == 0 {
			t.Errorf("no %s event", typ)
		}
	}
	res, err := h.p.Audit.Verify(context.Background())
	if err != nil || res.Err() != nil {
		t.Fatalf("verify: %v %v", err, res.Err())
	}
}

func TestUnknownUserIsRefusedAndAudited(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	got := h.say("eve", "ops", "scale checkout to 5 in prod")
	mustContain(t, got, "may not run kubernetes.scale", "console:eve")
	if codeRE.MatchString(got) {
		t.Fatalf("a refused request got a confirmation code:\n%s", got)
	}
	var denied bool
	for _, e := range h.events(audit.PolicyDecided) {
		if e.Subject == "console:eve" && e.Decision == "deny" {
			denied = true
		}
	}
	if !denied {
		t.Error("the refusal was not audited as a deny")
	}
	// eve may still read
	mustContain(t, h.say("eve", "ops", "status of payments in prod"), "payments (prod)")
}

func TestExpiredConfirmationDoesNotRun(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	code := mustCode(t, h.say("alice", "ops", "restart cart in staging"))
	h.clock.Add(11 * time.Minute)
	got := h.say("alice", "ops", "confirm "+code)
	mustContain(t, got, "expired")
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Fatalf("an expired confirmation ran: %d action.started", n)
	}
	if n := len(h.events(audit.ConfirmationExpired)); n != 1 {
		t.Errorf("confirmation.expired events = %d, want 1", n)
	}
}

func TestDistinctApproverRequiredForLargeProdScale(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 40 in prod"))
	mustContain(t, h.say("alice", "ops", "confirm "+code), "cannot confirm")
	mustContain(t, h.say("eve", "ops", "confirm "+code), "cannot confirm")
	mustContain(t, h.say("bob", "ops", "confirm "+code), "Scaled checkout (prod) 3 -> 40.")
}

func TestConfirmationIsBoundToItsChannel(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 4 in prod"))
	mustContain(t, h.say("alice", "elsewhere", "confirm "+code), "no pending request")
	mustContain(t, h.say("alice", "ops", "cancel "+code), "Cancelled")
	mustContain(t, h.say("alice", "ops", "confirm "+code), "Nothing was run")
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Fatalf("cancelled request ran")
	}
}

func TestPendingConfirmationSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	h1 := newHarness(t, db)
	code := mustCode(t, h1.say("alice", "ops", "scale checkout to 6 in prod"))
	h1.p.Close(context.Background())

	h2 := newHarness(t, db)
	mustContain(t, h2.say("alice", "ops", "confirm "+code), "Scaled checkout (prod) 3 -> 6.")
}

func TestCrashBetweenConfirmationAndRunNeverRunsTwice(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	h1 := newHarness(t, db)
	code := mustCode(t, h1.say("alice", "ops", "scale checkout to 6 in prod"))
	pending, err := h1.p.Confirmations.PendingIn(context.Background(), "console:ops")
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v %v", pending, err)
	}
	// Simulate the crash: claimed (executing) but never finished.
	if _, err := h1.p.Confirmations.Claim(context.Background(), pending[0].ID, "console:alice", h1.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h1.p.Close(context.Background())

	h2 := newHarness(t, db) // Recover runs here
	if n := len(h2.events(audit.ActionInterrupted)); n != 1 {
		t.Fatalf("action.interrupted events = %d, want 1", n)
	}
	mustContain(t, h2.say("alice", "ops", "confirm "+code), "Nothing was run")
	if n := len(h2.events(audit.ActionStarted)); n != 0 {
		t.Fatalf("interrupted confirmation ran again")
	}
}

func TestConcurrentConfirmsRunOnce(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	code := mustCode(t, h.say("alice", "ops", "scale checkout to 7 in prod"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			h.p.Pipeline.Handle(context.Background(), chat.Message{Platform: chat.Console, Channel: "ops", User: "alice",
				Text: "confirm " + code, EventID: fmt.Sprintf("race-%d", i), Time: h.clock.Now()})
		})
	}
	wg.Wait()
	if n := len(h.events(audit.ActionStarted)); n != 1 {
		t.Fatalf("action.started = %d after 8 concurrent confirms, want 1", n)
	}
}

func TestBadInputGetsAnswerAndAudit(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	cases := map[string]string{
		"":                            "empty",
		"   ":                         "empty",
		strings.Repeat("a", 1<<20):    "MB",
		"status of \xff\xfe checkout": "UTF-8",
		"\x00\x01\x02\x1b":            "empty",
		"\x00\x01scale\x1b[31m":       "nothing was run",
		"delete the prod database":    "nothing was run",
		"kubectl delete ns prod":      "nothing was run",
	}
	for text, want := range cases {
		got := h.say("alice", "ops", text)
		if !strings.Contains(strings.ToLower(got), strings.ToLower(want)) {
			t.Errorf("%.40q: reply lacks %q:\n%s", text, want, got)
		}
	}
	if n := len(h.events(audit.InputRejected)); n < 4 {
		t.Errorf("input.rejected events = %d, want >= 4", n)
	}
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Errorf("bad input ran an action")
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	h := newHarness(t, db)
	h.say("alice", "ops", "status of checkout in prod")
	h.p.Close(context.Background())

	var out strings.Builder
	env := Env{Stdout: &out, Stderr: &out}
	if code := Main(context.Background(), []string{"audit", "verify", "--db", db}, env); code != 0 {
		t.Fatalf("verify of an intact log exited %d:\n%s", code, out.String())
	}
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out.Reset()
	if code := Main(context.Background(), []string{"audit", "verify", "--db", db}, env); code != 1 {
		t.Fatalf("verify of a tampered log exited %d, want 1:\n%s", code, out.String())
	}
	mustContain(t, out.String(), "2")
}

// TestSuggestedActionButtonTakesTheSamePath: a "run" button (an incident's
// suggested next step) is a request by the clicker: policy and confirmation
// apply exactly as if it were typed.
func TestSuggestedActionButtonTakesTheSamePath(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	click := func(user string) string {
		h.seq++
		h.p.Pipeline.Handle(context.Background(), chat.Message{
			Platform: chat.Console, Channel: "ops", Thread: "ops", User: user, EventID: fmt.Sprintf("click-%d", h.seq),
			Action: &chat.ButtonClick{Action: "run", Value: encodeSuggestion(t, pipeline.Suggestion{
				Action: "kubernetes.scale", Params: map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 6},
			})},
		})
		got, n := h.out.since(h.n)
		h.n = n
		return got
	}
	mustContain(t, click("eve"), "may not run kubernetes.scale")
	got := click("alice")
	mustContain(t, got, "checkout replicas 3 -> 6")
	if len(h.events(audit.ActionStarted)) != 0 {
		t.Fatal("a suggested change ran without confirmation")
	}
	mustContain(t, h.say("alice", "ops", "confirm "+mustCode(t, got)), "Scaled checkout (prod) 3 -> 6.")
}

// encodeSuggestion is a "run" button's value, as incident messages carry it.
func encodeSuggestion(t testing.TB, s pipeline.Suggestion) string {
	t.Helper()
	v, err := pipeline.EncodeSuggestion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
