package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/parley-chatops/parley/adapters/chattest"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer = logtest.Buffer

type harness struct {
	f    *chattest.Discord
	a    *Adapter
	rec  *chattest.Recorder
	logs *syncBuffer
	stop func() // stops Run and waits for it; safe to call twice
}

func testOptions(f *chattest.Discord, logs *syncBuffer) Options {
	return Options{
		Token: chattest.DiscordToken, ApplicationID: chattest.DiscordAppID, GuildIDs: []string{chattest.DiscordGuild},
		BoundChannels: map[string]bool{chattest.DiscordBound: true},
		APIURL:        f.URL(),
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		CallTimeout:   10 * time.Second, StartTimeout: 10 * time.Second,
	}
}

// start runs an adapter against a fake Discord until the test ends.
func start(t *testing.T, f *chattest.Discord, reply func(a *Adapter) func(context.Context, chat.Message), mods ...func(*Options)) *harness {
	t.Helper()
	logs := &syncBuffer{}
	opts := testOptions(f, logs)
	for _, m := range mods {
		m(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := chattest.NewRecorder()
	startedCh := make(chan struct{})
	a.started = func() { close(startedCh) }
	if reply != nil {
		rec.Reply = reply(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, rec) }()
	var once sync.Once
	h := &harness{f: f, a: a, rec: rec, logs: logs}
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
			assertNoSecret(t, "logs", logs.String())
		})
	}
	t.Cleanup(h.stop)
	select {
	case <-startedCh:
	case err := <-errc:
		errc <- err // for stop
		t.Fatalf("Run: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the adapter did not start")
	}
	return h
}

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{chattest.DiscordToken, chattest.DiscordIxToken, chattest.DiscordIxToken2} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contain a secret: %q", where, s)
		}
	}
}

func TestStartupIdentifiesAndRegistersCommand(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	start(t, f, nil)
	intents, _ := f.Gateway()
	identifies, _, _ := f.Sessions()
	if identifies != 1 || intents != int(Intents) {
		t.Errorf("identify: %d times with intents %d, want once with %d", identifies, intents, Intents)
	}
	if Intents&(1<<15) == 0 {
		t.Error("the Message Content intent (1<<15) is not requested")
	}
	if bulk := f.Requests(chattest.RouteBulkCommands, chattest.RouteBulkGuildCmds); len(bulk) != 0 {
		t.Fatalf("commands overwritten in bulk: %+v", bulk)
	}
	posts := f.Requests(chattest.RouteCreateGuildCmd)
	if len(posts) != 1 || posts[0].Path != "/api/v9/applications/"+chattest.DiscordAppID+"/guilds/"+chattest.DiscordGuild+"/commands" {
		t.Fatalf("command registration requests: %+v", posts)
	}
	if strings.Contains(string(posts[0].Body), `"contexts"`) {
		t.Errorf("a guild command carries contexts (global-only): %s", posts[0].Body)
	}
	var cmds []struct {
		Name    string `json:"name"`
		Options []struct {
			Name    string `json:"name"`
			Type    int    `json:"type"`
			Options []struct {
				Name    string `json:"name"`
				Type    int    `json:"type"`
				Options []struct {
					Name     string `json:"name"`
					Required bool   `json:"required"`
				} `json:"options"`
			} `json:"options"`
		} `json:"options"`
	}
	if err := json.Unmarshal([]byte("["+string(posts[0].Body)+"]"), &cmds); err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || cmds[0].Name != "parley" {
		t.Fatalf("commands: %s", posts[0].Body)
	}
	var got []string
	for _, o := range cmds[0].Options {
		got = append(got, fmt.Sprintf("%s/%d", o.Name, o.Type))
		for _, s := range o.Options {
			var opts []string
			for _, p := range s.Options {
				opts = append(opts, fmt.Sprintf("%s:%v", p.Name, p.Required))
			}
			got = append(got, fmt.Sprintf("%s %s/%d %s", o.Name, s.Name, s.Type, strings.Join(opts, ",")))
		}
	}
	want := []string{"ask/1", "ask text/3 ", "help/1", "eval/2", "eval run/1 suite:true,variant:false,baseline:false", "eval status/1 run:false,suite:false"}
	if !slices.Equal(got, want) {
		t.Errorf("command shape:\n got %q\nwant %q", got, want)
	}
	f.WaitFor("a heartbeat", func() bool { _, hb := f.Gateway(); return hb > 0 })
}

