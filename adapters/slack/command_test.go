package slack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/chatstate"
	"github.com/parley-chatops/parley/internal/store"
)

// answer is the recorder's Reply for these tests: it answers every
// message with one public and one private reply, as the pipeline would a
// request with a result and a refusal.
func answer(t *testing.T, a *Adapter) func(ctx context.Context, m chat.Message) {
	return func(ctx context.Context, m chat.Message) {
		for _, r := range []chat.Reply{
			{Kind: chat.KindSuccess, Text: "public answer to " + m.Text},
			{Kind: chat.KindDenied, Text: "private answer to " + m.Text, Visibility: chat.Private, Recipient: m.User},
		} {
			r.Platform, r.Channel, r.Thread = chat.Slack, m.Channel, m.Thread
			if _, err := a.Send(ctx, r); err != nil {
				t.Errorf("Send %q: %v", r.Text, err)
			}
		}
	}
}

// TestSlashCommandOverSocketMode: "/parley" alone is help, answered only
// to the asker through the command's response_url, nothing posted in the
// channel; "/parley TEXT" gets a public anchor message whose thread holds
// the request, with private answers as ephemeral messages there.
func TestSlashCommandOverSocketMode(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	h.rec.Reply = answer(t, h.a)

	f.Envelope("env-c1", "slash_commands", chattest.SlackCommand{User: "U1", Channel: "C1", Text: "  ", TriggerID: "111.222.aaa", ResponseURL: f.ResponseURL("r1")}.JSON())
	f.WaitAck("env-c1")
	m := h.rec.NextText(t, "help")
	if m.EventID != "cmd:111.222.aaa" || m.Thread != "slash:111.222.aaa" || m.User != "U1" || m.Channel != "C1" {
		t.Errorf("help message = %+v", m)
	}
	f.WaitFor("two answers to the response_url", func() bool { return len(f.Responses()) == 2 })
	for _, r := range f.Responses() {
		if r.Method != "response_url:ephemeral" || r.Channel != "r1" {
			t.Errorf("answer to /parley: %+v", r)
		}
	}
	if posts, _ := f.Snapshot(); len(posts) != 0 {
		t.Errorf("a help request posted in the channel: %+v", posts)
	}

	f.Envelope("env-c2", "slash_commands", chattest.SlackCommand{User: "U1", Channel: "C1", Text: "scale checkout to 5 in prod", TriggerID: "111.222.bbb", ResponseURL: f.ResponseURL("r2")}.JSON())
	f.WaitAck("env-c2")
	m = h.rec.NextText(t, "scale checkout to 5 in prod")
	f.WaitFor("the answers", func() bool { posts, _ := f.Snapshot(); return len(posts) == 2 && len(f.Ephemerals()) == 1 })
	posts, _ := f.Snapshot()
	anchor := posts[0]
	if anchor.Thread != "" || anchor.Text != "<@U1> asked: /parley scale checkout to 5 in prod" || m.Thread != anchor.TS || m.EventID != "cmd:111.222.bbb" {
		t.Errorf("anchor %+v, message %+v", anchor, m)
	}
	if posts[1].Thread != anchor.TS || !strings.Contains(posts[1].Text, "public answer") {
		t.Errorf("public answer: %+v", posts[1])
	}
	if e := f.Ephemerals()[0]; e.User != "U1" || e.Thread != anchor.TS || !strings.Contains(e.Text, "private answer") {
		t.Errorf("private answer: %+v", e)
	}

	// "/parley help" is private too; another app's command is not ours.
	f.Envelope("env-c3", "slash_commands", chattest.SlackCommand{User: "U2", Channel: "C1", Text: "HELP", TriggerID: "111.222.ccc", ResponseURL: f.ResponseURL("r3")}.JSON())
	if m := h.rec.NextText(t, "help"); m.Thread != "slash:111.222.ccc" {
		t.Errorf("/parley HELP thread = %q", m.Thread)
	}
	other := strings.Replace(chattest.SlackCommand{User: "U2", Channel: "C1", Text: "prod", TriggerID: "111.222.ddd"}.JSON(), `"/parley"`, `"/deploy"`, 1)
	f.Envelope("env-c4", "slash_commands", other)
	f.WaitAck("env-c4")
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000031.000100", "")))
	h.rec.NextText(t, "sentinel")
}

