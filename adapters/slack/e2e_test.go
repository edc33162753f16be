package slack_test

// End-to-end tests of the Slack adapter with the real pipeline: a whole
// Parley instance from internal/app (sandbox Kubernetes cluster, SQLite
// audit and confirmations in a temporary file, the rules router, the test
// policy in testdata/e2e-policy.yaml) answers through the adapter, which
// talks to the fake Slack of adapters/chattest on 127.0.0.1. That fake speaks
// the real wire protocols, since real Slack cannot be reached here: the Web
// API (form-encoded requests, {"ok":...} answers, 429 with Retry-After) and
// Socket Mode (hello, envelopes shaped as Slack documents them, acks,
// pings). Every request below arrives as a Socket Mode envelope exactly as
// Slack sends it, and every check reads what Slack was asked to post.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/app"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

// e2eWait bounds every wait for something Slack should be asked to do.
const e2eWait = 20 * time.Second

// The test policy's users.
const (
	sre1 = "U0SRE1" // group sre
	sre2 = "U0SRE2" // group sre
	eve  = "U0EVE"  // no rights beyond reading
)

var mention = "<@" + chattest.SlackBotUserID + "> "

// logBuffer collects log output from several goroutines.
type logBuffer = logtest.Buffer

// e2e is one Parley instance serving Slack through the adapter.
type e2e struct {
	t    *testing.T
	f    *chattest.Slack
	a    *slack.Adapter
	p    *app.Parley
	logs *logBuffer

	mu          sync.Mutex
	undelivered []chat.Reply

	stop func() error
}

type e2eOptions struct {
	trail bool                                             // render audit steps into threads
	fail  func(method string, n int) (int, string, string) // fake Slack failures
}

// startE2E wires fake Slack -> adapter -> app.Build -> adapter.Run and
// waits for the Socket Mode connection. Cleanup stops Run, closes Parley
// and checks that no token reached the logs or the audit log.
func startE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	f := chattest.NewSlack(t)
	if o.fail != nil {
		f.SetFail(o.fail)
	}
	h := &e2e{t: t, f: f, logs: &logBuffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	a, err := slack.New(slack.Options{
		BotToken: chattest.SlackBotToken, AppToken: chattest.SlackAppToken, APIURL: f.URL(),
		Logger: logger, OnUndelivered: h.recordUndelivered,
		// Fast pacing between calls keeps the test short; Retry-After
		// from the fake (1s) is honoured whatever the pacing.
		PostInterval: 5 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, CallTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a

	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "parley.db")
	cfg.Policy = filepath.Join("testdata", "e2e-policy.yaml")
	cfg.Trail = o.trail
	if !cfg.Kubernetes.Sandbox {
		t.Fatal("the default configuration does not use the sandbox cluster")
	}
	p, err := app.Build(context.Background(), app.Options{Config: cfg, Logger: logger}, a)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	h.p = p
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := p.Pipeline.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, p.Pipeline) }()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(e2eWait):
				runErr = errors.New("Run did not return after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		h.checkNoSecrets()
	})
	f.WaitConnected(1)
	return h
}

func (h *e2e) recordUndelivered(_ context.Context, r chat.Reply, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.undelivered = append(h.undelivered, r)
}

func (h *e2e) undeliveredCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.undelivered)
}

// checkNoSecrets asserts that neither token appears in the log output or
// in any audit event. The log must not be empty, or the check proves
// nothing.
func (h *e2e) checkNoSecrets() {
	h.t.Helper()
	logs := h.logs.String()
	if !strings.Contains(logs, "connected to slack") {
		h.t.Errorf("the log lacks the adapter's start-up line; is the logger wired?\n%s", logs)
	}
	evs, err := h.p.Audit.List(context.Background(), audit.Filter{})
	if err != nil {
		h.t.Errorf("audit list: %v", err)
	}
	for name, secret := range map[string]string{"bot token": chattest.SlackBotToken, "app token": chattest.SlackAppToken} {
		if strings.Contains(logs, secret) {
			h.t.Errorf("the %s appears in the log output", name)
		}
		for _, e := range evs {
			if strings.Contains(fmt.Sprintf("%+v", e), secret) {
				h.t.Errorf("the %s appears in audit event #%d", name, e.Seq)
			}
		}
	}
}

// mention sends "<@bot> text" from user as an app_mention in channel; an
// empty thread starts a new one at ts. It returns the event payload.
func (h *e2e) mention(envelopeID, eventID, channel, user, text, ts, thread string) string {
	h.t.Helper()
	payload := chattest.SlackEvent(eventID, chattest.SlackMention(channel, user, mention+text, ts, thread))
	h.f.Envelope(envelopeID, "events_api", payload)
	return payload
}