// TestRegistrationTouchesOnlyParley: the application's other commands (made
// by another tool) survive; /parley is created where missing, edited where
// it differs, left alone where it matches; a global command has contexts,
// and what was done is logged.
func TestRegistrationTouchesOnlyParley(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	deploy := f.AddCommand("", "deploy", "Another tool's command")
	stale := f.AddCommand("", "parley", "An older description")
	guildDeploy := f.AddCommand(chattest.DiscordGuild, "deploy", "Another tool's guild command")

	global := start(t, f, nil, func(o *Options) { o.GuildIDs = nil })
	global.stop()
	if bulk := f.Requests(chattest.RouteBulkCommands, chattest.RouteBulkGuildCmds); len(bulk) != 0 {
		t.Fatalf("commands overwritten in bulk: %+v", bulk)
	}
	edits := f.Requests(chattest.RouteEditCommand)
	if len(edits) != 1 || !strings.HasSuffix(edits[0].Path, "/commands/"+stale) || len(f.Requests(chattest.RouteCreateCommand)) != 0 {
		t.Fatalf("the stale /parley was not edited in place: edits %+v", edits)
	}
	cmds := f.Commands("")
	if len(cmds) != 2 || cmds[0]["id"] != deploy || cmds[1]["id"] != stale || cmds[1]["description"] == "An older description" {
		t.Fatalf("global commands after start: %v", cmds)
	}
	if ctx, ok := cmds[1]["contexts"].([]any); !ok || len(ctx) != 2 {
		t.Errorf("global /parley contexts = %v, want guild and bot DM", cmds[1]["contexts"])
	}
	if !strings.Contains(global.logs.String(), "result=updated") || !strings.Contains(global.logs.String(), "other_commands_kept=1") {
		t.Errorf("registration not logged:\n%s", global.logs.String())
	}

	// A restart finds it as it should be and changes nothing.
	again := start(t, f, nil, func(o *Options) { o.GuildIDs = nil })
	again.stop()
	if n := len(f.Requests(chattest.RouteEditCommand)) + len(f.Requests(chattest.RouteCreateCommand)); n != 1 {
		t.Errorf("a restart rewrote /parley (%d writes in all)", n)
	}
	if !strings.Contains(again.logs.String(), "result=unchanged") {
		t.Errorf("unchanged registration not logged:\n%s", again.logs.String())
	}

	guild := start(t, f, nil) // guild commands: created beside the other tool's
	guild.stop()
	gcmds := f.Commands(chattest.DiscordGuild)
	if len(gcmds) != 2 || gcmds[0]["id"] != guildDeploy || gcmds[1]["name"] != "parley" || gcmds[1]["contexts"] != nil {
		t.Errorf("guild commands after start: %v", gcmds)
	}
}