// TestSlashCommandWhereParleyCannotPost: the anchor cannot be posted (the
// bot is not in the channel): the asker hears why through the
// response_url, and nothing reaches the pipeline.
func TestSlashCommandWhereParleyCannotPost(t *testing.T) {
	f := chattest.NewSlack(t)
	f.SetFail(func(method string, _ int) (int, string, string) {
		if method == "chat.postMessage" {
			return 0, "", "not_in_channel"
		}
		return 0, "", ""
	})
	h := start(t, f, nil)
	f.Envelope("env-c1", "slash_commands", chattest.SlackCommand{User: "U1", Channel: "CPRIV", Text: "status of checkout", TriggerID: "333.444.aaa", ResponseURL: f.ResponseURL("r1")}.JSON())
	f.WaitFor("the explanation", func() bool { return len(f.Responses()) == 1 })
	if r := f.Responses()[0]; !strings.Contains(r.Text, "/invite @Parley") || !strings.Contains(r.Text, "Nothing was run") {
		t.Errorf("explanation = %+v", r)
	}
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000031.000100", "")))
	h.rec.NextText(t, "sentinel")
}

// TestSlashCommandOverHTTP: the command arrives form-encoded and signed at
// the events endpoint; it is acknowledged with an empty 200 before the
// pipeline runs (Slack allows 3 seconds), and a forged one is refused.
func TestSlashCommandOverHTTP(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, func(o *Options) {
		o.Mode, o.AppToken, o.SigningSecret = ModeEvents, "", chattest.SlackSigningSecret
		o.Now = func() time.Time { return fixedNow }
	})
	release := make(chan struct{})
	h.rec.Reply = func(context.Context, chat.Message) { <-release } // a slow pipeline
	srv := httptest.NewServer(h.a.EventsHandler())
	defer srv.Close()
	ts := fixedNow.Unix()
	form := chattest.SlackCommand{User: "U1", Channel: "C1", Text: "", TriggerID: "555.666.aaa", ResponseURL: f.ResponseURL("r1")}.Form().Encode()
	code, body := post(t, srv, "application/x-www-form-urlencoded", form, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, form), "")
	if code != http.StatusOK || body != "" {
		t.Fatalf("slash command answered %d %q, want an empty 200", code, body)
	}
	close(release) // acknowledged while the pipeline was still busy
	h.rec.NextText(t, "help")

	if code, _ := post(t, srv, "application/x-www-form-urlencoded", form, ts, chattest.SlackSign("not-the-secret", ts, form), ""); code != http.StatusUnauthorized {
		t.Errorf("forged command: %d, want 401", code)
	}
	stale := ts - 600
	if code, _ := post(t, srv, "application/x-www-form-urlencoded", form, stale, chattest.SlackSign(chattest.SlackSigningSecret, stale, form), ""); code != http.StatusUnauthorized {
		t.Errorf("stale command: %d, want 401", code)
	}
}

// TestResponseURLOnlyToSlack: a response_url is called only on Slack's
// hooks host (or the configured API host): a forged URL is not followed.
func TestResponseURLOnlyToSlack(t *testing.T) {
	called := make(chan struct{}, 1)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		called <- struct{}{}
	}))
	defer elsewhere.Close()
	a, err := New(Options{BotToken: chattest.SlackBotToken, AppToken: chattest.SlackAppToken, APIURL: "https://slack.example/api/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.postResponse(context.Background(), elsewhere.URL+"/steal", Message{Text: "x"}); err == nil || !strings.Contains(err.Error(), "not Slack's") {
		t.Errorf("postResponse to another host: %v", err)
	}
	select {
	case <-called:
		t.Error("a forged response_url was called")
	default:
	}
}

// TestEphemeralFallsBackToTheThread: when Slack takes no ephemeral message
// for the person (they left the channel), the answer goes to the thread
// rather than nowhere.
func TestEphemeralFallsBackToTheThread(t *testing.T) {
	f := chattest.NewSlack(t)
	f.SetFail(func(method string, _ int) (int, string, string) {
		if method == "chat.postEphemeral" {
			return 0, "", "user_not_in_channel"
		}
		return 0, "", ""
	})
	h := start(t, f, nil)
	_, err := h.a.Send(context.Background(), chat.Reply{Channel: "C1", Thread: "1700000001.000100", Text: "You may not run that.", Visibility: chat.Private, Recipient: "U9"})
	if err != nil {
		t.Fatal(err)
	}
	posts, _ := f.Snapshot()
	if len(posts) != 1 || posts[0].Thread != "1700000001.000100" || !strings.Contains(posts[0].Text, "You may not run that.") {
		t.Errorf("fallback posts: %+v", posts)
	}
}

