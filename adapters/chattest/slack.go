package chattest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// The fake Slack is slack-go's slacktest server (an httptest server on
// 127.0.0.1) with the Web API methods Parley uses answered the way Slack
// documents them (form-encoded requests, {"ok":...} JSON answers, 429 with
// Retry-After, the X-OAuth-Scopes header on auth.test) and its /ws route
// replaced by the Socket Mode protocol: apps.connections.open returns a
// ws:// URL; the server sends {"type":"hello"}, then envelopes
// {"envelope_id","type","payload","accepts_response_payload"}, pings every
// 50ms (Slack pings; socketmode reconnects without them), and records the
// {"envelope_id"} acks. Slash commands' response_url points at /response/.

// Slack fixtures. The tokens are spelled in parts so no token-shaped
// literal is in the source.
const (
	SlackBotToken = "xoxb-" + "fake-test-SECRETBOTTOKEN"
	SlackAppToken = "xapp-" + "fake-test-SECRETAPPTOKEN"
	// SlackWrongBotToken is well formed but not the one the fake accepts;
	// SlackUserToken is a user token where a bot token is required.
	SlackWrongBotToken = "xoxb-" + "fake-not-the-right-one"
	SlackUserToken     = "xoxp-" + "fake-user-token"
	SlackSigningSecret = "8f742231b10e8888" + "abcd99yyyzzz85a5"
	SlackBotUserID     = "UBOT0001"
	SlackBotID         = "BBOT0001"
	// SlackScopes is what auth.test reports by default: every scope Parley
	// asks for in its manifest.
	SlackScopes = "app_mentions:read,channels:history,chat:write,commands,files:write,groups:history,im:history,mpim:history,usergroups:read,users:read"
)

// SlackCall is one Web API call the fake answered.
type SlackCall struct {
	Method  string
	Channel string
	TS      string // chat.update's ts, or the ts a post was given
	Thread  string
	User    string // chat.postEphemeral's recipient
	Text    string
	Blocks  string
	// Metadata is a post's message metadata as sent (JSON:
	// {"event_type","event_payload"}); conversations.history returns it.
	Metadata string
}

// Slack is the fake Slack.
type Slack struct {
	t   testing.TB
	srv *slacktest.Server

	mu          sync.Mutex
	changed     chan struct{}
	scopes      string
	appTokenOK  bool
	fail        func(method string, n int) (status int, retryAfter string, slackErr string)
	calls       map[string]int // method -> count of calls seen
	posts       []SlackCall    // successful chat.postMessage
	updates     []SlackCall    // successful chat.update
	ephemerals  []SlackCall    // successful chat.postEphemeral
	responses   []SlackCall    // posts to a slash command's response_url
	uploads     [][]byte
	completes   []SlackCall
	nextTS      int
	groups      string
	conns       []*wsConn
	connected   chan struct{}
	acks        chan string
	wsWriteLock sync.Mutex
}

type wsConn struct {
	c    *websocket.Conn
	done chan struct{}
}

// NewSlack starts a fake Slack on 127.0.0.1 until the test ends.
func NewSlack(t testing.TB) *Slack {
	t.Helper()
	f := &Slack{
		t: t, scopes: SlackScopes, appTokenOK: true, changed: make(chan struct{}),
		calls: map[string]int{}, connected: make(chan struct{}, 16), acks: make(chan string, 256),
		groups: `[{"id":"S0SRE","team_id":"T1","is_usergroup":true,"name":"SRE","handle":"sre","users":["U1","U2"]},
		          {"id":"S0ML","team_id":"T1","is_usergroup":true,"name":"ML","handle":"ml","users":["U2"]}]`,
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", f.authTest)
		c.Handle("/apps.connections.open", f.connectionsOpen)
		c.Handle("/ws", f.socket)
		c.Handle("/chat.postMessage", f.chat("chat.postMessage"))
		c.Handle("/chat.update", f.chat("chat.update"))
		c.Handle("/chat.postEphemeral", f.chat("chat.postEphemeral"))
		c.Handle("/conversations.history", f.history)
		c.Handle("/usergroups.list", f.usergroups)
		c.Handle("/files.getUploadURLExternal", f.getUploadURL)
		c.Handle("/upload/", f.upload)
		c.Handle("/files.completeUploadExternal", f.completeUpload)
		c.Handle("/response/", f.response)
	})
	f.srv.Start()
	t.Cleanup(func() {
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.c.Close()
		}
		f.mu.Unlock()
		f.srv.Stop()
	})
	return f
}

