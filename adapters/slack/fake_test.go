package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"

	"github.com/parley-chatops/parley/internal/chat"
)

// The fake Slack below is slack-go's slacktest server (an httptest server on
// 127.0.0.1) with the Web API methods Parley uses answered the way Slack
// documents them (form-encoded requests, {"ok":...} JSON answers, 429 with
// Retry-After) and its /ws route replaced by the Socket Mode protocol:
// apps.connections.open returns a ws:// URL; the server sends
// {"type":"hello"}, then envelopes {"envelope_id","type","payload",
// "accepts_response_payload"}, pings every 50ms (Slack pings; socketmode
// reconnects without them), and records the {"envelope_id"} acks.

const (
	testBotToken = "xoxb-" + "fake-test-SECRETBOTTOKEN"
	testAppToken = "xapp-" + "fake-test-SECRETAPPTOKEN"
	// wrongBotToken is well formed but not the one the fake accepts;
	// userToken is a user token where a bot token is required. Both are
	// spelled in two parts so no token-shaped literal is in the source.
	wrongBotToken = "xoxb-" + "fake-not-the-right-one"
	userToken     = "xoxp-" + "fake-user-token"
	testSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	botUserID     = "UBOT0001"
	botID         = "BBOT0001"
	fullScopes    = "app_mentions:read,chat:write,im:history,channels:history,usergroups:read,files:write,users:read"
)

type apiCall struct {
	Method  string
	Channel string
	TS      string // chat.update's ts, or the ts a post was given
	Thread  string
	Text    string
	Blocks  string
}

type fakeSlack struct {
	t   *testing.T
	srv *slacktest.Server

	mu          sync.Mutex
	scopes      string
	appTokenOK  bool
	fail        func(method string, n int) (status int, retryAfter string, slackErr string)
	calls       map[string]int // method -> count of calls seen
	posts       []apiCall      // successful chat.postMessage
	updates     []apiCall      // successful chat.update
	uploads     [][]byte
	completes   []apiCall
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

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{
		t: t, scopes: fullScopes, appTokenOK: true,
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
		c.Handle("/usergroups.list", f.usergroups)
		c.Handle("/files.getUploadURLExternal", f.getUploadURL)
		c.Handle("/upload/", f.upload)
		c.Handle("/files.completeUploadExternal", f.completeUpload)
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

func (f *fakeSlack) url() string { return f.srv.GetAPIURL() }

func writeJSON(w http.ResponseWriter, v string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, v)
}

// failed applies the configured failure for the nth call of method.
func (f *fakeSlack) failed(w http.ResponseWriter, method string) bool {
	f.mu.Lock()
	f.calls[method]++
	n := f.calls[method]
	fail := f.fail
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
		writeJSON(w, fmt.Sprintf(`{"ok":false,"error":%q}`, slackErr))
		return true
	}
	return false
}

func (f *fakeSlack) botTokenOK(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	token := r.PostForm.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token != testBotToken {
		writeJSON(w, `{"ok":false,"error":"invalid_auth"}`)
		return false
	}
	return true
}

func (f *fakeSlack) authTest(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) {
		return
	}
	f.mu.Lock()
	scopes := f.scopes
	f.mu.Unlock()
	w.Header().Set("X-OAuth-Scopes", scopes)
	writeJSON(w, fmt.Sprintf(`{"ok":true,"url":"https://parley.slack.com/","team":"Parley","user":"parley","team_id":"T1","user_id":%q,"bot_id":%q}`, botUserID, botID))
}

func (f *fakeSlack) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ok := f.appTokenOK
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testAppToken || !ok {
		writeJSON(w, `{"ok":false,"error":"not_allowed_token_type"}`)
		return
	}
	writeJSON(w, fmt.Sprintf(`{"ok":true,"url":%q}`, f.srv.GetWSURL()))
}