func sharedState(t *testing.T, path string) *chatstate.Store {
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

// TestThreadRepliesWithoutMention: once Parley has posted in a thread, a
// reply there without a mention is read, by any replica sharing the state
// (here a second adapter on the same database); so are messages with a
// file and replies also sent to the channel. Threads Parley never answered
// in, and bots, are not read.
func TestThreadRepliesWithoutMention(t *testing.T) {
	f := chattest.NewSlack(t)
	db := filepath.Join(t.TempDir(), "parley.db")
	first := start(t, f, func(o *Options) { o.State = sharedState(t, db) })
	if _, err := first.a.Send(context.Background(), chat.Reply{Channel: "C1", Thread: "1700000050.000100", Text: "This changes prod. Reply confirm K7Q2"}); err != nil {
		t.Fatal(err)
	}
	second := start(t, f, func(o *Options) { o.State = sharedState(t, db) }) // another replica: the latest socket
	f.WaitConnected(2)
	in := func(i int, ts, thread, extra string) string {
		return chattest.SlackEvent("EvT"+string(rune('a'+i)), chattest.SlackMessage("C1", "channel", "U1", "text "+ts, ts, `,"thread_ts":"`+thread+`"`+extra))
	}
	events := []string{
		in(0, "1700000060.000100", "1700000099.000100", ""),                                              // a thread Parley never answered in
		in(1, "1700000061.000100", "1700000050.000100", `,"bot_id":"B999"`),                              // a bot
		in(2, "1700000062.000100", "1700000050.000100", `,"subtype":"bot_message"`),                      // a bot message
		in(3, "1700000063.000100", "1700000050.000100", ""),                                              // read
		in(4, "1700000064.000100", "1700000050.000100", `,"subtype":"file_share","files":[{"id":"F1"}]`), // read
		in(5, "1700000065.000100", "1700000050.000100", `,"subtype":"thread_broadcast"`),                 // read
		in(6, "1700000066.000100", "1700000077.000100", `,"parent_user_id":"UBOT0001"`),                  // under Parley's own message: read
	}
	for i, ev := range events {
		id := "env-t" + string(rune('a'+i))
		f.Envelope(id, "events_api", ev)
		f.WaitAck(id)
	}
	// Handlers run concurrently: compare the set.
	var got []string
	for range 4 {
		m := second.rec.Next(t)
		got = append(got, m.Text)
		if m.Thread == "" || strings.HasSuffix(m.EventID, m.Thread) {
			t.Errorf("thread reply %+v lost its thread", m)
		}
	}
	slices.Sort(got)
	if want := "text 1700000063.000100,text 1700000064.000100,text 1700000065.000100,text 1700000066.000100"; strings.Join(got, ",") != want {
		t.Errorf("handled %q, want %s", got, want)
	}
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000070.000100", "")))
	second.rec.NextText(t, "sentinel")
	if n := len(first.rec.Messages()); n != 0 {
		t.Errorf("the first replica handled %d messages sent to the second's socket", n)
	}
}

// TestSlashCommandAnchoredOnceAcrossReplicas: the same command delivered
// to two replicas sharing the state is anchored and handled by one.
func TestSlashCommandAnchoredOnceAcrossReplicas(t *testing.T) {
	f := chattest.NewSlack(t)
	db := filepath.Join(t.TempDir(), "parley.db")
	events := func(o *Options) {
		o.Mode, o.AppToken, o.SigningSecret = ModeEvents, "", chattest.SlackSigningSecret
		o.Now = func() time.Time { return fixedNow }
		o.State = sharedState(t, db)
	}
	a, b := start(t, f, events), start(t, f, events)
	form := chattest.SlackCommand{User: "U1", Channel: "C1", Text: "status of checkout", TriggerID: "777.888.aaa", ResponseURL: f.ResponseURL("r")}.Form().Encode()
	ts := fixedNow.Unix()
	for _, h := range []*harness{a, b} {
		srv := httptest.NewServer(h.a.EventsHandler())
		if code, _ := post(t, srv, "application/x-www-form-urlencoded", form, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, form), ""); code != http.StatusOK {
			t.Fatalf("command: %d", code)
		}
		srv.Close()
	}
	count := func() int { return a.rec.Count("cmd:777.888.aaa") + b.rec.Count("cmd:777.888.aaa") }
	a.rec.WaitFor(t, "the command handled", func() bool { return count() >= 1 })
	// Each replica then gets a sentinel DM: the command must not be
	// handled before it on the replica that lost the claim.
	for i, h := range []*harness{a, b} {
		srv := httptest.NewServer(h.a.EventsHandler())
		body := chattest.SlackEvent(fmt.Sprint("EvS", i), chattest.SlackMessage("D1", "im", "U1", "sentinel", fmt.Sprintf("170000009%d.000100", i), ""))
		if code, _ := post(t, srv, "application/json", body, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, body), ""); code != http.StatusOK {
			t.Fatalf("sentinel: %d", code)
		}
		srv.Close()
	}
	for _, h := range []*harness{a, b} {
		h.rec.WaitFor(t, "the sentinel", func() bool {
			for _, m := range h.rec.Messages() {
				if m.Text == "sentinel" {
					return true
				}
			}
			return false
		})
	}
	if posts, _ := f.Snapshot(); len(posts) != 1 || count() != 1 {
		t.Errorf("%d anchors and %d handlings, want one each", len(posts), count())
	}
}