// URL is the Web API base URL (the adapter's APIURL option).
func (f *Slack) URL() string { return f.srv.GetAPIURL() }

// ResponseURL is a slash command's response_url on the fake.
func (f *Slack) ResponseURL(id string) string { return f.URL() + "response/" + id }

func writeSlackJSON(w http.ResponseWriter, v string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, v)
}

func (f *Slack) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// SetScopes sets the X-OAuth-Scopes auth.test reports.
func (f *Slack) SetScopes(scopes string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = scopes
}

// SetAppTokenOK makes apps.connections.open accept the app-level token or
// refuse it (not_allowed_token_type).
func (f *Slack) SetAppTokenOK(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appTokenOK = ok
}

// SetGroups sets the usergroups.list answer (a JSON array).
func (f *Slack) SetGroups(groups string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups = groups
}

// SetFail makes the fake fail calls: for the nth call of method, a status
// (429 with retryAfter, or another HTTP status), or a Slack error code.
func (f *Slack) SetFail(fail func(method string, n int) (status int, retryAfter, slackErr string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// Calls is how many calls of method the fake has seen, failed ones included.
func (f *Slack) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// failed applies the configured failure for the nth call of method.
func (f *Slack) failed(w http.ResponseWriter, method string) bool {
	f.mu.Lock()
	f.calls[method]++
	n := f.calls[method]
	fail := f.fail
	f.notifyLocked()
	f.mu.Unlock()
	if fail == nil {
		return false
	}
	status, retryAfter, slackErr := fail(method, n)
	switch {
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(status)
		return true
	case status != 0:
		http.Error(w, "upstream trouble", status)
		return true
	case slackErr != "":
		writeSlackJSON(w, fmt.Sprintf(`{"ok":false,"error":%q}`, slackErr))
		return true
	}
	return false
}

func (f *Slack) botTokenOK(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	token := r.PostForm.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token != SlackBotToken {
		writeSlackJSON(w, `{"ok":false,"error":"invalid_auth"}`)
		return false
	}
	return true
}

func (f *Slack) authTest(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "auth.test") {
		return
	}
	f.mu.Lock()
	scopes := f.scopes
	f.mu.Unlock()
	if scopes != "" {
		w.Header().Set("X-OAuth-Scopes", scopes)
	}
	writeSlackJSON(w, fmt.Sprintf(`{"ok":true,"url":"https://parley.slack.com/","team":"Parley","user":"parley","team_id":"T1","user_id":%q,"bot_id":%q}`, SlackBotUserID, SlackBotID))
}

func (f *Slack) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ok := f.appTokenOK
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+SlackAppToken || !ok {
		writeSlackJSON(w, `{"ok":false,"error":"not_allowed_token_type"}`)
		return
	}
	writeSlackJSON(w, fmt.Sprintf(`{"ok":true,"url":%q}`, f.srv.GetWSURL()))
}