func TestMentionsBoundChannelsAndDMs(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			if _, err := a.Send(ctx, chat.Reply{Platform: m.Platform, Channel: m.Channel, Thread: m.Thread, Text: "ok: " + m.Text}); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
	})
	const (
		mention  = "1130000000000001001"
		ignored  = "1130000000000001002"
		fromBot  = "1130000000000001003"
		bound    = "1130000000000001004"
		dm       = "1130000000000001005"
		repeated = mention
	)
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(mention, chattest.DiscordGuild, chattest.DiscordChannel, "status of checkout in prod", true))
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(ignored, chattest.DiscordGuild, chattest.DiscordChannel, "lunch anyone?", false))
	bot := chattest.DiscordMessageCreate(fromBot, chattest.DiscordGuild, chattest.DiscordBound, "status of checkout", true)
	bot["author"] = map[string]any{"id": "1130000000000000011", "username": "otherbot", "discriminator": "0", "bot": true}
	f.Dispatch("MESSAGE_CREATE", bot)
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(bound, chattest.DiscordGuild, chattest.DiscordBound, "show error logs for payments", false))
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(dm, "", chattest.DiscordDM, "help", false))
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(repeated, chattest.DiscordGuild, chattest.DiscordChannel, "status of checkout in prod", true))
	f.WaitFor("three messages", func() bool { return h.rec.Count(mention)+h.rec.Count(bound)+h.rec.Count(dm) == 3 })
	h.stop() // waits for every handler, so ignored messages had their chance

	got := map[string]chat.Message{}
	for _, m := range h.rec.Messages() {
		if _, dup := got[m.EventID]; dup {
			t.Errorf("message %s handled twice", m.EventID)
		}
		got[m.EventID] = m
	}
	if len(got) != 3 {
		t.Fatalf("handled %d messages, want 3 (mention, bound channel, DM): %+v", len(got), got)
	}
	want := chat.Message{
		Platform: chat.Discord, Channel: chattest.DiscordChannel, Thread: mention, User: chattest.DiscordUser, UserName: "Maya",
		Text: "status of checkout in prod", EventID: mention, Groups: []string{"discord-role:" + chattest.DiscordRole},
	}
	m := got[mention]
	m.Time = time.Time{}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("mention:\n got %+v\nwant %+v", m, want)
	}
	if got[bound].Channel != chattest.DiscordBound || got[bound].Text != "show error logs for payments" {
		t.Errorf("bound channel message: %+v", got[bound])
	}
	if got[dm].Channel != chattest.DiscordDM || got[dm].Thread != dm || got[dm].Groups != nil {
		t.Errorf("DM message: %+v", got[dm])
	}

	// Guild replies went into threads started from the requests; the DM
	// reply references the request instead (DMs have no threads).
	threads := f.Requests("POST /api/v9/channels/{ch}/messages/{mid}/threads")
	var started []string
	for _, r := range threads {
		started = append(started, r.Path)
	}
	slices.Sort(started)
	wantThreads := []string{
		"/api/v9/channels/" + chattest.DiscordBound + "/messages/" + bound + "/threads",
		"/api/v9/channels/" + chattest.DiscordChannel + "/messages/" + mention + "/threads",
	}
	slices.Sort(wantThreads)
	if !slices.Equal(started, wantThreads) {
		t.Errorf("thread starts:\n got %q\nwant %q", started, wantThreads)
	}
	posts := map[string]map[string]any{}
	for _, r := range f.Requests("POST /api/v9/channels/{ch}/messages") {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		posts[r.Channel] = body
	}
	if posts[mention]["content"] != "ok: status of checkout in prod" || posts[bound] == nil {
		t.Errorf("thread replies: %v", posts)
	}
	ref, _ := posts[chattest.DiscordDM]["message_reference"].(map[string]any)
	if ref["message_id"] != dm || ref["fail_if_not_exists"] != false {
		t.Errorf("DM reply reference: %v", posts[chattest.DiscordDM])
	}
	if am, _ := posts[mention]["allowed_mentions"].(map[string]any); am == nil || len(am["parse"].([]any)) != 0 {
		t.Errorf("replies must not ping: allowed_mentions %v", posts[mention]["allowed_mentions"])
	}
}

func TestThreadMessagesStayInTheThread(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			if _, err := a.Send(ctx, chat.Reply{Channel: m.Channel, Thread: m.Thread, Text: "ok"}); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
	})
	const first, second = "1130000000000002001", "1130000000000002002"
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(first, chattest.DiscordGuild, chattest.DiscordChannel, "scale checkout to 5 in prod", true))
	f.WaitFor("the first reply", func() bool { return h.rec.Count(first) == 1 })
	// "confirm K7Q2" typed in the thread Parley started, without a mention.
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(second, chattest.DiscordGuild, first, "confirm K7Q2", false))
	f.WaitFor("the follow-up", func() bool { return h.rec.Count(second) == 1 })
	h.stop()
	var m chat.Message
	for _, x := range h.rec.Messages() {
		if x.EventID == second {
			m = x
		}
	}
	if m.Channel != chattest.DiscordChannel || m.Thread != first || m.Text != "confirm K7Q2" {
		t.Errorf("message in thread: %+v, want channel %s thread %s", m, chattest.DiscordChannel, first)
	}
	if n := len(f.Requests("POST /api/v9/channels/{ch}/messages/{mid}/threads")); n != 1 {
		t.Errorf("%d thread starts, want 1", n)
	}
	for _, r := range f.Requests("POST /api/v9/channels/{ch}/messages") {
		if r.Channel != first {
			t.Errorf("reply posted to %s, want the thread %s", r.Channel, first)
		}
	}
}

