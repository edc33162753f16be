package discord

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeDiscord is a small Discord on 127.0.0.1 that speaks the real wire
// protocol, since the real service cannot be reached from tests: REST routes
// under /api/v9 with Discord's JSON bodies, error objects ({"message",
// "code"}) and rate-limit headers, and the gateway WebSocket (op 10 HELLO,
// op 2 IDENTIFY checked for token and intents, op 0 READY and dispatches
// with sequence numbers, op 1 heartbeat answered by op 11, op 6 RESUME
// answered by the missed events and RESUMED, close codes 4004/4014).
// Payload shapes follow https://discord.com/developers/docs.
type fakeDiscord struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	appID string
	botID string

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	appFlags    int           // READY application flags
	closeCode   int           // close the gateway with this code after IDENTIFY
	replay      bool          // on RESUME, resend the last event too (at-least-once delivery)
	silent      bool          // accept gateway connections and never say HELLO
	reqs        []fakeRequest
	intents     int
	sessionID   string
	seq         int64
	history     []gwFrame
	conn        *fakeConn
	identifies  int
	resumes     int
	heartbeats  int
	ready       []string // "READY"/"RESUMED" as each connection is established
	ids         int64
	threads     map[string]string // thread id -> parent channel
	dms         map[string]bool
	originals   map[string]string // interaction token -> @original message id
	tokens      map[string]bool   // interaction tokens issued
	limit       func(route string, n int) bool
	limited     int
	fail        func(route, channel string) (status, code int)
	failed      int
	interaction map[string]int // interaction id -> callback type
}

type fakeRequest struct {
	Route   string // the mux pattern
	Method  string
	Path    string
	Query   string
	Channel string
	Body    json.RawMessage // JSON body, or multipart payload_json
	Files   []string
}

type gwFrame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

type fakeConn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func (c *fakeConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteJSON(v)
}

const (
	testToken    = "MTEzMDAwMDAwMDAwMDAwMDAwOQ.GhXy7Q.s3cr3t-t0ken-for-tests-only-0123456789"
	testAppID    = "1130000000000000009"
	testBotID    = "1130000000000000010"
	testGuild    = "1130000000000000100"
	testChannel  = "1130000000000000200" // not bound
	testBound    = "1130000000000000002" // bound
	testDM       = "1130000000000000300"
	testUser     = "80351110224678912"
	testRole     = "1130000000000000400"
	testIxToken  = "aW50ZXJhY3Rpb246MTEzMDAwMDAwMDAwMDAwMDUwMDpzZWNyZXQ"
	testIxToken2 = "aW50ZXJhY3Rpb246MTEzMDAwMDAwMDAwMDAwMDUwMTpzZWNyZXQ"
)

