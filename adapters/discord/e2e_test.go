package discord_test

// End-to-end tests of the Discord adapter with the real pipeline: a whole
// Parley instance from internal/app (sandbox Kubernetes cluster, SQLite
// audit, confirmations and evaluation results in a temporary file, the
// rules router, the project's evals folder, the test policy in
// testdata/e2e-policy.yaml) answers through the adapter, which talks to the
// fake Discord of adapters/chattest on 127.0.0.1. Real Discord cannot be reached
// here; the fake speaks its wire protocol instead: REST under /api/v9 with
// Discord's JSON bodies, error objects and 429s (retry_after and
// X-RateLimit headers), and the gateway WebSocket (HELLO, IDENTIFY, READY,
// sequenced dispatches, heartbeats, RESUME with replay). Every request below
// arrives as a gateway dispatch (MESSAGE_CREATE or INTERACTION_CREATE)
// shaped as https://discord.com/developers/docs documents it, and every
// check reads what Discord was asked to do.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/internal/app"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

// e2eWait bounds every wait for something Discord should be asked to do.
const e2eWait = 30 * time.Second

// The test policy's people and the guild's channels.
const (
	sre1   = "111111111111111111" // group sre
	sre2   = "222222222222222222" // group sre
	mlRole = "333333333333333333" // Discord role of group ml
	mlUser = "444444444444444444" // has mlRole
	eve    = "555555555555555555" // no rights beyond reading

	opsChannel   = chattest.DiscordChannel // a guild text channel
	ops2Channel  = "1130000000000000201"   // another one
	evalsChannel = "1130000000000000210"   // where the ML engineers work
	commandID    = "1130000000000000700"   // the registered /parley command
	timestamp    = "2026-07-01T09:59:58.123000+00:00"
	botTimestamp = "2026-07-01T10:00:00.000000+00:00"
)

// logBuffer collects log output from several goroutines.
type logBuffer = logtest.Buffer

// e2e is one Parley instance serving Discord through the adapter.
type e2e struct {
	t    *testing.T
	f    *chattest.Discord
	rec  *deliveries
	p    *app.Parley
	logs *logBuffer
	hd   *handled

	mu          sync.Mutex
	tokens      []string // interaction tokens issued: secrets too
	undelivered []string // "reply text: error"

	stop func() error
}

type e2eOptions struct {
	trail bool // render audit steps into threads
	// limit answers the nth message creation 429 while it says so.
	limit func(n int) bool
}

// startE2E wires fake Discord -> adapter -> app.Build -> adapter.Run and
// waits until the adapter has started. Cleanup stops Run, closes Parley and
// checks that no token reached the logs or the audit log.
func startE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	f := chattest.NewDiscord(t)
	if o.limit != nil {
		f.SetLimit(func(route string, n int) bool { return route == chattest.RouteCreateMessage && o.limit(n) })
	}
	h := &e2e{t: t, f: f, rec: newDeliveries(t, f.URL()), logs: &logBuffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	a, err := discord.New(discord.Options{
		Token: chattest.DiscordToken, ApplicationID: chattest.DiscordAppID, GuildIDs: []string{chattest.DiscordGuild},
		// REST goes through a recording proxy in front of the fake, so the
		// tests see the messages Discord accepted and their ids.
		APIURL: h.rec.url, GatewayURL: f.GatewayWSURL(),
		Logger: logger, OnUndelivered: h.recordUndelivered,
		CallTimeout: 10 * time.Second, StartTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	discord.OnStarted(a, func() { close(started) })

	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "parley.db")
	cfg.Policy = filepath.Join("testdata", "e2e-policy.yaml")
	cfg.Evals.Dir = filepath.Join("..", "..", "evals")
	cfg.Evals.ReportsDir = t.TempDir()
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
	h.hd = &handled{next: p.Pipeline}
	go func() { done <- a.Run(ctx, h.hd) }()
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
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run ended during start-up: %v", err)
	case <-time.After(e2eWait):
		t.Fatal("the adapter did not start")
	}
	return h
}

// handled passes messages to the pipeline and counts those it has
// finished with. Stopping Run cancels replies still being sent, so a test
// waits for every message to be handled before it stops Run; the count
// also shows how many messages the adapter passed on.
type handled struct {
	next chat.Handler
	mu   sync.Mutex
	n    int
}