// events lists the audit events of the given type.
func (h *e2e) events(typ audit.Type) []audit.Event {
	h.t.Helper()
	evs, err := h.p.Audit.List(context.Background(), audit.Filter{Types: []audit.Type{typ}})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// threadPosts returns the messages posted in a thread, in order.
func (h *e2e) threadPosts(channel, thread string) []chattest.SlackCall {
	posts, _ := h.f.Snapshot()
	var out []chattest.SlackCall
	for _, p := range posts {
		if p.Channel == channel && p.Thread == thread {
			out = append(out, p)
		}
	}
	return out
}

// waitPost waits until a message showing want is posted in the thread.
func (h *e2e) waitPost(channel, thread, want string) chattest.SlackCall {
	h.t.Helper()
	var found chattest.SlackCall
	h.waitFor(fmt.Sprintf("a post showing %q in thread %s", want, thread), func() bool {
		for _, p := range h.threadPosts(channel, thread) {
			if strings.Contains(shown(p), want) {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// waitEphemeral waits until a message showing want is posted in the
// thread for user only (chat.postEphemeral).
func (h *e2e) waitEphemeral(channel, thread, user, want string) chattest.SlackCall {
	h.t.Helper()
	var found chattest.SlackCall
	h.waitFor(fmt.Sprintf("an ephemeral message for %s showing %q in thread %s", user, want, thread), func() bool {
		for _, p := range h.f.Ephemerals() {
			if p.Channel == channel && p.Thread == thread && p.User == user && strings.Contains(shown(p), want) {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// waitUpdate waits until the message ts is updated to show want.
func (h *e2e) waitUpdate(channel, ts, want string) chattest.SlackCall {
	h.t.Helper()
	var found chattest.SlackCall
	h.waitFor(fmt.Sprintf("an update of %s showing %q", ts, want), func() bool {
		_, updates := h.f.Snapshot()
		for _, u := range updates {
			if u.Channel == channel && u.TS == ts && strings.Contains(shown(u), want) {
				found = u
				return true
			}
		}
		return false
	})
	return found
}

// waitShown waits until a confirmation of channel is recorded as shown,
// which Parley does right after the platform accepted its prompt: only
// then is it pending for approvers.
func (h *e2e) waitShown(channel string) {
	h.t.Helper()
	h.waitFor("the prompt to be recorded as shown", func() bool {
		pending, err := h.p.Confirmations.PendingIn(context.Background(), channel)
		return err == nil && len(pending) > 0
	})
}

func (h *e2e) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(e2eWait)
	for !cond() {
		if time.Now().After(deadline) {
			posts, updates := h.f.Snapshot()
			h.t.Fatalf("timed out waiting for %s\nposts: %s\nupdates: %s", what, describe(posts), describe(updates))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(calls []chattest.SlackCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s ts=%s thread=%s: %s", c.Method, c.Channel, c.TS, c.Thread, shown(c))
	}
	return b.String()
}

// shown is the text a person sees in a posted message: the text of every
// block (or the fallback text when there are none), with Slack's three
// escapes undone.
func shown(c chattest.SlackCall) string {
	text := c.Text
	if c.Blocks != "" {
		var blocks []any
		if err := json.Unmarshal([]byte(c.Blocks), &blocks); err == nil {
			var parts []string
			collectText(blocks, &parts)
			text = strings.Join(parts, "\n")
		}
	}
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}

func collectText(v any, out *[]string) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			collectText(e, out)
		}
	case map[string]any:
		if s, ok := v["text"].(string); ok {
			*out = append(*out, s)
		}
		for k, e := range v {
			if k != "text" {
				collectText(e, out)
			} else if _, ok := e.(string); !ok {
				collectText(e, out)
			}
		}
	}
}

// button is one Block Kit button of a posted message.
type button struct {
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
	Text     struct {
		Text string `json:"text"`
	} `json:"text"`
}

// buttons returns the buttons of a message's actions blocks.
func buttons(t *testing.T, c chattest.SlackCall) []button {
	t.Helper()
	if c.Blocks == "" {
		return nil
	}
	var blocks []struct {
		Type     string          `json:"type"`
		Elements json.RawMessage `json:"elements"`
	}
	if err := json.Unmarshal([]byte(c.Blocks), &blocks); err != nil {
		t.Fatalf("blocks of %s %s: %v", c.Method, c.TS, err)
	}
	var out []button
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		var elems []button
		if err := json.Unmarshal(b.Elements, &elems); err != nil {
			t.Fatalf("buttons of %s %s: %v", c.Method, c.TS, err)
		}
		out = append(out, elems...)
	}
	return out
}

func TestE2EStatusRepliedInThread(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const ts = "1700000001.000100"
	h.mention("env-1", "Ev001", "C1", eve, "status of checkout in prod", ts, "")
	h.f.WaitAck("env-1")
	p := h.waitPost("C1", ts, "checkout (prod): 3/3 ready")
	if len(buttons(t, p)) != 0 {
		t.Errorf("a read reply has buttons: %s", p.Blocks)
	}
	if n := len(h.events(audit.ActionSucceeded)); n != 1 {
		t.Errorf("action.succeeded events = %d, want 1", n)
	}
}

func TestE2EScaleConfirmedByButtonRunsOnce(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	ctx := context.Background()
	const thread = "1700000100.000100"
	h.mention("env-1", "Ev100", "C1", sre1, "scale checkout to 5 in prod", thread, "")

	prompt := h.waitPost("C1", thread, "This changes prod: checkout replicas 3 -> 5.")
	h.waitShown("slack:C1")
	pending, err := h.p.Confirmations.PendingIn(ctx, "slack:C1")
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending confirmations = %+v, %v; want 1", pending, err)
	}
	id := pending[0].ID
	btns := buttons(t, prompt)
	if len(btns) != 2 || btns[0].ActionID != "parley_confirm" || btns[0].Text.Text != "Confirm" ||
		btns[1].ActionID != "parley_cancel" || btns[1].Text.Text != "Cancel" {
		t.Fatalf("prompt buttons = %+v, want Confirm and Cancel", btns)
	}
	for _, b := range btns {
		if b.Value != id {
			t.Errorf("button %s carries %q, want only the confirmation id %q", b.ActionID, b.Value, id)
		}
	}
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Fatalf("%d action.started before the click", n)
	}

	// The Confirm click by the requester, on the prompt message.
	h.f.Envelope("env-click-1", "interactive",
		chattest.SlackClick(sre1, "C1", prompt.TS, thread, "parley_confirm", id, "1700000110.000001"))
	h.f.WaitAck("env-click-1")
	h.waitPost("C1", thread, "Scaled checkout (prod) 3 -> 5.")
	settled := h.waitUpdate("C1", prompt.TS, "Scaled checkout (prod) 3 -> 5.")
	if b := buttons(t, settled); len(b) != 0 {
		t.Errorf("the settled prompt still has buttons: %+v", b)
	}
	if !strings.Contains(shown(settled), "confirm clicked by slack:"+sre1) {
		t.Errorf("the settled prompt does not say who clicked: %q", shown(settled))
	}

	dep, err := h.p.Sandbox.Client().AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 5 {
		t.Errorf("checkout (prod) replicas = %v, want 5", dep.Spec.Replicas)
	}

	// A second click on the same button (a new action_ts: a new
	// interaction, not a redelivery) is refused and runs nothing.
	h.f.Envelope("env-click-2", "interactive",
		chattest.SlackClick(sre1, "C1", prompt.TS, thread, "parley_confirm", id, "1700000120.000001"))
	h.f.WaitAck("env-click-2")
	h.waitEphemeral("C1", thread, sre1, "runs at most once")

	var scales int
	for _, e := range h.events(audit.ActionSucceeded) {
		if e.Action == "kubernetes.scale" {
			scales++
			if e.ConfirmationID != id || e.Subject != "slack:"+sre1 {
				t.Errorf("scale event = %+v, want confirmation %s by slack:%s", e, id, sre1)
			}
		}
	}
	if scales != 1 {
		t.Errorf("kubernetes.scale action.succeeded events = %d, want 1", scales)
	}
	if n := len(h.events(audit.ActionStarted)); n != 1 {
		t.Errorf("action.started events = %d, want 1", n)
	}
	var ran int
	for _, p := range h.threadPosts("C1", thread) {
		if strings.Contains(shown(p), "Scaled checkout") {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("%d \"Scaled\" replies in the thread, want 1", ran)
	}
}

func TestE2EUserWithoutRightsRefused(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const thread = "1700000200.000100"
	h.mention("env-1", "Ev200", "C1", eve, "scale checkout to 5 in prod", thread, "")
	// The refusal is for eve only: an ephemeral message in the thread.
	refusal := h.waitEphemeral("C1", thread, eve, "You (slack:"+eve+") may not run kubernetes.scale")

	var denied int
	for _, e := range h.events(audit.PolicyDecided) {
		if e.Subject == "slack:"+eve && e.Action == "kubernetes.scale" && e.Decision == "deny" {
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("policy.decided deny events for slack:%s = %d, want 1", eve, denied)
	}
	// The refusal is the request's last reply: no prompt came before it,
	// and nothing is pending.
	for _, p := range h.threadPosts("C1", thread) {
		if len(buttons(t, p)) > 0 {
			t.Errorf("a refused request got a prompt with buttons: %q", shown(p))
		}
	}
	if len(buttons(t, refusal)) != 0 {
		t.Errorf("the refusal has buttons")
	}
	if posts := h.threadPosts("C1", thread); len(posts) != 0 {
		t.Errorf("the refusal was posted for everyone: %s", describe(posts))
	}
	pending, err := h.p.Confirmations.PendingIn(context.Background(), "slack:C1")
	if err != nil || len(pending) != 0 {
		t.Errorf("pending confirmations = %+v, %v; want none", pending, err)
	}
	if n := len(h.events(audit.ConfirmationRequested)); n != 0 {
		t.Errorf("confirmation.requested events = %d, want 0", n)
	}
}

func TestE2ERateLimitStormAbsorbed(t *testing.T) {
	// The first storm posts are answered 429 Retry-After: 1, whichever
	// thread they belong to. The audit trail is on, so each request posts
	// several messages in its thread and their order can be checked.
	const storm = 5
	h := startE2E(t, e2eOptions{trail: true, fail: func(method string, n int) (int, string, string) {
		if method == "chat.postMessage" && n <= storm {
			return http.StatusTooManyRequests, "1", ""
		}
		return 0, "", ""
	}})
	type req struct{ channel, ts, text, want string }
	reqs := []req{
		{"C1", "1700000300.000100", "status of checkout in prod", "checkout (prod): 3/3 ready"},
		{"C1", "1700000301.000100", "status of auth in prod", "auth (prod):"},
		{"C2", "1700000302.000100", "status of cart in staging", "cart (staging):"},
		{"C2", "1700000303.000100", "status of search in prod", "search (prod):"},
	}
	for i, r := range reqs {
		h.mention(fmt.Sprintf("env-%d", i), fmt.Sprintf("Ev30%d", i), r.channel, sre2, r.text, r.ts, "")
	}
	for _, r := range reqs {
		h.waitPost(r.channel, r.ts, r.want)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	posts, updates := h.f.Snapshot()
	if got := h.f.Calls("chat.postMessage"); got != len(posts)+storm {
		t.Errorf("chat.postMessage calls = %d, want %d posts + %d refused: the storm did not happen as planned", got, len(posts), storm)
	}
	steps := []string{"message.received", "intent.routed", "policy.decided", "action.started", "action.succeeded"}
	for _, r := range reqs {
		// In order: the thread's audit trail first, then the answer, each
		// exactly once.
		thread := h.threadPosts(r.channel, r.ts)
		if len(thread) != 2 || !strings.Contains(thread[0].Text, "Audit trail") || !strings.Contains(shown(thread[1]), r.want) {
			t.Errorf("thread %s posts = %s; want the audit trail, then %q", r.ts, describe(thread), r.want)
			continue
		}
		// The trail's last update shows every step, in order.
		var last *chattest.SlackCall
		for i := range updates {
			if updates[i].TS == thread[0].TS {
				last = &updates[i]
			}
		}
		if last == nil {
			t.Errorf("thread %s: the audit trail was never updated", r.ts)
			continue
		}
		text, at := shown(*last), 0
		for _, s := range steps {
			i := strings.Index(text[at:], s)
			if i < 0 {
				t.Errorf("thread %s: the trail lacks %s after position %d:\n%s", r.ts, s, at, text)
				break
			}
			at += i + len(s)
		}
	}
	if n := len(h.events(audit.ReplyFailed)); n != 0 {
		t.Errorf("reply.failed events = %d, want 0", n)
	}
	if n := h.undeliveredCount(); n != 0 {
		t.Errorf("%d replies handed to OnUndelivered", n)
	}
	if n := len(h.events(audit.ActionSucceeded)); n != len(reqs) {
		t.Errorf("action.succeeded events = %d, want %d", n, len(reqs))
	}
}

func TestE2EDroppedConnectionResumed(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const th1, th2, th3 = "1700000400.000100", "1700000401.000100", "1700000402.000100"
	first := h.mention("env-1", "Ev401", "C1", sre1, "status of checkout in prod", th1, "")
	h.f.WaitAck("env-1")
	h.waitPost("C1", th1, "checkout (prod): 3/3 ready")

	h.f.DropConnection()
	h.f.WaitConnected(2)
	// Slack redelivers an event it did not see acknowledged, with the same
	// event id in a new envelope; then new events arrive.
	h.f.Redeliver("env-1-retry", "events_api", first, 1, "timeout")
	second := h.mention("env-2", "Ev402", "C1", sre1, "status of payments in prod", th2, "")
	h.f.Redeliver("env-2-retry", "events_api", second, 1, "timeout")
	h.mention("env-3", "Ev403", "C1", sre1, "status of auth in prod", th3, "")
	for _, env := range []string{"env-1-retry", "env-2", "env-2-retry", "env-3"} {
		h.f.WaitAck(env)
	}
	h.waitPost("C1", th2, "payments (prod):")
	h.waitPost("C1", th3, "auth (prod):")
	// Run returns only after every handler it started has finished, so a
	// duplicate handling would be visible below.
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	received := map[string]int{}
	for _, e := range h.events(audit.MessageReceived) {
		received[e.Thread]++
	}
	for _, th := range []string{th1, th2, th3} {
		if received[th] != 1 {
			t.Errorf("thread %s: %d message.received events, want 1", th, received[th])
		}
		if posts := h.threadPosts("C1", th); len(posts) != 1 {
			t.Errorf("thread %s: %d replies, want 1:%s", th, len(posts), describe(posts))
		}
	}
	if n := len(h.events(audit.ReplyFailed)); n != 0 {
		t.Errorf("reply.failed events = %d, want 0", n)
	}
}

// TestE2ESlashCommandToConfirmedScale: the newcomer's path on Slack.
// "/parley" alone answers with help only to the asker; "/parley scale …"
// puts the request in a thread under a public anchor, the prompt comes
// there, and "confirm CODE" typed in that thread without a mention runs
// the change once.
func TestE2ESlashCommandToConfirmedScale(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	ctx := context.Background()

	h.f.Envelope("env-help", "slash_commands", chattest.SlackCommand{User: sre1, Channel: "C1", TriggerID: "7.8.help", ResponseURL: h.f.ResponseURL("help")}.JSON())
	h.f.WaitAck("env-help")
	h.waitFor("help on the response_url", func() bool {
		for _, r := range h.f.Responses() {
			if r.Channel == "help" && r.Method == "response_url:ephemeral" && strings.Contains(r.Text+r.Blocks, "kubernetes.scale") {
				return true
			}
		}
		return false
	})
	if posts, _ := h.f.Snapshot(); len(posts) != 0 {
		t.Fatalf("/parley help posted in the channel: %s", describe(posts))
	}

	h.f.Envelope("env-scale", "slash_commands", chattest.SlackCommand{User: sre1, Channel: "C1", Text: "scale checkout to 5 in prod", TriggerID: "7.8.scale", ResponseURL: h.f.ResponseURL("scale")}.JSON())
	h.f.WaitAck("env-scale")
	var anchor chattest.SlackCall
	h.waitFor("the anchor", func() bool {
		for _, p := range h.threadPosts("C1", "") {
			if strings.Contains(p.Text, "asked: /parley scale checkout to 5 in prod") {
				anchor = p
				return true
			}
		}
		return false
	})
	prompt := h.waitPost("C1", anchor.TS, "This changes prod: checkout replicas 3 -> 5.")
	code := regexp.MustCompile(`confirm ([A-Z0-9]{4})`).FindStringSubmatch(shown(prompt))
	if code == nil {
		t.Fatalf("no code in the prompt: %q", shown(prompt))
	}
	// Typed in the thread, no mention, in a channel that is not bound.
	h.f.Envelope("env-confirm", "events_api", chattest.SlackEvent("EvConfirm",
		chattest.SlackMessage("C1", "channel", sre1, "confirm "+code[1], "1700000300.000100", `,"thread_ts":"`+anchor.TS+`","parent_user_id":"`+chattest.SlackBotUserID+`"`)))
	h.f.WaitAck("env-confirm")
	h.waitPost("C1", anchor.TS, "Scaled checkout (prod) 3 -> 5.")
	dep, err := h.p.Sandbox.Client().AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 5 {
		t.Fatalf("checkout (prod) = %v, %v; want 5 replicas", dep.Spec.Replicas, err)
	}
	var received []string
	for _, e := range h.events(audit.MessageReceived) {
		received = append(received, e.Thread+" "+e.Text)
	}
	if !slices.Contains(received, anchor.TS+" scale checkout to 5 in prod") || !slices.Contains(received, anchor.TS+" confirm "+code[1]) {
		t.Errorf("message.received = %q, want the command and the confirmation in the anchor's thread", received)
	}
}