func newFakeDiscord(t *testing.T) *fakeDiscord {
	f := &fakeDiscord{
		t: t, token: testToken, appID: testAppID, botID: testBotID,
		changed:  make(chan struct{}),
		appFlags: flagGatewayMessageContentLimited,
		ids:      1130000000000090000,
		threads:  map[string]string{}, dms: map[string]bool{testDM: true},
		originals: map[string]string{}, tokens: map[string]bool{testIxToken: true, testIxToken2: true},
		interaction: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/gw/", f.serveGateway)
	gateway := func(w http.ResponseWriter, r *http.Request, _ fakeRequest) {
		body := map[string]any{"url": "ws://" + r.Host + "/gw"}
		if strings.HasSuffix(r.URL.Path, "/bot") {
			body["shards"] = 1
			body["session_start_limit"] = map[string]int{"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
		}
		writeJSON(w, http.StatusOK, body)
	}
	f.route(mux, "GET /api/v9/gateway", gateway)
	f.route(mux, "GET /api/v9/gateway/bot", gateway)
	f.route(mux, "GET /api/v9/users/@me", func(w http.ResponseWriter, _ *http.Request, _ fakeRequest) {
		writeJSON(w, http.StatusOK, f.botUser())
	})
	commands := func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		if r.PathValue("app") != f.appID {
			writeError(w, http.StatusForbidden, 50001, "Missing Access")
			return
		}
		var cmds []map[string]any
		if err := json.Unmarshal(req.Body, &cmds); err != nil {
			writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
			return
		}
		for _, c := range cmds {
			c["id"], c["application_id"], c["version"] = f.newID(), f.appID, f.newID()
		}
		writeJSON(w, http.StatusOK, cmds)
	}
	f.route(mux, "PUT /api/v9/applications/{app}/commands", commands)
	f.route(mux, "PUT /api/v9/applications/{app}/guilds/{guild}/commands", commands)
	f.route(mux, "GET /api/v9/channels/{ch}", func(w http.ResponseWriter, r *http.Request, _ fakeRequest) {
		ch := r.PathValue("ch")
		f.mu.Lock()
		parent, isThread := f.threads[ch]
		f.mu.Unlock()
		if isThread {
			writeJSON(w, http.StatusOK, map[string]any{"id": ch, "type": 11, "guild_id": testGuild, "parent_id": parent, "name": "thread"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": ch, "type": 0, "guild_id": testGuild, "name": "ops"})
	})
	f.route(mux, "POST /api/v9/channels/{ch}/messages", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		writeJSON(w, http.StatusOK, f.message(f.newID(), r.PathValue("ch"), req.Body))
	})
	f.route(mux, "PATCH /api/v9/channels/{ch}/messages/{mid}", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		writeJSON(w, http.StatusOK, f.message(r.PathValue("mid"), r.PathValue("ch"), req.Body))
	})
	f.route(mux, "POST /api/v9/channels/{ch}/messages/{mid}/threads", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		ch, mid := r.PathValue("ch"), r.PathValue("mid")
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case f.dms[ch]:
			writeError(w, http.StatusBadRequest, 50024, "Cannot execute action on this channel type")
		case f.threads[mid] != "":
			writeError(w, http.StatusBadRequest, codeThreadAlreadyMade, "A thread has already been created for this message")
		default:
			f.threads[mid] = ch
			var ts struct{ Name string }
			_ = json.Unmarshal(req.Body, &ts)
			writeJSON(w, http.StatusCreated, map[string]any{"id": mid, "type": 11, "guild_id": testGuild, "parent_id": ch, "name": ts.Name, "owner_id": f.botID})
		}
	})
	f.route(mux, "POST /api/v9/interactions/{id}/{token}/callback", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		if !f.knownToken(r.PathValue("token")) {
			writeError(w, http.StatusNotFound, codeUnknownInteraction, "Unknown interaction")
			return
		}
		var cb struct{ Type int }
		_ = json.Unmarshal(req.Body, &cb)
		f.mu.Lock()
		f.interaction[r.PathValue("id")] = cb.Type
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f.route(mux, "PATCH /api/v9/webhooks/{app}/{token}/messages/{mid}", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		token, mid := r.PathValue("token"), r.PathValue("mid")
		if r.PathValue("app") != f.appID || !f.knownToken(token) {
			writeError(w, http.StatusUnauthorized, codeInvalidWebhookTok, "Invalid Webhook Token")
			return
		}
		if mid == "@original" {
			f.mu.Lock()
			if f.originals[token] == "" {
				f.originals[token] = f.newIDLocked()
			}
			mid = f.originals[token]
			f.mu.Unlock()
		}
		writeJSON(w, http.StatusOK, f.message(mid, testChannel, req.Body))
	})
	f.route(mux, "POST /api/v9/webhooks/{app}/{token}", func(w http.ResponseWriter, r *http.Request, req fakeRequest) {
		if r.PathValue("app") != f.appID || !f.knownToken(r.PathValue("token")) {
			writeError(w, http.StatusUnauthorized, codeInvalidWebhookTok, "Invalid Webhook Token")
			return
		}
		if r.URL.Query().Get("wait") != "true" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, f.message(f.newID(), testChannel, req.Body))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		if f.conn != nil {
			_ = f.conn.ws.Close()
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func (f *fakeDiscord) botUser() map[string]any {
	return map[string]any{"id": f.botID, "username": "parley", "discriminator": "0", "global_name": nil, "avatar": nil, "bot": true}
}

func (f *fakeDiscord) knownToken(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}

func (f *fakeDiscord) newID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newIDLocked()
}

func (f *fakeDiscord) newIDLocked() string {
	f.ids++
	return fmt.Sprint(f.ids)
}

// message answers a create or edit with a message object built from body.
func (f *fakeDiscord) message(id, channel string, body json.RawMessage) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal(body, &m)
	m["id"], m["channel_id"], m["type"] = id, channel, 0
	m["author"] = f.botUser()
	m["timestamp"] = "2026-07-01T10:00:00.000000+00:00"
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "code": code})
}

