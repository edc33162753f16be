package app

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/policies"
)

// Group commit keeps the audit log's promises: what Parley acts on or
// tells of is durable first, and concurrent conversations leave one chain.

// committedRow is an audit event as another connection sees it: only what
// is committed.
type committedRow struct {
	seq          int64
	typ, action  string
	confirmation string
}

func committedRows(t *testing.T, raw *sql.DB) []committedRow {
	t.Helper()
	rows, err := raw.Query(`SELECT seq, type, action, confirmation_id FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer rows.Close()
	var out []committedRow
	for rows.Next() {
		var r committedRow
		if err := rows.Scan(&r.seq, &r.typ, &r.action, &r.confirmation); err != nil {
			t.Error(err)
			return nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Error(err)
	}
	return out
}

// has reports whether rows hold an event of type typ for action.
func has(rows []committedRow, typ, action string) (committedRow, bool) {
	for _, r := range rows {
		if r.typ == typ && (action == "" || r.action == action) {
			return r, true
		}
	}
	return committedRow{}, false
}

// snapshotSender records, at every reply but trail steps, the reply and
// what another connection sees committed at that moment.
type snapshotSender struct {
	t   *testing.T
	raw *sql.DB
	mu  sync.Mutex
	got []snapshot
}

type snapshot struct {
	reply chat.Reply
	rows  []committedRow
}

func (s *snapshotSender) Send(_ context.Context, r chat.Reply) (string, error) {
	if r.Kind == chat.KindAudit {
		return "", nil
	}
	rows := committedRows(s.t, s.raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, snapshot{r, rows})
	return fmt.Sprint(len(s.got)), nil
}

func (s *snapshotSender) last() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[len(s.got)-1]
}

var auditRefRE = regexp.MustCompile(`\[audit #(\d+)\]`)

// TestChangeRunsOnlyOnceItsStartIsDurable: with a commit window far longer
// than the test, so that nothing is committed unless something waits for
// it: the confirmation prompt goes out only once confirmation.requested
// is committed; the change reaches the cluster only once its
// action.started is, and before its outcome is; the reply telling the
// outcome goes out only once action.succeeded is committed, and the
// record it cites is that one.
func TestChangeRunsOnlyOnceItsStartIsDurable(t *testing.T) {
	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "parley.db")
	ctx := context.Background()
	raw, err := sql.Open("sqlite", cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	snd := &snapshotSender{t: t, raw: raw}
	p, err := Build(ctx, Options{Config: cfg, AuditCommitWindow: time.Minute}, snd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var mu sync.Mutex
	var atChange [][]committedRow // what was committed at each write to a deployment
	p.Sandbox.Fake().PrependReactor("*", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			if dryRun(a) {
				break // the plan's check, before the prompt: changes nothing
			}
			rows := committedRows(t, raw)
			mu.Lock()
			atChange = append(atChange, rows)
			mu.Unlock()
		}
		return false, nil, nil // the sandbox serves it
	})
	say := func(text string) snapshot {
		t.Helper()
		p.Pipeline.Handle(ctx, chat.Message{Platform: chat.Console, Channel: "ops", Thread: "ops", User: "alice", Text: text})
		return snd.last()
	}

	prompt := say("scale checkout to 6 in prod")
	code := mustCode(t, prompt.reply.Text)
	req, ok := has(prompt.rows, string(audit.ConfirmationRequested), "kubernetes.scale")
	if !ok {
		t.Fatalf("the prompt went out before confirmation.requested was committed; committed: %+v", prompt.rows)
	}

	result := say("confirm " + code)
	mustContain(t, result.reply.Text, "Scaled checkout (prod) 3 -> 6.")
	mu.Lock()
	changes := atChange
	mu.Unlock()
	if len(changes) == 0 {
		t.Fatal("the scale never reached the cluster")
	}
	first := changes[0]
	started, ok := has(first, string(audit.ActionStarted), "kubernetes.scale")
	if !ok || started.confirmation != req.confirmation {
		t.Fatalf("the scale reached the cluster before its action.started was committed; committed: %+v", first)
	}
	if _, ok := has(first, string(audit.ActionSucceeded), "kubernetes.scale"); ok {
		t.Fatal("action.succeeded was committed before the change ran")
	}
	done, ok := has(result.rows, string(audit.ActionSucceeded), "kubernetes.scale")
	if !ok {
		t.Fatalf("the result went out before action.succeeded was committed; committed: %+v", result.rows)
	}
	m := auditRefRE.FindStringSubmatch(result.reply.Text)
	if m == nil || m[1] != strconv.FormatInt(done.seq, 10) {
		t.Errorf("the result cites %v, want [audit #%d] (action.succeeded)", m, done.seq)
	}
}

// dryRun reports whether a write to the cluster only asks what it would do.
func dryRun(a k8stesting.Action) bool {
	var opt []string
	switch a := a.(type) {
	case k8stesting.UpdateActionImpl:
		opt = a.UpdateOptions.DryRun
	case k8stesting.PatchActionImpl:
		opt = a.PatchOptions.DryRun
	case k8stesting.CreateActionImpl:
		opt = a.CreateOptions.DryRun
	case k8stesting.DeleteActionImpl:
		opt = a.DeleteOptions.DryRun
	}
	return slices.Contains(opt, metav1.DryRunAll)
}

// channelSender keeps each channel's replies apart, for conversations
// that run at once.
type channelSender struct {
	mu  sync.Mutex
	got map[string][]string
}

func (s *channelSender) Send(_ context.Context, r chat.Reply) (string, error) {
	if r.Kind == chat.KindAudit {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[r.Channel] = append(s.got[r.Channel], r.Text)
	return "m", nil
}

func (s *channelSender) lastIn(channel string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	replies := s.got[channel]
	if len(replies) == 0 {
		return ""
	}
	return replies[len(replies)-1]
}

// TestConversationsKeepOneChain: 64 conversations at once, each asking
// for a change, confirming it, reading and being refused, on a durable
// SQLite file and on PostgreSQL, leave one audit chain that verifies,
// holds every message once, and tells every confirmed change in order —
// requested, granted, started, then its outcome — started once.
func TestConversationsKeepOneChain(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testConversationsKeepOneChain(t, backend) })
	}
}