func TestSlashCommandIsDeferredThenAnswered(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	const ixID = "1130000000000000500"
	var acksBeforeHandle int
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			acksBeforeHandle = len(f.Requests("POST /api/v9/interactions/{id}/{token}/callback"))
			r := chat.Reply{Channel: m.Channel, Thread: m.Thread, Kind: chat.KindConfirm,
				Text:    `This will run the intent-routing evaluation (variant prompt-v2). Reply "confirm K7Q2" within 10m, or "cancel".`,
				Buttons: []chat.Button{{Label: "Confirm", Style: "primary", Action: "confirm", Value: "cf-42"}, {Label: "Cancel", Style: "danger", Action: "cancel", Value: "cf-42"}}}
			if _, err := a.Send(ctx, r); err != nil {
				t.Errorf("first reply: %v", err)
			}
			if _, err := a.Send(ctx, chat.Reply{Channel: m.Channel, Thread: m.Thread, Kind: chat.KindAudit, Text: "confirmation requested"}); err != nil {
				t.Errorf("second reply: %v", err)
			}
		}
	})
	f.Dispatch("INTERACTION_CREATE", chattest.DiscordSlashEvalRun(ixID, chattest.DiscordIxToken))
	f.WaitFor("the slash command", func() bool { return h.rec.Count(ixID) == 1 })
	h.stop()

	m := h.rec.Messages()[0]
	if m.Text != "eval run intent-routing variant:prompt-v2" || m.Channel != chattest.DiscordBound || m.Thread != ixID || m.User != chattest.DiscordUser || m.Action != nil {
		t.Errorf("slash command message: %+v", m)
	}
	if !slices.Equal(m.Groups, []string{"discord-role:" + chattest.DiscordRole}) || m.UserName != "Maya (ML)" {
		t.Errorf("member: groups %v name %q", m.Groups, m.UserName)
	}
	ackType := f.CallbackType(ixID)
	if ackType != 5 || acksBeforeHandle != 1 {
		t.Errorf("ack type %d (%d before the handler ran), want DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE (5) before", ackType, acksBeforeHandle)
	}
	// "Parley is thinking…" shows to the asker only; the prompt is for
	// everyone, so the private deferred response becomes a short note and
	// the prompt a follow-up (which would otherwise edit the deferred
	// response, keeping it private).
	if flags, ok := f.DeferredFlags(chattest.DiscordIxToken); !ok || flags != 64 {
		t.Errorf("deferred response flags %d (%v), want ephemeral (64)", flags, ok)
	}
	ack, edit, follow := f.Index(chattest.RouteCallback), f.Index(chattest.RouteWebhookEdit), f.Index(chattest.RouteFollowup)
	if !(ack >= 0 && ack < edit && edit < follow) {
		t.Fatalf("request order: ack %d, edit original %d, follow-up %d", ack, edit, follow)
	}
	edits := f.Requests(chattest.RouteWebhookEdit)
	if len(edits) != 1 || !strings.HasSuffix(edits[0].Path, "/messages/@original") || !strings.Contains(string(edits[0].Body), "Answered in the channel") {
		t.Errorf("the deferred response should become a note: %+v", edits)
	}
	if f.FollowupEditedOriginal(chattest.DiscordIxToken) {
		t.Error("a public reply landed in the private deferred response")
	}
	fus := f.Requests(chattest.RouteFollowup)
	if len(fus) != 2 || strings.Contains(string(fus[0].Body), `"flags"`) {
		t.Fatalf("follow-ups: %+v", fus)
	}
	var body struct {
		Components []struct {
			Components []struct {
				CustomID string `json:"custom_id"`
				Style    int    `json:"style"`
			} `json:"components"`
		} `json:"components"`
	}
	if err := json.Unmarshal(fus[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Components) != 1 || len(body.Components[0].Components) != 2 ||
		body.Components[0].Components[0].CustomID != "parley:confirm:cf-42" || body.Components[0].Components[0].Style != 3 ||
		body.Components[0].Components[1].CustomID != "parley:cancel:cf-42" || body.Components[0].Components[1].Style != 4 {
		t.Errorf("buttons: %s", fus[0].Body)
	}
	if fu := f.Requests("POST /api/v9/webhooks/{app}/{token}"); fu[0].Query != "wait=true" {
		t.Errorf("follow-up query %q, want wait=true", fu[0].Query)
	}
}