// route registers a REST handler behind the checks every route shares:
// authorization, recording, injected failures and 429s.
func (f *fakeDiscord) route(mux *http.ServeMux, pattern string, h func(http.ResponseWriter, *http.Request, fakeRequest)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		req := fakeRequest{Route: pattern, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Channel: r.PathValue("ch")}
		if err := readBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
			return
		}
		webhook := strings.Contains(pattern, "/webhooks/") || strings.Contains(pattern, "/interactions/")
		if !webhook && r.Header.Get("Authorization") != "Bot "+f.token {
			writeError(w, http.StatusUnauthorized, 0, "401: Unauthorized")
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		n := 0
		for _, q := range f.reqs {
			if q.Route == pattern {
				n++
			}
		}
		limit, fail := f.limit, f.fail
		f.notifyLocked()
		f.mu.Unlock()
		if limit != nil && limit(pattern, n) {
			f.mu.Lock()
			f.limited++
			f.mu.Unlock()
			// Shaped like Discord's 429: headers and JSON body.
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-RateLimit-Limit", "5")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", fmt.Sprintf("%.3f", float64(time.Now().Add(30*time.Millisecond).UnixMilli())/1000))
			w.Header().Set("X-RateLimit-Reset-After", "0.030")
			w.Header().Set("X-RateLimit-Bucket", "80c17d2f203122d936070c88c8d10f33")
			w.Header().Set("X-RateLimit-Scope", "user")
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": 0.03, "global": false})
			return
		}
		if fail != nil {
			if status, code := fail(pattern, req.Channel); status != 0 {
				f.mu.Lock()
				f.failed++
				f.mu.Unlock()
				writeError(w, status, code, http.StatusText(status))
				return
			}
		}
		h(w, r, req)
	})
}

func readBody(r *http.Request, req *fakeRequest) error {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		if len(b) > 0 && !json.Valid(b) {
			return fmt.Errorf("invalid JSON")
		}
		req.Body = b
		return nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		if p.FormName() == "payload_json" {
			req.Body = b
		} else {
			req.Files = append(req.Files, fmt.Sprintf("%s %s %d", p.FileName(), p.Header.Get("Content-Type"), len(b)))
		}
	}
}

func (f *fakeDiscord) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until cond (called with f.mu held) holds. The deadline only
// turns a hang into a failure; no test depends on timing.
func (f *fakeDiscord) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		f.mu.Lock()
		ok, ch := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// requests returns the recorded requests for a route pattern.
