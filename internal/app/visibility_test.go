package app

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/chat"
)

// repliesSince returns the non-audit replies since index n.
func (r *recorder) repliesSince(n int) []chat.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []chat.Reply
	for _, rep := range r.replies[n:] {
		if rep.Kind != chat.KindAudit {
			out = append(out, rep)
		}
	}
	return out
}

// TestVisibilityOfReplies: refusals, help, "did not understand" and
// errors in what was asked are private to the asker; confirmation
// prompts, results and the audit trail are public. Adapters render
// Private as their platform allows (tested in adapters/slack and
// adapters/discord).
func TestVisibilityOfReplies(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	type step struct {
		user, text string
		want       chat.Visibility
		contains   string
	}
	var code string
	for _, s := range []step{
		{"alice", "help", chat.Private, "Here is what you"},
		{"eve", "scale checkout to 5 in prod", chat.Private, "may not run"},
		{"alice", "make me a sandwich", chat.Private, "nothing was run"},
		{"alice", "scale checkout in prod", chat.Private, "also need"},
		{"alice", "status of checkout in prod", chat.Public, "checkout (prod)"},
		{"alice", "scale checkout to 4 in prod", chat.Public, "confirm"},
		{"eve", "confirm CODE", chat.Private, "cannot confirm"},
		{"alice", "confirm ZZZZ", chat.Private, "no pending request ZZZZ"},
	} {
		n := len(h.out.replies)
		text := strings.ReplaceAll(s.text, "CODE", code)
		h.say(s.user, "ops", text)
		got := h.out.repliesSince(n)
		if len(got) == 0 {
			t.Fatalf("%s: %q got no reply", s.user, text)
		}
		last := got[len(got)-1]
		if last.Visibility != s.want || !strings.Contains(last.Text, s.contains) {
			t.Errorf("%s: %q -> %q (%q), want %q containing %q", s.user, text, last.Text, last.Visibility, s.want, s.contains)
		}
		if last.Visibility == chat.Private && last.Recipient != s.user {
			t.Errorf("%s: %q: private reply for %q, want the asker", s.user, text, last.Recipient)
		}
		if strings.HasPrefix(last.Text, "This changes prod") {
			code = mustCode(t, last.Text)
		}
	}
	if code == "" {
		t.Fatal("no confirmation prompt")
	}
	n := len(h.out.replies)
	h.say("alice", "ops", "confirm "+code)
	got := h.out.repliesSince(n)
	if len(got) == 0 || got[len(got)-1].Visibility != chat.Public || !strings.Contains(got[len(got)-1].Text, "Scaled checkout") {
		t.Errorf("the result of a confirmed change is not public: %+v", got)
	}
}