func TestButtonClickAcksAndUpdatesInPlace(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	const ixID, promptID = "1130000000000000501", "1130000000000003001"
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			if m.Action == nil {
				return
			}
			r := chat.Reply{Channel: m.Channel, Thread: m.Thread, UpdateOf: m.Action.MessageID, Kind: chat.KindSuccess, Text: "Confirmed by <@" + m.User + ">: evaluation run 7 started."}
			if _, err := a.Send(ctx, r); err != nil {
				t.Errorf("update: %v", err)
			}
		}
	})
	f.Dispatch("INTERACTION_CREATE", chattest.DiscordButtonClick(ixID, chattest.DiscordIxToken2, "parley:confirm:cf-42", promptID))
	f.WaitFor("the click", func() bool { return h.rec.Count(ixID) == 1 })
	h.stop()

	m := h.rec.Messages()[0]
	want := chat.ButtonClick{Action: "confirm", Value: "cf-42", MessageID: promptID}
	if m.Action == nil || *m.Action != want || m.User != chattest.DiscordUser || m.Channel != chattest.DiscordBound || m.Text != "" {
		t.Fatalf("click message: %+v action %+v, want %+v", m, m.Action, want)
	}
	ackType := f.CallbackType(ixID)
	if ackType != 6 {
		t.Errorf("ack type %d, want DEFERRED_UPDATE_MESSAGE (6)", ackType)
	}
	edits := f.Requests("PATCH /api/v9/webhooks/{app}/{token}/messages/{mid}")
	if len(edits) != 1 || edits[0].Path != "/api/v9/webhooks/"+chattest.DiscordAppID+"/"+chattest.DiscordIxToken2+"/messages/@original" {
		t.Fatalf("update requests: %+v", edits)
	}
	var body map[string]any
	if err := json.Unmarshal(edits[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if comps, ok := body["components"].([]any); !ok || len(comps) != 0 {
		t.Errorf("update must remove the buttons: components %v", body["components"])
	}
	if !strings.HasPrefix(body["content"].(string), "Confirmed by") {
		t.Errorf("update content: %v", body["content"])
	}
}

func TestRateLimitStormIsAbsorbed(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	// Every other message create is refused with 429 for the first 12.
	f.SetLimit(func(route string, n int) bool {
		return route == "POST /api/v9/channels/{ch}/messages" && n <= 12 && n%2 == 1
	})
	var undelivered atomic.Int32
	opts := testOptions(f, &syncBuffer{})
	opts.OnUndelivered = func(context.Context, chat.Reply, error) { undelivered.Add(1) }
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	channels := []string{chattest.DiscordChannel, chattest.DiscordBound}
	var wg sync.WaitGroup
	for _, ch := range channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				if _, err := a.Send(context.Background(), chat.Reply{Channel: ch, Text: fmt.Sprintf("reply %d", i)}); err != nil {
					t.Errorf("Send %s %d: %v", ch, i, err)
				}
			}
		}()
	}
	wg.Wait()
	got := map[string][]string{}
	for _, r := range f.Requests("POST /api/v9/channels/{ch}/messages") {
		var b struct{ Content string }
		_ = json.Unmarshal(r.Body, &b)
		got[r.Channel] = append(got[r.Channel], b.Content)
	}
	limited := f.Limited()
	if limited == 0 {
		t.Fatal("no 429 was served")
	}
	for _, ch := range channels {
		// Each reply reached Discord once after its 429s, in order.
		var delivered []string
		for i, c := range got[ch] {
			if i == 0 || c != got[ch][i-1] {
				delivered = append(delivered, c)
			}
		}
		want := []string{"reply 0", "reply 1", "reply 2", "reply 3", "reply 4"}
		if !slices.Equal(delivered, want) {
			t.Errorf("channel %s received %q, want %q", ch, delivered, want)
		}
	}
	if total := len(f.Requests("POST /api/v9/channels/{ch}/messages")); total != 10+limited {
		t.Errorf("%d requests for 10 replies and %d 429s", total, limited)
	}
	if n := undelivered.Load(); n != 0 {
		t.Errorf("%d replies reported undelivered", n)
	}
}

