package discord

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/chatstate"
	"github.com/parley-chatops/parley/internal/store"
)

// TestSlashCommandPrivateAnswers: a refusal or help answers a slash
// command privately: it replaces the ephemeral "thinking…"; a later
// private answer is an ephemeral follow-up, a public one an ordinary one.
func TestSlashCommandPrivateAnswers(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	const ixID = "1130000000000000510"
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			for _, r := range []chat.Reply{
				{Kind: chat.KindDenied, Text: "You may not run evaluation.run here.", Visibility: chat.Private, Recipient: m.User},
				{Kind: chat.KindInfo, Text: "Say help for what you may do.", Visibility: chat.Private, Recipient: m.User},
				{Kind: chat.KindAudit, Text: "policy.decided deny"},
			} {
				r.Channel, r.Thread = m.Channel, m.Thread
				if _, err := a.Send(ctx, r); err != nil {
					t.Errorf("Send %q: %v", r.Text, err)
				}
			}
		}
	})
	f.Dispatch("INTERACTION_CREATE", chattest.DiscordSlashEvalRun(ixID, chattest.DiscordIxToken))
	f.WaitFor("the slash command", func() bool { return h.rec.Count(ixID) == 1 })
	h.stop()

	edits := f.Requests(chattest.RouteWebhookEdit)
	if len(edits) != 1 || !strings.HasSuffix(edits[0].Path, "/@original") || !strings.Contains(string(edits[0].Body), "You may not run") {
		t.Fatalf("the refusal should replace the private deferred response: %+v", edits)
	}
	fus := f.Requests(chattest.RouteFollowup)
	if len(fus) != 2 {
		t.Fatalf("follow-ups: %+v", fus)
	}
	flags := func(r chattest.DiscordRequest) int {
		var b struct{ Flags int }
		_ = json.Unmarshal(r.Body, &b)
		return b.Flags
	}
	if flags(fus[0]) != 64 || !strings.Contains(string(fus[0].Body), "Say help") {
		t.Errorf("the second private answer is not ephemeral: %s", fus[0].Body)
	}
	if flags(fus[1]) != 0 || !strings.Contains(string(fus[1].Body), "policy.decided") {
		t.Errorf("the audit step is not public: %s", fus[1].Body)
	}
	if len(f.Requests(chattest.RouteCreateMessage)) != 0 {
		t.Error("a private answer was posted in the channel")
	}
}