func (f *fakeSlack) socket(w http.ResponseWriter, r *http.Request) {
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

// waitConnected waits for the nth WebSocket connection (1-based).
func (f *fakeSlack) waitConnected(n int) {
	f.t.Helper()
	deadline := time.After(20 * time.Second)
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

// envelope sends a Socket Mode envelope on the latest connection.
func (f *fakeSlack) envelope(envelopeID, typ, payload string) {
	f.t.Helper()
	f.mu.Lock()
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	msg := fmt.Sprintf(`{"envelope_id":%q,"type":%q,"payload":%s,"accepts_response_payload":false}`, envelopeID, typ, payload)
	f.wsWriteLock.Lock()
	defer f.wsWriteLock.Unlock()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		f.t.Fatalf("write envelope: %v", err)
	}
}

// dropConnection closes the latest socket abruptly, as a network drop would.
func (f *fakeSlack) dropConnection() {
	f.mu.Lock()
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	_ = c.c.UnderlyingConn().Close()
}

func (f *fakeSlack) waitAck(id string) {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
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

func (f *fakeSlack) chat(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.botTokenOK(w, r) || f.failed(w, method) {
			return
		}
		call := apiCall{
			Method: method, Channel: r.PostForm.Get("channel"), Thread: r.PostForm.Get("thread_ts"),
			Text: r.PostForm.Get("text"), Blocks: r.PostForm.Get("blocks"),
		}
		f.mu.Lock()
		if method == "chat.update" {
			call.TS = r.PostForm.Get("ts")
			f.updates = append(f.updates, call)
		} else {
			f.nextTS++
			call.TS = fmt.Sprintf("1700001%03d.000200", f.nextTS)
			f.posts = append(f.posts, call)
		}
		f.mu.Unlock()
		writeJSON(w, fmt.Sprintf(`{"ok":true,"channel":%q,"ts":%q,"text":%q}`, call.Channel, call.TS, call.Text))
	}
}

func (f *fakeSlack) usergroups(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "usergroups.list") {
		return
	}
	if r.PostForm.Get("include_users") != "true" {
		writeJSON(w, `{"ok":false,"error":"include_users expected"}`)
		return
	}
	f.mu.Lock()
	groups := f.groups
	f.mu.Unlock()
	writeJSON(w, `{"ok":true,"usergroups":`+groups+`}`)
}

func (f *fakeSlack) getUploadURL(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "files.getUploadURLExternal") {
		return
	}
	writeJSON(w, fmt.Sprintf(`{"ok":true,"upload_url":%q,"file_id":"F0CHART"}`, f.url()+"upload/F0CHART"))
}

func (f *fakeSlack) upload(w http.ResponseWriter, r *http.Request) {
	file, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(file)
	f.mu.Lock()
	f.uploads = append(f.uploads, data)
	f.mu.Unlock()
	_, _ = io.WriteString(w, "OK - "+fmt.Sprint(len(data)))
}

func (f *fakeSlack) completeUpload(w http.ResponseWriter, r *http.Request) {
	if !f.botTokenOK(w, r) || f.failed(w, "files.completeUploadExternal") {
		return
	}
	f.mu.Lock()
	f.completes = append(f.completes, apiCall{Method: "files.completeUploadExternal", Channel: r.PostForm.Get("channel_id"), Thread: r.PostForm.Get("thread_ts"), Text: r.PostForm.Get("files")})
	f.mu.Unlock()
	writeJSON(w, `{"ok":true,"files":[{"id":"F0CHART","title":"chart"}]}`)
}

func (f *fakeSlack) snapshot() (posts, updates []apiCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.posts...), append([]apiCall(nil), f.updates...)
}

// recorder is a stub chat.Handler that records messages and, when reply is
// set, answers each through the adapter like the pipeline does.
type recorder struct {
	msgs  chan chat.Message
	reply func(ctx context.Context, m chat.Message)
}

func newRecorder() *recorder { return &recorder{msgs: make(chan chat.Message, 64)} }

func (r *recorder) Handle(ctx context.Context, m chat.Message) {
	if r.reply != nil {
		r.reply(ctx, m)
	}
	r.msgs <- m
}

func (r *recorder) next(t *testing.T) chat.Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message handled")
		return chat.Message{}
	}
}

// none asserts nothing more was handled: the sentinel message sent after
// the ignored ones must be the next one.
func (r *recorder) nextText(t *testing.T, want string) chat.Message {
	t.Helper()
	m := r.next(t)
	if m.Text != want {
		t.Fatalf("handled %q (%+v), want %q", m.Text, m, want)
	}
	return m
}