func TestConcurrentRepliesStartOneThread(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	a, err := New(testOptions(f, &syncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	const request = "1130000000000004001"
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Send(context.Background(), chat.Reply{Channel: chattest.DiscordChannel, Thread: request, Text: fmt.Sprint("part ", i)}); err != nil {
				t.Errorf("Send: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := len(f.Requests("POST /api/v9/channels/{ch}/messages/{mid}/threads")); n != 1 {
		t.Errorf("%d thread starts for one request, want 1", n)
	}
	for _, r := range f.Requests("POST /api/v9/channels/{ch}/messages") {
		if r.Channel != request {
			t.Errorf("reply posted to %s, want the thread %s", r.Channel, request)
		}
	}
}

func TestUndeliveredReplyIsReported(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	f.SetFail(func(route, channel string) (int, int) {
		switch {
		case route == "POST /api/v9/channels/{ch}/messages" && channel == chattest.DiscordChannel:
			return 403, 50013 // Missing Permissions
		case route == "POST /api/v9/channels/{ch}/messages" && channel == chattest.DiscordBound:
			return 502, 0 // retried by discordgo, then given up
		}
		return 0, 0
	})
	type report struct {
		r   chat.Reply
		err error
	}
	var reports []report
	opts := testOptions(f, &syncBuffer{})
	opts.OnUndelivered = func(_ context.Context, r chat.Reply, err error) { reports = append(reports, report{r, err}) }
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err403 := a.Send(context.Background(), chat.Reply{Channel: chattest.DiscordChannel, Text: "scaled"})
	_, err502 := a.Send(context.Background(), chat.Reply{Channel: chattest.DiscordBound, Text: "evaluated"})
	if !errors.Is(err403, action.ErrForbidden) || !strings.Contains(err403.Error(), "Forbidden") {
		t.Errorf("403: %v, want a forbidden error", err403)
	}
	if !errors.Is(err502, action.ErrUnavailable) {
		t.Errorf("502: %v, want an unavailable error", err502)
	}
	if n := len(f.Requests("POST /api/v9/channels/{ch}/messages")); n != 1+4 {
		t.Errorf("%d requests, want 1 for the 403 and 4 (3 retries) for the 502", n)
	}
	if len(reports) != 2 || reports[0].r.Text != "scaled" || reports[0].err != err403 || reports[1].r.Text != "evaluated" {
		t.Errorf("OnUndelivered reports: %+v", reports)
	}
	assertNoSecret(t, "errors", fmt.Sprint(err403, err502))
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	h := start(t, f, nil)
	const before, after = "1130000000000005001", "1130000000000005002"
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(before, chattest.DiscordGuild, chattest.DiscordBound, "status of checkout", false))
	f.WaitFor("the first message", func() bool { return h.rec.Count(before) == 1 })

	f.SetReplay(true) // the server resends the last event on resume
	f.Drop()
	f.WaitFor("the resume", func() bool { _, _, ready := f.Sessions(); return slices.Contains(ready, "RESUMED") })
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(after, chattest.DiscordGuild, chattest.DiscordBound, "status of payments", false))
	f.WaitFor("the next message", func() bool { return h.rec.Count(after) == 1 })
	h.stop()

	identifies, resumes, _ := f.Sessions()
	if identifies != 1 || resumes != 1 {
		t.Errorf("identifies %d, resumes %d; want the session resumed, not re-identified", identifies, resumes)
	}
	if h.rec.Count(before) != 1 || h.rec.Count(after) != 1 {
		t.Errorf("handled before %d times, after %d times; want once each", h.rec.Count(before), h.rec.Count(after))
	}
}

func TestStartupErrorsAreClear(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(f *chattest.Discord, o *Options)
		want  error
		text  string
	}{
		{"gateway closes with 4014", func(f *chattest.Discord, _ *Options) { f.SetCloseCode(closeDisallowedIntents) },
			ErrMessageContentIntent, "enable the Message Content intent in the Developer Portal (Bot → Privileged Gateway Intents)"},
		{"READY without the intent", func(f *chattest.Discord, _ *Options) { f.SetAppFlags(0) },
			ErrMessageContentIntent, "enable the Message Content intent in the Developer Portal (Bot → Privileged Gateway Intents)"},
		{"bad token", func(_ *chattest.Discord, o *Options) {
			o.Token = "MTEzMDAwMDAwMDAwMDAwMDAwOQ.GhXy7Q.wrong-token-for-tests"
		},
			ErrTokenRejected, "the bot token was rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := chattest.NewDiscord(t)
			logs := &syncBuffer{}
			opts := testOptions(f, logs)
			tc.setup(f, &opts)
			a, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			err = a.Run(context.Background(), chattest.NewRecorder())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Run: %v, want %v", err, tc.want)
			}
			assertNoSecret(t, "error", err.Error())
			assertNoSecret(t, "logs", logs.String())
			if strings.Contains(err.Error(), "wrong-token") || strings.Contains(logs.String(), "wrong-token") {
				t.Errorf("the rejected token leaked: %v", err)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	ok := Options{Token: "abc.def.ghi"}
	for name, mod := range map[string]func(*Options){
		"no token":        func(o *Options) { o.Token = "  " },
		"spaced token":    func(o *Options) { o.Token = "abc def" },
		"bad guild":       func(o *Options) { o.GuildIDs = []string{"ops"} },
		"bad channel":     func(o *Options) { o.BoundChannels = map[string]bool{"#ops": true} },
		"bad app":         func(o *Options) { o.ApplicationID = "parley" },
		"bad API base":    func(o *Options) { o.APIURL = "127.0.0.1:80" },
		"bad gateway URL": func(o *Options) { o.GatewayURL = "http://127.0.0.1" },
	} {
		o := ok
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		} else if strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
	}
	if _, err := New(ok); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestExpiredInteractionRepliesInTheChannel(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	const ixID = "1130000000000000502"
	var mu sync.Mutex
	now := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var first string
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			var err error
			if first, err = a.Send(ctx, chat.Reply{Channel: m.Channel, Thread: m.Thread, Text: "Evaluation run 7 started."}); err != nil {
				t.Errorf("first reply: %v", err)
			}
			mu.Lock()
			now = now.Add(16 * time.Minute) // the evaluation took a while
			mu.Unlock()
			if _, err := a.Send(ctx, chat.Reply{Channel: m.Channel, Thread: m.Thread, Text: "Evaluation run 7 finished."}); err != nil {
				t.Errorf("late reply: %v", err)
			}
		}
	}, func(o *Options) { o.Now = clock })
	f.Dispatch("INTERACTION_CREATE", chattest.DiscordSlashEvalRun(ixID, chattest.DiscordIxToken))
	f.WaitFor("the slash command", func() bool { return h.rec.Count(ixID) == 1 })
	h.stop()

	// The first (public) answer is a follow-up after the note; the late
	// one goes to a thread under that answer, as the token has expired.
	edits := f.Requests(chattest.RouteWebhookEdit)
	if len(edits) != 1 || len(f.Requests(chattest.RouteFollowup)) != 1 {
		t.Fatalf("the expired token was used: %d edits, follow-ups %d", len(edits), len(f.Requests(chattest.RouteFollowup)))
	}
	threads := f.Requests(chattest.RouteStartThread)
	posts := f.Requests(chattest.RouteCreateMessage)
	if first == "" || len(threads) != 1 || threads[0].Path != "/api/v9/channels/"+chattest.DiscordBound+"/messages/"+first+"/threads" || len(posts) != 1 || posts[0].Channel != first {
		t.Errorf("late reply should go to a thread under the first answer %s: threads %+v posts %+v", first, threads, posts)
	}
}

