package app

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
)

// committedSender checks, at every reply, what another connection to the
// database sees of the request being answered: only committed rows. The
// pipeline notes a request's first steps without waiting; they must be
// durable before the reply that tells of them.
type committedSender struct {
	t      *testing.T
	raw    *sql.DB
	seen   [][]string // per reply: the event types of the newest request, as committed
	replys []string
}

func (s *committedSender) Send(_ context.Context, r chat.Reply) (string, error) {
	if r.Kind == chat.KindAudit {
		return "", nil
	}
	rows, err := s.raw.Query(`SELECT type FROM audit_events WHERE request_id =
		(SELECT request_id FROM audit_events WHERE type = 'message.received' ORDER BY seq DESC LIMIT 1) ORDER BY seq`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			s.t.Fatal(err)
		}
		types = append(types, typ)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	s.seen = append(s.seen, types)
	s.replys = append(s.replys, r.Text)
	return "r", nil
}

// TestRepliesWaitForTheirEventsAndShareOneCommit: a denied request and a
// read each reach the database in one commit (received, routed, decided
// and, for the read, started and succeeded together), and that commit is
// done before the reply goes out.
func TestRepliesWaitForTheirEventsAndShareOneCommit(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Database = filepath.Join(dir, "parley.db")
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 2, 14, 7, 0, time.UTC)
	clock := func() time.Time { return now }
	raw, err := sql.Open("sqlite", cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	snd := &committedSender{t: t, raw: raw}
	// A window far longer than any read here: the test does not depend
	// on how fast the machine runs the status action.
	p, err := Build(ctx, Options{Config: cfg, Now: clock, AuditCommitWindow: time.Minute}, snd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	say := func(user, text string) int64 {
		t.Helper()
		before := p.Audit.Commits()
		p.Pipeline.Handle(ctx, chat.Message{Platform: chat.Console, Channel: "ops", Thread: "ops", User: user, Text: text})
		return p.Audit.Commits() - before
	}
	say("warmup", "help") // the first message also sweeps expired confirmations

	for _, tc := range []struct {
		user, text string
		want       []string // the request's events committed when its reply went out
		reply      string
	}{
		{"u1", "scale checkout to 2 in prod", []string{"message.received", "intent.routed", "policy.decided"}, "may not run kubernetes.scale"},
		{"u4", "status of payments in prod", []string{"message.received", "intent.routed", "policy.decided", "action.started", "action.succeeded"}, "payments (prod)"},
		{"u2", "status of checkout in prod", []string{"message.received", "intent.routed", "policy.decided", "action.started", "action.succeeded"}, "checkout (prod)"},
		{"u3", "what is the meaning of life", []string{"message.received", "intent.routed"}, "did not"},
	} {
		replies := len(snd.seen)
		if commits := say(tc.user, tc.text); commits != 1 {
			t.Errorf("%q took %d commits, want 1", tc.text, commits)
		}
		if len(snd.seen) != replies+1 {
			t.Fatalf("%q: %d replies, want 1", tc.text, len(snd.seen)-replies)
		}
		if got := snd.seen[replies]; !slices.Equal(got, tc.want) {
			t.Errorf("%q: when its reply went out, the database held %v of it; want %v", tc.text, got, tc.want)
		}
		if !strings.Contains(snd.replys[replies], tc.reply) {
			t.Errorf("%q: reply %q, want it to contain %q", tc.text, snd.replys[replies], tc.reply)
		}
	}
}