func testConversationsKeepOneChain(t *testing.T, backend string) {
	const conversations = 64
	dir := t.TempDir()
	// Every conversation's user is an sre: each confirms its own change.
	var users []string
	for i := range conversations {
		users = append(users, fmt.Sprintf("console:s%02d", i))
	}
	pol := filepath.Join(dir, "policy.yaml")
	policy := strings.Replace(string(policies.Default()), "sre: [console:alice, console:bob]",
		"sre: [console:alice, console:bob, "+strings.Join(users, ", ")+"]", 1)
	if err := os.WriteFile(pol, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf("policy: %q\ndatabase: %q\nevals: {reports_dir: %q}\n", pol, filepath.Join(dir, "parley.db"), dir)
	env := map[string]string{}
	if backend == "postgres" {
		env["PARLEY_TEST_DSN"] = pgtest.Start(t)
		yml += "store: {driver: postgres, dsn: {env: PARLEY_TEST_DSN}}\n"
	}
	cfg, err := config.Parse([]byte(yml), "parley.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snd := &channelSender{got: map[string][]string{}}
	p, err := Build(ctx, Options{Config: cfg}, snd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	deployments := []string{"checkout", "payments", "auth", "cart"}
	var wg sync.WaitGroup
	messages := 0
	for c := range conversations {
		channel := fmt.Sprintf("c%02d", c)
		user := fmt.Sprintf("s%02d", c)
		dep := deployments[c%len(deployments)]
		messages += 5
		wg.Go(func() {
			say := func(who, text string) string {
				p.Pipeline.Handle(ctx, chat.Message{Platform: chat.Console, Channel: channel, Thread: channel, User: who, Text: text})
				return snd.lastIn(channel)
			}
			prompt := say(user, fmt.Sprintf("scale %s to %d in staging", dep, 2+c%5))
			m := codeRE.FindStringSubmatch(prompt)
			if m == nil {
				t.Errorf("%s: no confirmation prompt: %q", channel, prompt)
				return
			}
			say(user, "confirm "+m[1])
			say(user, "status of "+dep+" in staging")
			say("stranger"+user, "restart "+dep+" in prod") // refused: not an sre
			say(user, "what is the meaning of life")
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	res, err := p.Audit.Verify(ctx)
	if err != nil || !res.OK {
		t.Fatalf("Verify = %s, %v", res, err)
	}
	evs, err := p.Audit.List(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(evs)) != res.Count {
		t.Fatalf("List = %d events, Verify counted %d", len(evs), res.Count)
	}
	received := 0
	steps := map[string][]audit.Type{} // confirmation id -> its events, in chain order
	for _, e := range evs {
		if e.Type == audit.MessageReceived {
			received++
		}
		if e.ConfirmationID != "" {
			steps[e.ConfirmationID] = append(steps[e.ConfirmationID], e.Type)
		}
	}
	if received != messages {
		t.Errorf("message.received = %d, want %d (every message once)", received, messages)
	}
	if len(steps) != conversations {
		t.Errorf("%d confirmations in the log, want %d", len(steps), conversations)
	}
	ran := 0
	for id, got := range steps {
		var order []string
		for _, typ := range got {
			if typ == audit.PolicyDecided {
				continue // a confirmation is decided again at the grant
			}
			order = append(order, string(typ))
		}
		line := strings.Join(order, " ")
		switch {
		case line == "confirmation.requested confirmation.granted action.started action.succeeded",
			line == "confirmation.requested confirmation.granted action.started action.failed":
			ran++
		case !strings.Contains(line, "action.") && strings.HasPrefix(line, "confirmation.requested "):
			// Refused at the confirmation: the deployment changed since
			// its plan (another conversation scaled it meanwhile).
		default:
			t.Errorf("confirmation %s: %s; want requested, granted, started once, then its outcome (or refused, nothing started)", id, line)
		}
	}
	if ran < conversations/4 {
		t.Errorf("%d of %d confirmed changes ran; want most", ran, conversations)
	}
}