func TestImagesAreAttached(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	a, err := New(testOptions(f, &syncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	r := chat.Reply{Channel: chattest.DiscordChannel, Text: "error rate, last hour", Fields: []chat.Field{{Label: "p99", Value: "1.2s"}},
		Images: []chat.Image{{Name: "checkout-error_rate.png", ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\nchart")}}}
	if _, err := a.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	posts := f.Requests("POST /api/v9/channels/{ch}/messages")
	if len(posts) != 1 || len(posts[0].Files) != 1 || posts[0].Files[0] != "checkout-error_rate.png image/png 13" {
		t.Fatalf("attachments: %+v", posts)
	}
	if !strings.Contains(string(posts[0].Body), `"url":"attachment://checkout-error_rate.png"`) {
		t.Errorf("the embed should show the chart: %s", posts[0].Body)
	}
}

func TestGatewayURLOverride(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	start(t, f, nil, func(o *Options) { o.GatewayURL = "ws" + strings.TrimPrefix(f.URL(), "http") + "/gw" })
	if n := len(f.Requests("GET /api/v9/gateway")) + len(f.Requests("GET /api/v9/gateway/bot")); n != 0 {
		t.Errorf("asked the API for the gateway %d times despite GatewayURL", n)
	}
	if identifies, _, _ := f.Sessions(); identifies != 1 {
		t.Errorf("identifies %d, want 1", identifies)
	}
}

func TestSilentGatewayFailsStartup(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	f.SetSilent(true)
	opts := testOptions(f, &syncBuffer{})
	opts.StartTimeout = 300 * time.Millisecond
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background(), chattest.NewRecorder()); err == nil || !strings.Contains(err.Error(), "connect to gateway") {
		t.Fatalf("Run: %v, want a gateway connection error", err)
	}
}

// closingNow reports whether Run has begun to stop: the adapter takes no
// new events.
func closingNow(a *Adapter) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closing
}

// waitClosing waits until Run has begun to stop. The deadline only turns a
// hang into a failure.
func waitClosing(t *testing.T, a *Adapter) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !closingNow(a) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not begin to stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A reply sent while Run is being stopped (shutdown, or a lost leadership)
// is delivered, not cancelled with Run's context and reported undelivered.
func TestReplyInFlightAtStopIsDelivered(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	var undelivered atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	sent := make(chan error, 1)
	h := start(t, f, func(a *Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, m chat.Message) {
			close(entered)
			<-release
			_, err := a.Send(ctx, chat.Reply{Platform: m.Platform, Channel: m.Channel, Thread: m.Thread, Kind: chat.KindSuccess, Text: "checkout is healthy"})
			sent <- err
		}
	}, func(o *Options) {
		o.OnUndelivered = func(context.Context, chat.Reply, error) { undelivered.Add(1) }
	})
	const request = "1130000000000001101"
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate(request, chattest.DiscordGuild, chattest.DiscordBound, "status of checkout", false))
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the message was not handled")
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.stop()
	}()
	waitClosing(t, h.a)
	close(release) // the handler answers only now, while Run is stopping
	if err := <-sent; err != nil {
		t.Errorf("Send while stopping: %v", err)
	}
	<-stopped
	if n := undelivered.Load(); n != 0 {
		t.Errorf("%d replies reported undelivered", n)
	}
	var delivered bool
	for _, r := range f.Requests("POST /api/v9/channels/{ch}/messages") {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		delivered = delivered || (r.Channel == request && strings.Contains(fmt.Sprint(body["content"]), "checkout is healthy"))
	}
	if !delivered {
		t.Errorf("the reply never reached Discord: %+v", f.Requests("POST /api/v9/channels/{ch}/messages"))
	}
}

// A handler still running when the drain period ends is cancelled, and Run
// returns: stopping is bounded.
func TestStopCancelsHandlersAfterTheDrainPeriod(t *testing.T) {
	t.Parallel()
	f := chattest.NewDiscord(t)
	entered := make(chan struct{})
	var handlerErr atomic.Value
	h := start(t, f, func(*Adapter) func(context.Context, chat.Message) {
		return func(ctx context.Context, _ chat.Message) {
			close(entered)
			<-ctx.Done() // a handler that would run forever
			handlerErr.Store(ctx.Err())
		}
	}, func(o *Options) { o.DrainTimeout = 20 * time.Millisecond })
	f.Dispatch("MESSAGE_CREATE", chattest.DiscordMessageCreate("1130000000000001102", chattest.DiscordGuild, chattest.DiscordBound, "status of checkout", false))
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the message was not handled")
	}
	h.stop() // returns only once the handler has returned
	if err, _ := handlerErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("handler context after the drain period: %v, want cancelled", err)
	}
	if !strings.Contains(h.logs.String(), "cancelling them") {
		t.Errorf("the cancellation was not logged:\n%s", h.logs.String())
	}
}