func (c *handled) Handle(ctx context.Context, m chat.Message) {
	c.next.Handle(ctx, m)
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *handled) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// settle waits until the pipeline has finished handling n messages, then
// stops Run.
func (h *e2e) settle(n int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d messages handled", n), func() bool { return h.hd.count() >= n })
	if err := h.stop(); err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	if got := h.hd.count(); got != n {
		h.t.Errorf("the adapter passed on %d messages, want %d", got, n)
	}
}

func (h *e2e) recordUndelivered(_ context.Context, r chat.Reply, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.undelivered = append(h.undelivered, fmt.Sprintf("%q: %v", r.Text, err))
}

func (h *e2e) undeliveredReplies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.undelivered)
}

// token issues a new interaction token, as Discord does with each
// interaction; it is a secret like the bot token.
func (h *e2e) token(interactionID string) string {
	tok := "aW50ZXJhY3Rpb246" + interactionID + "OnMzY3IzdC1lMmUtdG9rZW4"
	h.f.IssueToken(tok)
	h.mu.Lock()
	h.tokens = append(h.tokens, tok)
	h.mu.Unlock()
	return tok
}

// checkNoSecrets asserts that neither the bot token nor an interaction
// token appears in the log output or in any audit event. The log must show
// the adapter's start-up, or the check proves nothing.
func (h *e2e) checkNoSecrets() {
	h.t.Helper()
	logs := h.logs.String()
	if !strings.Contains(logs, "msg=connected adapter=discord") {
		h.t.Errorf("the log lacks the adapter's start-up line; is the logger wired?\n%s", logs)
	}
	evs, err := h.p.Audit.List(context.Background(), audit.Filter{})
	if err != nil {
		h.t.Errorf("audit list: %v", err)
	}
	if len(evs) == 0 {
		h.t.Error("the audit log is empty")
	}
	h.mu.Lock()
	secrets := map[string]string{"the bot token": chattest.DiscordToken}
	for i, tok := range h.tokens {
		secrets[fmt.Sprintf("interaction token %d", i+1)] = tok
	}
	h.mu.Unlock()
	for name, secret := range secrets {
		if strings.Contains(logs, secret) {
			h.t.Errorf("%s appears in the log output", name)
		}
		for _, e := range evs {
			if strings.Contains(fmt.Sprintf("%+v", e), secret) {
				h.t.Errorf("%s appears in audit event #%d", name, e.Seq)
			}
		}
	}
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
			h.t.Fatalf("timed out waiting for %s\nDiscord accepted:%s", what, describe(h.rec.all()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPost waits until a message showing want is posted in channel (a
// thread's id for a thread).
func (h *e2e) waitPost(channel, want string) delivered {
	h.t.Helper()
	var found delivered
	h.waitFor(fmt.Sprintf("a post showing %q in %s", want, channel), func() bool {
		for _, d := range h.rec.posts(channel) {
			if strings.Contains(d.shown(), want) {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// waitWebhook waits until a message sent or edited with the interaction
// token shows want.
func (h *e2e) waitWebhook(token, want string) delivered {
	h.t.Helper()
	var found delivered
	h.waitFor(fmt.Sprintf("an interaction message showing %q", want), func() bool {
		for _, d := range h.rec.webhook(token) {
			if strings.Contains(d.shown(), want) {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// waitCallback waits for the interaction response and returns its type.
func (h *e2e) waitCallback(interactionID string) int {
	h.t.Helper()
	h.waitFor("the response to interaction "+interactionID, func() bool { return h.f.CallbackType(interactionID) != 0 })
	return h.f.CallbackType(interactionID)
}

// --- what Discord accepted ----------------------------------------------------

// deliveries is a reverse proxy in front of the fake's REST API that keeps
// every message Discord accepted (created or edited, in a channel or
// through an interaction's webhook) with the id Discord gave it. Refused
// calls (429s) are not kept.
type deliveries struct {
	url string

	mu   sync.Mutex
	msgs []delivered
}

// delivered is one message Discord accepted.
type delivered struct {
	Kind    string // "post", "edit", "followup" or "webhook-edit"
	Channel string // post, edit: the channel or thread
	Token   string // followup, webhook-edit: the interaction token (never printed)
	Target  string // edit, webhook-edit: the message edited ("@original" or an id)
	ID      string // the message's id
	Msg     message
	Raw     map[string]any
}

// message is the part of Discord's message object the tests read.
type message struct {
	Content string `json:"content"`
	Embeds  []struct {
		Description string `json:"description"`
		Fields      []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"fields"`
		Footer *struct {
			Text string `json:"text"`
		} `json:"footer"`
	} `json:"embeds"`
	Components *[]struct {
		Type       int `json:"type"`
		Components []struct {
			Type     int    `json:"type"`
			Style    int    `json:"style"`
			Label    string `json:"label"`
			CustomID string `json:"custom_id"`
		} `json:"components"`
	} `json:"components"`
}

var (
	channelPostRE = regexp.MustCompile(`^/api/v9/channels/(\d+)/messages$`)
	channelEditRE = regexp.MustCompile(`^/api/v9/channels/(\d+)/messages/(\d+)$`)
	followupRE    = regexp.MustCompile(`^/api/v9/webhooks/\d+/([^/]+)$`)
	webhookEditRE = regexp.MustCompile(`^/api/v9/webhooks/\d+/([^/]+)/messages/([^/]+)$`)
)

func newDeliveries(t *testing.T, target string) *deliveries {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	d := &deliveries{}
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:        func(r *httputil.ProxyRequest) { r.SetURL(u) },
		ModifyResponse: d.keep,
		ErrorLog:       log.New(io.Discard, "", 0),
	})
	t.Cleanup(srv.Close)
	d.url = srv.URL
	return d
}

func (d *deliveries) keep(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	req := resp.Request
	var m delivered
	path := req.URL.Path
	switch {
	case req.Method == http.MethodPost && channelPostRE.MatchString(path):
		m.Kind, m.Channel = "post", channelPostRE.FindStringSubmatch(path)[1]
	case req.Method == http.MethodPatch && channelEditRE.MatchString(path):
		s := channelEditRE.FindStringSubmatch(path)
		m.Kind, m.Channel, m.Target = "edit", s[1], s[2]
	case req.Method == http.MethodPost && followupRE.MatchString(path):
		m.Kind, m.Token = "followup", followupRE.FindStringSubmatch(path)[1]
	case req.Method == http.MethodPatch && webhookEditRE.MatchString(path):
		s := webhookEditRE.FindStringSubmatch(path)
		m.Kind, m.Token, m.Target = "webhook-edit", s[1], s[2]
	default:
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := json.Unmarshal(body, &m.Msg); err != nil {
		return err
	}
	if err := json.Unmarshal(body, &m.Raw); err != nil {
		return err
	}
	m.ID, _ = m.Raw["id"].(string)
	d.mu.Lock()
	d.msgs = append(d.msgs, m)
	d.mu.Unlock()
	return nil
}

func (d *deliveries) all() []delivered {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.msgs)
}

// posts returns the messages created in a channel or thread, in order.
func (d *deliveries) posts(channel string) []delivered {
	var out []delivered
	for _, m := range d.all() {
		if m.Kind == "post" && m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// webhook returns the messages sent or edited with an interaction token.
func (d *deliveries) webhook(token string) []delivered {
	var out []delivered
	for _, m := range d.all() {
		if m.Token == token {
			out = append(out, m)
		}
	}
	return out
}

// shown is the text a person sees: the content, then each embed's
// description, fields and footer.
func (d delivered) shown() string {
	parts := []string{d.Msg.Content}
	for _, e := range d.Msg.Embeds {
		parts = append(parts, e.Description)
		for _, f := range e.Fields {
			parts = append(parts, f.Name+": "+f.Value)
		}
		if e.Footer != nil {
			parts = append(parts, e.Footer.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// buttons returns the message's buttons as "label=custom_id", and whether
// the message set its components at all.
func (d delivered) buttons() (out []string, set bool) {
	if d.Msg.Components == nil {
		return nil, false
	}
	for _, row := range *d.Msg.Components {
		for _, c := range row.Components {
			out = append(out, c.Label+"="+c.CustomID)
		}
	}
	return out, true
}

func describe(ms []delivered) string {
	var b strings.Builder
	for _, m := range ms {
		where := m.Channel
		if m.Token != "" {
			where = "interaction webhook" // the token is a secret
		}
		fmt.Fprintf(&b, "\n  %s %s id=%s target=%s: %q", m.Kind, where, m.ID, m.Target, m.shown())
	}
	return b.String()
}

// --- gateway payloads, shaped as Discord sends them -------------------------

func user(id, name string) map[string]any {
	return map[string]any{"id": id, "username": name, "global_name": strings.ToUpper(name[:1]) + name[1:],
		"discriminator": "0", "avatar": nil, "public_flags": 0}
}

func botUser() map[string]any {
	u := user(chattest.DiscordBotID, "parley")
	u["bot"] = true
	return u
}

// guildMember is a guild member object; withUser adds the user, as in
// interactions (MESSAGE_CREATE carries the user as the author instead).
func guildMember(id, name string, withUser bool, roles ...string) map[string]any {
	m := map[string]any{"roles": append([]string{}, roles...), "nick": nil, "avatar": nil,
		"joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0, "pending": false}
	if withUser {
		m["user"] = user(id, name)
		m["permissions"] = "2248473465835073"
	}
	return m
}

// mention is the MESSAGE_CREATE of "<@bot> text" by author in a guild
// channel (https://discord.com/developers/docs/topics/gateway-events#message-create).
func mention(id, channel, author, name, text string, roles ...string) map[string]any {
	return map[string]any{
		"id": id, "channel_id": channel, "guild_id": chattest.DiscordGuild,
		"author": user(author, name), "member": guildMember(author, name, false, roles...),
		"content": "<@" + chattest.DiscordBotID + "> " + text, "timestamp": timestamp, "edited_timestamp": nil,
		"tts": false, "mention_everyone": false, "mentions": []any{botUser()}, "mention_roles": []any{},
		"attachments": []any{}, "embeds": []any{}, "pinned": false, "type": 0, "flags": 0, "nonce": id,
	}
}

// interaction is an INTERACTION_CREATE of the given type by a guild member
// (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object).
func interaction(id, token string, typ int, channel map[string]any, userID, name string, roles []string, data map[string]any) map[string]any {
	return map[string]any{
		"id": id, "application_id": chattest.DiscordAppID, "type": typ, "token": token, "version": 1,
		"guild_id": chattest.DiscordGuild, "channel_id": channel["id"], "channel": channel,
		"member": guildMember(userID, name, true, roles...), "locale": "en-US", "guild_locale": "en-US",
		"app_permissions": "2248473465835073", "entitlements": []any{}, "authorizing_integration_owners": map[string]any{"0": chattest.DiscordGuild},
		"context": 0, "data": data,
	}
}

func textChannel(id string) map[string]any {
	return map[string]any{"id": id, "type": 0, "guild_id": chattest.DiscordGuild, "name": "ops", "parent_id": nil}
}

func threadChannel(id, parent string) map[string]any {
	return map[string]any{"id": id, "type": 11, "guild_id": chattest.DiscordGuild, "name": "Parley", "parent_id": parent}
}

// slash is the APPLICATION_COMMAND interaction for /parley eval <sub>
// with the given string options.
func slash(id, token, channel, userID, name string, roles []string, sub string, opts ...[2]string) map[string]any {
	var leaf []any
	for _, o := range opts {
		leaf = append(leaf, map[string]any{"name": o[0], "type": 3, "value": o[1]})
	}
	sc := map[string]any{"name": sub, "type": 1}
	if len(leaf) > 0 {
		sc["options"] = leaf
	}
	data := map[string]any{
		"id": commandID, "name": "parley", "type": 1, "guild_id": chattest.DiscordGuild,
		"options": []any{map[string]any{"name": "eval", "type": 2, "options": []any{sc}}},
	}
	return interaction(id, token, 2, textChannel(channel), userID, name, roles, data)
}

// click is the MESSAGE_COMPONENT interaction for a click on a button of the
// bot's message m, which lives in channel.
func click(id, token string, channel map[string]any, userID, name string, roles []string, m delivered, customID string) map[string]any {
	msg := map[string]any{}
	for k, v := range m.Raw {
		msg[k] = v
	}
	msg["id"], msg["channel_id"], msg["author"], msg["timestamp"] = m.ID, channel["id"], botUser(), botTimestamp
	data := map[string]any{"custom_id": customID, "component_type": 2}
	ix := interaction(id, token, 3, channel, userID, name, roles, data)
	ix["message"] = msg
	return ix
}

// --- the tests ------------------------------------------------------------------

func TestE2EStatusRepliedInThread(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const req = "1200000000000000101"
	h.f.Dispatch("MESSAGE_CREATE", mention(req, opsChannel, eve, "eve", "status of checkout in prod"))
	// A thread started from the request takes its id.
	p := h.waitPost(req, "checkout (prod): 3/3 ready")
	h.settle(1)
	if b, _ := p.buttons(); len(b) != 0 {
		t.Errorf("a read reply has buttons: %v", b)
	}
	starts := h.f.Requests(chattest.RouteStartThread)
	if len(starts) != 1 || starts[0].Path != "/api/v9/channels/"+opsChannel+"/messages/"+req+"/threads" {
		t.Errorf("thread starts: %+v, want one from the request", starts)
	}
	if n := len(h.events(audit.ActionSucceeded)); n != 1 {
		t.Errorf("action.succeeded events = %d, want 1", n)
	}
}

func TestE2EScaleConfirmedByButtonRunsOnce(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	ctx := context.Background()
	const req, click1, click2 = "1200000000000000201", "1200000000000000202", "1200000000000000203"
	h.f.Dispatch("MESSAGE_CREATE", mention(req, opsChannel, sre1, "sam", "scale checkout to 5 in prod"))

	prompt := h.waitPost(req, "This changes prod: checkout replicas 3 -> 5.")
	h.waitShown("discord:" + opsChannel)
	pending, err := h.p.Confirmations.PendingIn(ctx, "discord:"+opsChannel)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending confirmations = %+v, %v; want 1", pending, err)
	}
	id := pending[0].ID
	btns, _ := prompt.buttons()
	if want := []string{"Confirm=parley:confirm:" + id, "Cancel=parley:cancel:" + id}; !slices.Equal(btns, want) {
		t.Fatalf("prompt buttons = %q, want %q (the custom_id carries only the confirmation id)", btns, want)
	}
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Fatalf("%d action.started before the click", n)
	}

	// The requester clicks Confirm on the prompt, in the request's thread.
	tok1 := h.token(click1)
	h.f.Dispatch("INTERACTION_CREATE", click(click1, tok1, threadChannel(req, opsChannel), sre1, "sam", nil, prompt, "parley:confirm:"+id))
	if typ := h.waitCallback(click1); typ != 6 {
		t.Errorf("click acknowledged with type %d, want DEFERRED_UPDATE_MESSAGE (6)", typ)
	}
	h.waitPost(req, "Scaled checkout (prod) 3 -> 5.")
	// For a button click, the interaction's @original is the message the
	// button is on: editing it through the click's token edits the prompt.
	// (The fake answers such an edit with an id of its own, so the id is
	// not compared.)
	settled := h.waitWebhook(tok1, "Scaled checkout (prod) 3 -> 5.")
	if settled.Kind != "webhook-edit" || settled.Target != "@original" {
		t.Errorf("the prompt was not edited in place: %s", describe([]delivered{settled}))
	}
	if b, set := settled.buttons(); !set || len(b) != 0 {
		t.Errorf("the settled prompt keeps its buttons: %v (components set: %v)", b, set)
	}
	if !strings.Contains(settled.shown(), "confirm clicked by discord:"+sre1) {
		t.Errorf("the settled prompt does not say who clicked: %q", settled.shown())
	}
	// The acknowledgement came before anything the click caused.
	reqs := h.f.Requests()
	ack, firstEffect := -1, -1
	for i, r := range reqs {
		if r.Route == chattest.RouteCallback && strings.Contains(r.Path, "/"+click1+"/") && ack < 0 {
			ack = i
		}
		if (r.Route == chattest.RouteCreateMessage || r.Route == chattest.RouteWebhookEdit) && strings.Contains(string(r.Body), "Scaled checkout") && firstEffect < 0 {
			firstEffect = i
		}
	}
	if ack < 0 || ack > firstEffect {
		t.Errorf("the click's acknowledgement (request %d) did not come first (first reply: request %d)", ack, firstEffect)
	}

	dep, err := h.p.Sandbox.Client().AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 5 {
		t.Errorf("checkout (prod) replicas = %v, want 5", dep.Spec.Replicas)
	}

	// A second click on the same button (a new interaction, as Discord
	// sends one per click) is refused and runs nothing.
	tok2 := h.token(click2)
	h.f.Dispatch("INTERACTION_CREATE", click(click2, tok2, threadChannel(req, opsChannel), sre1, "sam", nil, prompt, "parley:confirm:"+id))
	if typ := h.waitCallback(click2); typ != 6 {
		t.Errorf("second click acknowledged with type %d, want 6", typ)
	}
	h.waitPost(req, "runs at most once")
	h.settle(3) // the request and two clicks

	var scales int
	for _, e := range h.events(audit.ActionSucceeded) {
		if e.Action == "kubernetes.scale" {
			scales++
			if e.ConfirmationID != id || e.Subject != "discord:"+sre1 {
				t.Errorf("scale event = %+v, want confirmation %s by discord:%s", e, id, sre1)
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
	for _, p := range h.rec.posts(req) {
		if strings.Contains(p.shown(), "Scaled checkout") {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("%d \"Scaled\" replies in the thread, want 1", ran)
	}
	// The refused click left the settled prompt alone.
	if n := len(h.rec.webhook(tok2)); n != 0 {
		t.Errorf("the second click edited the prompt %d times:%s", n, describe(h.rec.webhook(tok2)))
	}
}

func TestE2EUserWithoutRightsRefused(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const req = "1200000000000000301"
	h.f.Dispatch("MESSAGE_CREATE", mention(req, opsChannel, eve, "eve", "scale checkout to 5 in prod"))
	refusal := h.waitPost(req, "You (discord:"+eve+") may not run kubernetes.scale")
	h.settle(1)

	var denied int
	for _, e := range h.events(audit.PolicyDecided) {
		if e.Subject == "discord:"+eve && e.Action == "kubernetes.scale" && e.Decision == "deny" {
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("policy.decided deny events for discord:%s = %d, want 1", eve, denied)
	}
	posts := h.rec.posts(req)
	if len(posts) != 1 || posts[0].ID != refusal.ID {
		t.Errorf("thread posts:%s; want only the refusal", describe(posts))
	}
	if b, _ := refusal.buttons(); len(b) != 0 {
		t.Errorf("the refusal has buttons: %v", b)
	}
	pending, err := h.p.Confirmations.PendingIn(context.Background(), "discord:"+opsChannel)
	if err != nil || len(pending) != 0 {
		t.Errorf("pending confirmations = %+v, %v; want none", pending, err)
	}
	if n := len(h.events(audit.ConfirmationRequested)); n != 0 {
		t.Errorf("confirmation.requested events = %d, want 0", n)
	}
	if n := len(h.events(audit.ActionStarted)); n != 0 {
		t.Errorf("action.started events = %d, want 0", n)
	}
}

// routingScore is the headline of the intent-routing suite's result:
// "baseline: routing 97.4%; gates passed".
var routingScore = regexp.MustCompile(`routing \d+(\.\d+)?%; gates passed`)

func TestE2EEvaluationFromSlashCommand(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	ctx := context.Background()
	roles := []string{mlRole}
	const cmd, confirmClick, statusCmd, question = "1200000000000000401", "1200000000000000402", "1200000000000000403", "1200000000000000404"

	// "/parley eval run suite:intent-routing" from an ML engineer.
	tok := h.token(cmd)
	h.f.Dispatch("INTERACTION_CREATE", slash(cmd, tok, evalsChannel, mlUser, "maya", roles, "run", [2]string{"suite", "intent-routing"}))
	prompt := h.waitWebhook(tok, "This will")
	if typ := h.f.CallbackType(cmd); typ != 5 {
		t.Errorf("slash command acknowledged with type %d, want DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE (5)", typ)
	}
	reqs := h.f.Requests(chattest.RouteCallback, chattest.RouteWebhookEdit, chattest.RouteFollowup)
	if len(reqs) == 0 || reqs[0].Route != chattest.RouteCallback {
		t.Errorf("the deferred response was not sent first: %d interaction requests", len(reqs))
	}
	// "Parley is thinking…" was private; the prompt is for everyone: a
	// follow-up, after the private deferred response became a short note.
	if flags, ok := h.f.DeferredFlags(tok); !ok || flags != 64 {
		t.Errorf("deferred response flags = %d (%v), want ephemeral (64)", flags, ok)
	}
	if prompt.Kind != "followup" || h.f.FollowupEditedOriginal(tok) {
		t.Errorf("the prompt should be a public follow-up: %s", describe([]delivered{prompt}))
	}
	if note := h.waitWebhook(tok, "Answered in the channel"); note.Kind != "webhook-edit" || note.Target != "@original" {
		t.Errorf("the deferred response was not turned into a note: %s", describe([]delivered{note}))
	}
	h.waitShown("discord:" + evalsChannel)
	pending, err := h.p.Confirmations.PendingIn(ctx, "discord:"+evalsChannel)
	if err != nil || len(pending) != 1 || pending[0].Action != "evaluation.run" || pending[0].Params.String("suite") != "intent-routing" {
		t.Fatalf("pending confirmations = %+v, %v; want one evaluation.run of intent-routing", pending, err)
	}
	id := pending[0].ID
	btns, _ := prompt.buttons()
	if want := []string{"Confirm=parley:confirm:" + id, "Cancel=parley:cancel:" + id}; !slices.Equal(btns, want) {
		t.Fatalf("prompt buttons = %q, want %q", btns, want)
	}
	var routed []string
	for _, e := range h.events(audit.MessageReceived) {
		routed = append(routed, e.Text)
	}
	if !slices.Equal(routed, []string{"eval run intent-routing"}) {
		t.Errorf("message.received texts = %q, want the slash command as \"eval run intent-routing\"", routed)
	}

	// Confirm: the evaluation runs (the router target needs no model).
	clickTok := h.token(confirmClick)
	h.f.Dispatch("INTERACTION_CREATE", click(confirmClick, clickTok, textChannel(evalsChannel), mlUser, "maya", roles, prompt, "parley:confirm:"+id))
	if typ := h.waitCallback(confirmClick); typ != 6 {
		t.Errorf("click acknowledged with type %d, want 6", typ)
	}
	// The result arrives through the slash command's token: as the answer
	// (a follow-up) or, when the run outlasts the request, in the progress
	// message (an edit).
	result := h.waitWebhook(tok, "gates passed")
	if !routingScore.MatchString(result.shown()) {
		t.Errorf("the result does not show the routing score: %q", result.shown())
	}
	if result.Kind != "followup" && result.Kind != "webhook-edit" {
		t.Errorf("result delivered as %s", result.Kind)
	}
	settled := h.waitWebhook(clickTok, "confirm clicked by discord:"+mlUser)
	if b, set := settled.buttons(); !set || len(b) != 0 || settled.Kind != "webhook-edit" || settled.Target != "@original" {
		t.Errorf("the prompt was not settled in place without buttons: %s", describe([]delivered{settled}))
	}
	var runs []audit.Event
	for _, e := range h.events(audit.ActionSucceeded) {
		if e.Action == "evaluation.run" {
			runs = append(runs, e)
		}
	}
	if len(runs) != 1 || runs[0].Subject != "discord:"+mlUser || runs[0].ConfirmationID != id {
		t.Fatalf("evaluation.run action.succeeded events = %+v, want one by discord:%s", runs, mlUser)
	}
	runNo := regexp.MustCompile(`Eval run (\d+) `).FindStringSubmatch(result.shown())
	if runNo == nil {
		t.Fatalf("the result names no run: %q", result.shown())
	}

	// "/parley eval status" answers from the stored result.
	statusTok := h.token(statusCmd)
	h.f.Dispatch("INTERACTION_CREATE", slash(statusCmd, statusTok, evalsChannel, mlUser, "maya", roles, "status"))
	status := h.waitWebhook(statusTok, "gates passed")
	if typ := h.f.CallbackType(statusCmd); typ != 5 {
		t.Errorf("status command acknowledged with type %d, want 5", typ)
	}
	if !strings.Contains(status.shown(), "Eval run "+runNo[1]+" (intent-routing") || !routingScore.MatchString(status.shown()) {
		t.Errorf("eval status = %q, want run %s with its routing score", status.shown(), runNo[1])
	}

	// So does a question in plain words, from someone who may only read.
	h.f.Dispatch("MESSAGE_CREATE", mention(question, evalsChannel, eve, "eve", "how did the last eval go?"))
	answer := h.waitPost(question, "gates passed")
	if !strings.Contains(answer.shown(), "Eval run "+runNo[1]+" (intent-routing") {
		t.Errorf("answer to the question = %q, want run %s", answer.shown(), runNo[1])
	}
	h.settle(4) // two commands, a click, a question
	if n := len(h.events(audit.ActionStarted)); n != 3 {
		t.Errorf("action.started events = %d, want 3 (the run, two status reads)", n)
	}
}

func TestE2ERateLimitStormAbsorbed(t *testing.T) {
	// Two of every three message creations among the first 18 are answered
	// 429 (Discord's JSON body with retry_after, and X-RateLimit headers),
	// whichever thread they belong to. The audit trail is on, so each
	// request posts several messages in its thread and their order shows.
	var mu sync.Mutex
	refused := map[int]bool{}
	h := startE2E(t, e2eOptions{trail: true, limit: func(n int) bool {
		if n <= 18 && n%3 != 0 {
			mu.Lock()
			refused[n] = true
			mu.Unlock()
			return true
		}
		return false
	}})
	type req struct{ id, channel, text, want string }
	reqs := []req{
		{"1200000000000000501", opsChannel, "status of checkout in prod", "checkout (prod): 3/3 ready"},
		{"1200000000000000502", opsChannel, "status of auth in prod", "auth (prod):"},
		{"1200000000000000503", ops2Channel, "status of cart in staging", "cart (staging):"},
		{"1200000000000000504", ops2Channel, "status of search in prod", "search (prod):"},
	}
	for _, r := range reqs {
		h.f.Dispatch("MESSAGE_CREATE", mention(r.id, r.channel, sre2, "sasha", r.text))
	}
	for _, r := range reqs {
		h.waitPost(r.id, r.want)
	}
	h.settle(len(reqs))

	mu.Lock()
	storm := len(refused)
	mu.Unlock()
	if storm != 12 || h.f.Limited() != storm {
		t.Errorf("429s served = %d (planned %d), want 12: the storm did not happen as planned", h.f.Limited(), storm)
	}
	var posts int
	for _, m := range h.rec.all() {
		if m.Kind == "post" {
			posts++
		}
	}
	if got := len(h.f.Requests(chattest.RouteCreateMessage)); got != posts+storm {
		t.Errorf("message creations = %d, want %d delivered + %d refused", got, posts, storm)
	}
	steps := []string{"message.received", "intent.routed", "policy.decided", "action.started", "action.succeeded"}
	for _, r := range reqs {
		// In order, each exactly once: the trail's steps, then the answer.
		thread := h.rec.posts(r.id)
		if len(thread) != len(steps)+1 {
			t.Errorf("thread %s: %d posts, want %d:%s", r.id, len(thread), len(steps)+1, describe(thread))
			continue
		}
		for i, s := range steps {
			if !strings.Contains(thread[i].shown(), s) {
				t.Errorf("thread %s post %d = %q, want the %s step", r.id, i, thread[i].shown(), s)
			}
		}
		if last := thread[len(steps)].shown(); !strings.Contains(last, r.want) {
			t.Errorf("thread %s: last post %q, want the answer %q", r.id, last, r.want)
		}
	}
	if n := len(h.events(audit.ReplyFailed)); n != 0 {
		t.Errorf("reply.failed events = %d, want 0", n)
	}
	if u := h.undeliveredReplies(); len(u) != 0 {
		t.Errorf("replies handed to OnUndelivered: %q", u)
	}
	if n := len(h.events(audit.ActionSucceeded)); n != len(reqs) {
		t.Errorf("action.succeeded events = %d, want %d", n, len(reqs))
	}
}

func TestE2EDroppedConnectionResumed(t *testing.T) {
	h := startE2E(t, e2eOptions{})
	const first, second, third = "1200000000000000601", "1200000000000000602", "1200000000000000603"
	h.f.Dispatch("MESSAGE_CREATE", mention(first, opsChannel, eve, "eve", "status of checkout in prod"))
	h.waitPost(first, "checkout (prod): 3/3 ready")

	// The connection drops; Discord resumes the session and, delivering at
	// least once, sends the last event again.
	h.f.SetReplay(true)
	h.f.Drop()
	h.waitFor("the session resumed", func() bool {
		_, _, ready := h.f.Sessions()
		return slices.Contains(ready, "RESUMED")
	})
	h.f.Dispatch("MESSAGE_CREATE", mention(second, opsChannel, eve, "eve", "status of payments in prod"))
	// The same event once more (same message id), as a redelivery.
	h.f.Dispatch("MESSAGE_CREATE", mention(second, opsChannel, eve, "eve", "status of payments in prod"))
	h.f.Dispatch("MESSAGE_CREATE", mention(third, opsChannel, eve, "eve", "status of auth in prod"))
	h.waitPost(second, "payments (prod):")
	h.waitPost(third, "auth (prod):")
	// Three messages, each passed on once: the replay and the redelivery
	// were dropped by the adapter (settle checks the count after Run has
	// returned, so a late duplicate would show).
	h.settle(3)

	identifies, resumes, _ := h.f.Sessions()
	if identifies != 1 || resumes != 1 {
		t.Errorf("identifies %d, resumes %d; want the session resumed, not re-identified", identifies, resumes)
	}
	// The replay and the redelivery did reach the adapter.
	logs := h.logs.String()
	for _, id := range []string{first, second} {
		if !strings.Contains(logs, "msg=\"dropping repeated message\" adapter=discord message="+id) {
			t.Errorf("message %s was not delivered twice, or not recognised as repeated", id)
		}
	}
	received := map[string]int{}
	for _, e := range h.events(audit.MessageReceived) {
		received[e.Thread]++
	}
	for _, th := range []string{first, second, third} {
		if received[th] != 1 {
			t.Errorf("thread %s: %d message.received events, want 1", th, received[th])
		}
		if posts := h.rec.posts(th); len(posts) != 1 {
			t.Errorf("thread %s: %d replies, want 1:%s", th, len(posts), describe(posts))
		}
	}
	if n := len(h.events(audit.ReplyFailed)); n != 0 {
		t.Errorf("reply.failed events = %d, want 0", n)
	}
}