func (f *Slack) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := &wsConn{c: c, done: make(chan struct{})}
	defer close(conn.done)
	defer func() { _ = c.Close() }()
	f.wsWriteLock.Lock()
	err = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1,"debug_info":{"host":"fake"},"connection_info":{"app_id":"A111"}}`))
	f.wsWriteLock.Unlock()
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, conn)
	f.mu.Unlock()
	f.connected <- struct{}{}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-conn.done:
				return
			case <-t.C:
				if c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) == nil && ack.EnvelopeID != "" {
			f.acks <- ack.EnvelopeID
		}
	}
}

// WaitConnected waits for the nth Socket Mode connection (1-based).
func (f *Slack) WaitConnected(n int) {
	f.t.Helper()
	deadline := time.After(Wait)
	for {
		f.mu.Lock()
		have := len(f.conns)
		f.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-f.connected:
		case <-deadline:
			f.t.Fatalf("no WebSocket connection #%d", n)
		}
	}
}

// Envelope sends a Socket Mode envelope on the latest connection.
func (f *Slack) Envelope(envelopeID, typ, payload string) {
	f.t.Helper()
	f.write(fmt.Sprintf(`{"envelope_id":%q,"type":%q,"payload":%s,"accepts_response_payload":false}`, envelopeID, typ, payload))
}

// Redeliver sends an envelope the way Slack retries one it saw no ack
// for: a new envelope id, the same payload, retry_attempt and retry_reason
// set.
func (f *Slack) Redeliver(envelopeID, typ, payload string, attempt int, reason string) {
	f.t.Helper()
	f.write(fmt.Sprintf(`{"envelope_id":%q,"type":%q,"payload":%s,"accepts_response_payload":false,"retry_attempt":%d,"retry_reason":%q}`,
		envelopeID, typ, payload, attempt, reason))
}

func (f *Slack) write(msg string) {
	f.t.Helper()
	f.mu.Lock()
	if len(f.conns) == 0 {
		f.mu.Unlock()
		f.t.Fatal("no Socket Mode connection")
	}
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	f.wsWriteLock.Lock()
	defer f.wsWriteLock.Unlock()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		f.t.Fatalf("write envelope: %v", err)
	}
}

// DropConnection closes the latest socket abruptly, as a network drop would.
func (f *Slack) DropConnection() {
	f.mu.Lock()
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	_ = c.c.UnderlyingConn().Close()
}

// WaitAck waits until the envelope is acknowledged.
func (f *Slack) WaitAck(id string) {
	f.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case got := <-f.acks:
			if got == id {
				return
			}
		case <-deadline:
			f.t.Fatalf("envelope %s never acknowledged", id)
		}
	}
}

func (f *Slack) chat(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.botTokenOK(w, r) || f.failed(w, method) {
			return
		}
		call := SlackCall{
			Method: method, Channel: r.PostForm.Get("channel"), Thread: r.PostForm.Get("thread_ts"),
			User: r.PostForm.Get("user"), Text: r.PostForm.Get("text"), Blocks: r.PostForm.Get("blocks"),
			Metadata: r.PostForm.Get("metadata"),
		}
		f.mu.Lock()
		switch method {
		case "chat.update":
			call.TS = r.PostForm.Get("ts")
			f.updates = append(f.updates, call)
		case "chat.postEphemeral":
			f.nextTS++
			call.TS = fmt.Sprintf("1700002%03d.000300", f.nextTS)
			f.ephemerals = append(f.ephemerals, call)
		default:
			f.nextTS++
			call.TS = fmt.Sprintf("1700001%03d.000200", f.nextTS)
			f.posts = append(f.posts, call)
		}
		f.notifyLocked()
		f.mu.Unlock()
		if method == "chat.postEphemeral" {
			writeSlackJSON(w, fmt.Sprintf(`{"ok":true,"message_ts":%q}`, call.TS))
			return
		}
		writeSlackJSON(w, fmt.Sprintf(`{"ok":true,"channel":%q,"ts":%q,"text":%q}`, call.Channel, call.TS, call.Text))
	}
}

// history answers conversations.history as Slack documents it: the
// channel's top-level messages (not thread replies), newest first, at most
// limit a page with a next_cursor, each with its metadata when
// include_all_metadata is set. The fake's timestamps are counters, not
// times, so it ignores oldest and latest.
func (f *Slack) history(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "conversations.history") {
		return
	}
	channel := r.PostForm.Get("channel")
	limit, _ := strconv.Atoi(r.PostForm.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	start, _ := strconv.Atoi(r.PostForm.Get("cursor"))
	withMeta := r.PostForm.Get("include_all_metadata") == "1" || r.PostForm.Get("include_all_metadata") == "true"
	f.mu.Lock()
	var mine []SlackCall
	for i := len(f.posts) - 1; i >= 0; i-- {
		if p := f.posts[i]; p.Channel == channel && p.Thread == "" {
			mine = append(mine, p)
		}
	}
	f.mu.Unlock()
	type message struct {
		Type     string          `json:"type"`
		User     string          `json:"user"`
		BotID    string          `json:"bot_id"`
		Text     string          `json:"text"`
		TS       string          `json:"ts"`
		Metadata json.RawMessage `json:"metadata,omitempty"`
	}
	out := struct {
		OK       bool      `json:"ok"`
		Messages []message `json:"messages"`
		HasMore  bool      `json:"has_more"`
		Meta     struct {
			NextCursor string `json:"next_cursor"`
		} `json:"response_metadata"`
	}{OK: true, Messages: []message{}}
	for i := start; i < len(mine) && i < start+limit; i++ {
		m := message{Type: "message", User: SlackBotUserID, BotID: SlackBotID, Text: mine[i].Text, TS: mine[i].TS}
		if withMeta && mine[i].Metadata != "" {
			m.Metadata = json.RawMessage(mine[i].Metadata)
		}
		out.Messages = append(out.Messages, m)
	}
	if start+limit < len(mine) {
		out.HasMore, out.Meta.NextCursor = true, strconv.Itoa(start+limit)
	}
	b, _ := json.Marshal(out)
	writeSlackJSON(w, string(b))
}

func (f *Slack) usergroups(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "usergroups.list") {
		return
	}
	if r.PostForm.Get("include_users") != "true" {
		writeSlackJSON(w, `{"ok":false,"error":"include_users expected"}`)
		return
	}
	f.mu.Lock()
	groups := f.groups
	f.mu.Unlock()
	writeSlackJSON(w, `{"ok":true,"usergroups":`+groups+`}`)
}

func (f *Slack) getUploadURL(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "files.getUploadURLExternal") {
		return
	}
	writeSlackJSON(w, fmt.Sprintf(`{"ok":true,"upload_url":%q,"file_id":"F0CHART"}`, f.URL()+"upload/F0CHART"))
}

func (f *Slack) upload(w http.ResponseWriter, r *http.Request) {
	file, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(file)
	f.mu.Lock()
	f.uploads = append(f.uploads, data)
	f.notifyLocked()
	f.mu.Unlock()
	_, _ = io.WriteString(w, "OK - "+fmt.Sprint(len(data)))
}

func (f *Slack) completeUpload(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "files.completeUploadExternal") {
		return
	}
	f.mu.Lock()
	f.completes = append(f.completes, SlackCall{Method: "files.completeUploadExternal", Channel: r.PostForm.Get("channel_id"), Thread: r.PostForm.Get("thread_ts"), Text: r.PostForm.Get("files")})
	f.notifyLocked()
	f.mu.Unlock()
	writeSlackJSON(w, `{"ok":true,"files":[{"id":"F0CHART","title":"chart"}]}`)
}

// response records a JSON message posted to a slash command's
// response_url, as Slack documents it: {"response_type","text","blocks"}.
func (f *Slack) response(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ResponseType string          `json:"response_type"`
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad response", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.responses = append(f.responses, SlackCall{Method: "response_url:" + body.ResponseType, Channel: strings.TrimPrefix(r.URL.Path, "/response/"), Text: body.Text, Blocks: string(body.Blocks)})
	f.notifyLocked()
	f.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// Snapshot returns the successful posts and updates so far.
func (f *Slack) Snapshot() (posts, updates []SlackCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SlackCall(nil), f.posts...), append([]SlackCall(nil), f.updates...)
}

// Ephemerals returns the successful chat.postEphemeral calls so far.
func (f *Slack) Ephemerals() []SlackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SlackCall(nil), f.ephemerals...)
}

// Responses returns the messages posted to response_urls so far; Method is
// "response_url:" and the response_type, Channel the response id.
func (f *Slack) Responses() []SlackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SlackCall(nil), f.responses...)
}

// Uploads returns the uploaded files' bytes and the completing calls.
func (f *Slack) Uploads() (files [][]byte, completes []SlackCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.uploads...), append([]SlackCall(nil), f.completes...)
}

// WaitFor waits until cond holds, checking after every call the fake
// answers. cond may call the fake's accessors.
func (f *Slack) WaitFor(what string, cond func() bool) {
	f.t.Helper()
	waitFor(f.t, what, cond, func() <-chan struct{} {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.changed
	})
}

// --- payloads, as Slack sends them -------------------------------------------

// SlackEvent wraps an inner event in an event_callback envelope.
func SlackEvent(eventID, inner string) string {
	return fmt.Sprintf(`{"token":"XXYYZZ","team_id":"T1","api_app_id":"A111","event":%s,"type":"event_callback","event_id":%q,"event_time":1700000000,"authorizations":[{"team_id":"T1","user_id":%q,"is_bot":true}],"is_ext_shared_channel":false}`,
		inner, eventID, SlackBotUserID)
}

// SlackMention is an app_mention inner event (thread "" for a new thread).
func SlackMention(channel, user, text, ts, thread string) string {
	th := ""
	if thread != "" {
		th = fmt.Sprintf(`,"thread_ts":%q`, thread)
	}
	return fmt.Sprintf(`{"type":"app_mention","user":%q,"text":%q,"ts":%q,"channel":%q,"event_ts":%q%s}`, user, text, ts, channel, ts, th)
}

// SlackMessage is a message inner event; extra is appended to the object
// (`,"thread_ts":"…"`, `,"subtype":"file_share"`).
func SlackMessage(channel, channelType, user, text, ts, extra string) string {
	return fmt.Sprintf(`{"type":"message","channel":%q,"channel_type":%q,"user":%q,"text":%q,"ts":%q,"event_ts":%q%s}`, channel, channelType, user, text, ts, ts, extra)
}

// SlackClick is a block_actions interactive payload: user clicked the
// button actionID (value) on message msgTS in thread.
func SlackClick(user, channel, msgTS, thread, actionID, value, actionTS string) string {
	return fmt.Sprintf(`{"type":"block_actions","user":{"id":%q,"username":"alice","name":"alice","team_id":"T1"},"api_app_id":"A111","token":"XXYYZZ",
"container":{"type":"message","message_ts":%q,"channel_id":%q,"is_ephemeral":false,"thread_ts":%q},"trigger_id":"1.2.abc","team":{"id":"T1","domain":"parley"},
"channel":{"id":%q,"name":"ops"},"message":{"type":"message","user":%q,"ts":%q,"thread_ts":%q,"text":"This changes prod"},
"response_url":"https://hooks.slack.com/actions/T1/1/abc","actions":[{"action_id":%q,"block_id":"parley_actions","text":{"type":"plain_text","text":"Confirm","emoji":true},"value":%q,"style":"primary","type":"button","action_ts":%q}]}`,
		user, msgTS, channel, thread, channel, SlackBotUserID, msgTS, thread, actionID, value, actionTS)
}

// SlackCommand is a /parley slash command as Slack sends it: form fields
// over HTTP, the same fields as a JSON object in a Socket Mode envelope.
type SlackCommand struct {
	User, Channel, Text, TriggerID, ResponseURL string
}

// Form is the command as the HTTP request's form.
func (c SlackCommand) Form() url.Values {
	return url.Values{
		"token": {"XXYYZZ"}, "team_id": {"T1"}, "team_domain": {"parley"}, "channel_id": {c.Channel},
		"channel_name": {"ops"}, "user_id": {c.User}, "user_name": {"alice"}, "command": {"/parley"},
		"text": {c.Text}, "api_app_id": {"A111"}, "is_enterprise_install": {"false"},
		"response_url": {c.ResponseURL}, "trigger_id": {c.TriggerID},
	}
}

// JSON is the command as a Socket Mode slash_commands payload.
func (c SlackCommand) JSON() string {
	m := map[string]string{}
	for k, v := range c.Form() {
		m[k] = v[0]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// SlackSign is Slack's v0 request signature: HMAC-SHA256 of
// "v0:timestamp:body" with the signing secret.
func SlackSign(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + strconv.FormatInt(ts, 10) + ":" + body))
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SlackRequest is an Events API request signed as Slack signs it, with
// the secret at ts. contentType is application/json for events and
// application/x-www-form-urlencoded for interactivity and slash commands.
func SlackRequest(t testing.TB, target, contentType, body, secret string, ts int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", SlackSign(secret, ts, body))
	return req
}

// Interactive is the form body Slack posts for an interactive payload.
func Interactive(payload string) string { return url.Values{"payload": {payload}}.Encode() }