func (f *fakeDiscord) requests(route string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.reqs {
		if r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

// index returns the position of the first request for route, or -1.
func (f *fakeDiscord) index(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.reqs {
		if r.Route == route {
			return i
		}
	}
	return -1
}

// --- gateway -----------------------------------------------------------------

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (f *fakeDiscord) serveGateway(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("encoding") != "json" || (q.Get("v") != "9" && q.Get("v") != "10") {
		http.Error(w, "bad gateway query", http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{ws: ws}
	defer ws.Close()
	f.mu.Lock()
	silent := f.silent
	f.mu.Unlock()
	if silent {
		_, _, _ = ws.ReadMessage() // until the client gives up
		return
	}
	if c.write(map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": 41250}, "s": nil, "t": nil}) != nil {
		return
	}
	var first gwFrame
	if ws.ReadJSON(&first) != nil {
		return
	}
	switch first.Op {
	case 2:
		var id struct {
			Token   string `json:"token"`
			Intents int    `json:"intents"`
		}
		_ = json.Unmarshal(first.D, &id)
		f.mu.Lock()
		f.identifies++
		f.intents = id.Intents
		closeCode := f.closeCode
		f.notifyLocked()
		f.mu.Unlock()
		if strings.TrimPrefix(id.Token, "Bot ") != f.token {
			closeWith(ws, closeAuthenticationFailed, "Authentication failed.")
			return
		}
		if closeCode != 0 {
			closeWith(ws, closeCode, "Disallowed intent(s).")
			return
		}
		f.mu.Lock()
		f.sessionID, f.seq, f.history = "9d3f7c8ab6e24e0f", 0, nil
		f.conn = c
		flags := f.appFlags
		f.mu.Unlock()
		f.dispatch("READY", map[string]any{
			"v": 10, "user": f.botUser(), "guilds": []map[string]any{{"id": testGuild, "unavailable": true}},
			"session_id": "9d3f7c8ab6e24e0f", "resume_gateway_url": "ws://" + r.Host + "/gw",
			"shard": []int{0, 1}, "application": map[string]any{"id": f.appID, "flags": flags},
		})
		f.connected("READY")
	case 6:
		var rs struct {
			Token     string `json:"token"`
			SessionID string `json:"session_id"`
			Seq       int64  `json:"seq"`
		}
		_ = json.Unmarshal(first.D, &rs)
		f.mu.Lock()
		ok := rs.SessionID == f.sessionID && strings.TrimPrefix(rs.Token, "Bot ") == f.token
		if ok {
			f.resumes++
			f.conn = c
		}
		var missed []gwFrame
		for _, h := range f.history {
			if *h.S > rs.Seq || (f.replay && *h.S == rs.Seq) {
				missed = append(missed, h)
			}
		}
		f.mu.Unlock()
		if !ok {
			_ = c.write(map[string]any{"op": 9, "d": false, "s": nil, "t": nil})
			return
		}
		for _, m := range missed {
			if c.write(m) != nil {
				return
			}
		}
		f.dispatch("RESUMED", map[string]any{})
		f.connected("RESUMED")
	default:
		closeWith(ws, 4002, "Decode error.")
		return
	}
	for {
		var fr gwFrame
		if ws.ReadJSON(&fr) != nil {
			return
		}
		if fr.Op == 1 {
			f.mu.Lock()
			f.heartbeats++
			f.notifyLocked()
			f.mu.Unlock()
			if c.write(map[string]any{"op": 11, "d": nil, "s": nil, "t": nil}) != nil {
				return
			}
		}
	}
}

func closeWith(ws *websocket.Conn, code int, text string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}

func (f *fakeDiscord) connected(how string) {
	f.mu.Lock()
	f.ready = append(f.ready, how)
	f.notifyLocked()
	f.mu.Unlock()
}

// dispatch sends an op 0 event on the current connection.
func (f *fakeDiscord) dispatch(typ string, d any) {
	f.t.Helper()
	raw, err := json.Marshal(d)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.seq++
	s, t := f.seq, typ
	fr := gwFrame{Op: 0, D: raw, S: &s, T: &t}
	if typ != "READY" && typ != "RESUMED" {
		f.history = append(f.history, fr)
	}
	c := f.conn
	f.mu.Unlock()
	if c == nil {
		f.t.Fatalf("dispatch %s: no gateway connection", typ)
	}
	if err := c.write(fr); err != nil {
		f.t.Logf("dispatch %s: %v", typ, err)
	}
}

// drop cuts the gateway connection without a close frame, as a network
// failure would.
func (f *fakeDiscord) drop() {
	f.mu.Lock()
	c := f.conn
	f.conn = nil
	f.mu.Unlock()
	if c != nil {
		_ = c.ws.UnderlyingConn().Close()
	}
}

// --- payloads ------------------------------------------------------------------

func userJSON(id, name string) map[string]any {
	return map[string]any{"id": id, "username": name, "global_name": strings.ToUpper(name[:1]) + name[1:], "discriminator": "0", "avatar": nil}
}

// messageCreate is a MESSAGE_CREATE payload from a guild member (guild ""
// for a DM); mention adds the bot to mentions and content.
func messageCreate(id, guild, channel, text string, mention bool) map[string]any {
	m := map[string]any{
		"id": id, "channel_id": channel, "author": userJSON(testUser, "maya"),
		"content": text, "timestamp": "2026-07-01T09:59:58.123000+00:00", "edited_timestamp": nil,
		"tts": false, "mention_everyone": false, "mentions": []any{}, "mention_roles": []any{},
		"attachments": []any{}, "embeds": []any{}, "pinned": false, "type": 0, "flags": 0,
	}
	if mention {
		m["content"] = "<@" + testBotID + "> " + text
		bot := userJSON(testBotID, "parley")
		bot["bot"] = true
		m["mentions"] = []any{bot}
	}
	if guild != "" {
		m["guild_id"] = guild
		m["member"] = map[string]any{"roles": []string{testRole}, "nick": nil, "joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0}
	}
	return m
}

func member() map[string]any {
	return map[string]any{"user": userJSON(testUser, "maya"), "roles": []string{testRole}, "nick": "Maya (ML)", "joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0, "permissions": "2248473465835073"}
}

// slashEvalRun is the INTERACTION_CREATE for
// "/parley eval run suite:intent-routing variant:prompt-v2".
func slashEvalRun(id, token string) map[string]any {
	return map[string]any{
		"id": id, "application_id": testAppID, "type": 2, "token": token, "version": 1,
		"guild_id": testGuild, "channel_id": testBound, "channel": map[string]any{"id": testBound, "type": 0},
		"member": member(), "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2248473465835073",
		"data": map[string]any{
			"id": "1130000000000000700", "name": "parley", "type": 1, "guild_id": testGuild,
			"options": []any{map[string]any{"name": "eval", "type": 2, "options": []any{
				map[string]any{"name": "run", "type": 1, "options": []any{
					map[string]any{"name": "suite", "type": 3, "value": "intent-routing"},
					map[string]any{"name": "variant", "type": 3, "value": "prompt-v2"},
				}},
			}}},
		},
	}
}

// buttonClick is the INTERACTION_CREATE for a click on a button whose
// custom_id is given, on the bot's message msgID.
func buttonClick(id, token, customID, msgID string) map[string]any {
	return map[string]any{
		"id": id, "application_id": testAppID, "type": 3, "token": token, "version": 1,
		"guild_id": testGuild, "channel_id": testBound, "member": member(), "locale": "en-US",
		"message": map[string]any{
			"id": msgID, "channel_id": testBound, "author": userJSON(testBotID, "parley"), "content": "This will run the intent-routing evaluation.",
			"timestamp": "2026-07-01T10:00:00.000000+00:00", "type": 0, "flags": 0, "embeds": []any{}, "attachments": []any{}, "mentions": []any{},
			"components": []any{map[string]any{"type": 1, "components": []any{
				map[string]any{"type": 2, "style": 3, "label": "Confirm", "custom_id": "parley:confirm:cf-42"},
				map[string]any{"type": 2, "style": 4, "label": "Cancel", "custom_id": "parley:cancel:cf-42"},
			}}},
		},
		"data": map[string]any{"custom_id": customID, "component_type": 2},
	}
}