func openState(t *testing.T, path string) *chatstate.Store {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := chatstate.New(db, chatstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestLongButtonValuesSurviveARestart: a suggested action's button (an
// incident's "Roll back" carries a whole request, over Discord's 100
// characters of custom_id) gets a short key into the shared state; a click
// on it, by the same process or after a restart, brings the whole value
// back. Without shared state the value is lost at a restart, and the
// click arrives as the bare key (the pipeline answers that it no longer
// knows the button).
func TestLongButtonValuesSurviveARestart(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	dbPath := filepath.Join(t.TempDir(), "parley.db")
	rollback := `{"action":"kubernetes.rollback","params":{"deployment":"checkout-frontend","namespace":"production-eu-west-1"}}`
	scale := `{"action":"kubernetes.scale","params":{"deployment":"checkout-frontend","namespace":"production-eu-west-1","replicas":12}}`
	r := chat.Reply{Channel: chattest.DiscordBound, Kind: chat.KindInfo, Text: "checkout-frontend error rate 12%", Buttons: []chat.Button{
		{Label: "Roll back", Style: "danger", Action: "run", Value: rollback},
		{Label: "Scale", Action: "run", Value: scale},
		{Label: "Confirm", Action: "confirm", Value: "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6"},
	}}

	first, err := New(func() Options { o := testOptions(f, &syncBuffer{}); o.State = openState(t, dbPath); return o }())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Components []struct {
			Components []struct {
				Label    string `json:"label"`
				CustomID string `json:"custom_id"`
			} `json:"components"`
		} `json:"components"`
	}
	posts := f.Requests(chattest.RouteCreateMessage)
	if len(posts) != 1 || json.Unmarshal(posts[0].Body, &body) != nil || len(body.Components) != 1 || len(body.Components[0].Components) != 3 {
		t.Fatalf("buttons: %s", posts[0].Body)
	}
	ids := map[string]string{}
	for _, b := range body.Components[0].Components {
		if len(b.CustomID) > 100 {
			t.Errorf("%s custom_id is %d characters", b.Label, len(b.CustomID))
		}
		ids[b.Label] = b.CustomID
	}
	if !strings.HasPrefix(ids["Roll back"], "parley:run:~") || ids["Roll back"] == ids["Scale"] || ids["Confirm"] != "parley:confirm:3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6" {
		t.Fatalf("custom_ids: %v", ids)
	}

	// "Restart": a new adapter on the same database, and one without it.
	for _, tc := range []struct {
		name   string
		state  bool
		ixID   string
		token  string
		wantRB string
	}{
		{"shared state", true, "1130000000000000520", chattest.DiscordIxToken, rollback},
		{"memory only", false, "1130000000000000521", chattest.DiscordIxToken2, strings.TrimPrefix(ids["Roll back"], "parley:run:")},
	} {
		h := start(t, f, nil, func(o *Options) {
			if tc.state {
				o.State = openState(t, dbPath)
			}
		})
		f.Dispatch("INTERACTION_CREATE", chattest.DiscordButtonClick(tc.ixID, tc.token, ids["Roll back"], "1130000000000003002"))
		f.WaitFor("the click", func() bool { return h.rec.Count(tc.ixID) == 1 })
		h.stop()
		m := h.rec.Messages()[0]
		if m.Action == nil || m.Action.Action != "run" || m.Action.Value != tc.wantRB {
			t.Errorf("%s: click = %+v, want value %s", tc.name, m.Action, tc.wantRB)
		}
	}
}

// TestThreadRepliesWithoutMention: in a thread Parley started (known from
// the thread's owner, so also after a restart) and in a Discord reply to
// Parley's message, a message needs no mention; in someone else's thread
// it does, and other bots are never read.
func TestThreadRepliesWithoutMention(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	h := start(t, f, nil)
	const ours, theirs = "1130000000000004001", "1130000000000004002"
	thread := func(id, owner string) map[string]any {
		return map[string]any{"id": id, "type": 11, "guild_id": chattest.DiscordGuild, "parent_id": chattest.DiscordChannel, "owner_id": owner, "name": "t"}
	}
	// READY's guild lists its active threads: how a restarted Parley
	// learns which threads it owns.
	f.Dispatch("GUILD_CREATE", map[string]any{"id": chattest.DiscordGuild, "name": "g", "channels": []any{
		map[string]any{"id": chattest.DiscordChannel, "type": 0, "guild_id": chattest.DiscordGuild, "name": "ops"},
	}, "threads": []any{thread(ours, chattest.DiscordBotID), thread(theirs, chattest.DiscordUser)}, "members": []any{}, "roles": []any{}})

	send := func(id, channel, text string, mod func(map[string]any)) {
		m := chattest.DiscordMessageCreate(id, chattest.DiscordGuild, channel, text, false)
		if mod != nil {
			mod(m)
		}
		f.Dispatch("MESSAGE_CREATE", m)
	}
	send("1130000000000005001", theirs, "chatter in someone else's thread", nil)
	send("1130000000000005002", ours, "other bot in our thread", func(m map[string]any) {
		u := chattest.DiscordUserJSON("1130000000000000999", "otherbot")
		u["bot"] = true
		m["author"] = u
	})
	send("1130000000000005003", ours, "confirm K7Q2", nil)
	f.WaitFor("the reply in Parley's thread", func() bool { return h.rec.Count("1130000000000005003") == 1 })
	send("1130000000000005004", chattest.DiscordChannel, "and in staging?", func(m map[string]any) {
		m["type"] = 19
		m["message_reference"] = map[string]any{"message_id": "1130000000000003003", "channel_id": chattest.DiscordChannel, "guild_id": chattest.DiscordGuild}
		m["referenced_message"] = map[string]any{"id": "1130000000000003003", "channel_id": chattest.DiscordChannel, "author": chattest.DiscordUserJSON(chattest.DiscordBotID, "parley"),
			"content": "checkout (prod): 3/3 ready", "timestamp": "2026-07-01T09:59:00.000000+00:00", "type": 0}
	})
	f.WaitFor("the Discord reply to Parley", func() bool { return h.rec.Count("1130000000000005004") == 1 })
	h.stop()
	var got []string
	for _, m := range h.rec.Messages() {
		got = append(got, m.Text)
	}
	if strings.Join(got, "|") != "confirm K7Q2|and in staging?" {
		t.Errorf("handled %q, want only the reply in Parley's thread and the reply to Parley", got)
	}
	if m := h.rec.Messages()[0]; m.Channel != chattest.DiscordChannel || m.Thread != ours {
		t.Errorf("thread message: %+v", m)
	}
}
