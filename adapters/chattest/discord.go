package chattest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Discord is a small Discord on 127.0.0.1 that speaks the real wire
// protocol, since the real service cannot be reached from tests: REST routes
// under /api/v9 with Discord's JSON bodies, error objects ({"message",
// "code"}) and rate-limit headers, and the gateway WebSocket (op 10 HELLO,
// op 2 IDENTIFY checked for token and intents, op 0 READY and dispatches
// with sequence numbers, op 1 heartbeat answered by op 11, op 6 RESUME
// answered by the missed events and RESUMED, close codes 4004/4014).
// Payload shapes follow https://discord.com/developers/docs.
type Discord struct {
	t     testing.TB
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
	reqs        []DiscordRequest
	intents     int
	sessionID   string
	seq         int64
	history     []gatewayFrame
	conn        *discordConn
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
	interaction map[string]int              // interaction id -> callback type
	commands    map[string][]map[string]any // "" (global) or guild id -> application commands
	deleted     []string                    // interaction tokens whose @original was deleted
	deferred    map[string]int              // interaction token -> flags of its deferred (type 5) response
	nonces      map[string]map[string]any   // channel + nonce -> the message created with enforce_nonce
	// editedByFollowup are tokens whose first follow-up edited the
	// deferred response instead of posting a message.
	editedByFollowup []string
}

// DiscordRequest is one REST request the fake received, failed ones
// included.
type DiscordRequest struct {
	Route   string // the mux pattern
	Method  string
	Path    string
	Query   string
	Channel string
	Body    json.RawMessage // JSON body, or multipart payload_json
	Files   []string
}

type gatewayFrame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

type discordConn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func (c *discordConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteJSON(v)
}

// Discord fixtures. The bot and interaction tokens are built from parts so
// no token-shaped literal is in the source.
const (
	DiscordToken    = "MTEzMDAwMDAwMDAwMDAwMDAwOQ" + "." + "GhXy7Q" + "." + "s3cr3t-t0ken-for-tests-only-0123456789"
	DiscordAppID    = "1130000000000000009"
	DiscordBotID    = "1130000000000000010"
	DiscordGuild    = "1130000000000000100"
	DiscordChannel  = "1130000000000000200" // not bound
	DiscordBound    = "1130000000000000002" // bound
	DiscordDM       = "1130000000000000300"
	DiscordUser     = "80351110224678912"
	DiscordRole     = "1130000000000000400"
	DiscordIxToken  = "aW50ZXJhY3Rpb246" + "MTEzMDAwMDAwMDAwMDAwMDUwMDpzZWNyZXQ"
	DiscordIxToken2 = "aW50ZXJhY3Rpb246" + "MTEzMDAwMDAwMDAwMDAwMDUwMTpzZWNyZXQ"
)

// NewDiscord starts a fake Discord on 127.0.0.1 until the test ends.
func NewDiscord(t testing.TB) *Discord {
	f := &Discord{
		t: t, token: DiscordToken, appID: DiscordAppID, botID: DiscordBotID,
		changed:  make(chan struct{}),
		appFlags: 1 << 19,
		ids:      1130000000000090000,
		threads:  map[string]string{}, dms: map[string]bool{DiscordDM: true}, nonces: map[string]map[string]any{},
		originals: map[string]string{}, tokens: map[string]bool{DiscordIxToken: true, DiscordIxToken2: true},
		interaction: map[string]int{},
		commands:    map[string][]map[string]any{},
		deferred:    map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/gw/", f.serveGateway)
	gateway := func(w http.ResponseWriter, r *http.Request, _ DiscordRequest) {
		body := map[string]any{"url": "ws://" + r.Host + "/gw"}
		if strings.HasSuffix(r.URL.Path, "/bot") {
			body["shards"] = 1
			body["session_start_limit"] = map[string]int{"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
		}
		writeDiscordJSON(w, http.StatusOK, body)
	}
	f.route(mux, "GET /api/v9/gateway", gateway)
	f.route(mux, "GET /api/v9/gateway/bot", gateway)
	f.route(mux, "GET /api/v9/users/@me", func(w http.ResponseWriter, _ *http.Request, _ DiscordRequest) {
		writeDiscordJSON(w, http.StatusOK, f.botUser())
	})
	f.route(mux, "GET /api/v9/oauth2/applications/@me", func(w http.ResponseWriter, _ *http.Request, _ DiscordRequest) {
		f.mu.Lock()
		flags := f.appFlags
		f.mu.Unlock()
		writeDiscordJSON(w, http.StatusOK, map[string]any{"id": f.appID, "name": "Parley", "flags": flags, "bot_public": false, "bot": f.botUser()})
	})
	// Application commands, global and per guild: listed, created (a name
	// already there is overwritten, as Discord does), edited, deleted, and
	// overwritten in bulk.
	scope := func(r *http.Request) string { return r.PathValue("guild") }
	for _, base := range []string{"/api/v9/applications/{app}/commands", "/api/v9/applications/{app}/guilds/{guild}/commands"} {
		f.route(mux, "GET "+base, func(w http.ResponseWriter, r *http.Request, _ DiscordRequest) {
			if !f.ownApp(w, r) {
				return
			}
			writeDiscordJSON(w, http.StatusOK, f.Commands(scope(r)))
		})
		f.route(mux, "POST "+base, func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
			var c map[string]any
			if !f.ownApp(w, r) || !decodeCommand(w, req.Body, &c) {
				return
			}
			status := http.StatusCreated
			f.mu.Lock()
			cmds := f.commands[scope(r)]
			for i, old := range cmds {
				if old["name"] == c["name"] {
					c["id"] = old["id"]
					cmds = append(cmds[:i], cmds[i+1:]...)
					status = http.StatusOK
					break
				}
			}
			f.stampLocked(c, scope(r))
			f.commands[scope(r)] = append(cmds, c)
			f.mu.Unlock()
			writeDiscordJSON(w, status, c)
		})
		f.route(mux, "PATCH "+base+"/{cmd}", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
			var c map[string]any
			if !f.ownApp(w, r) || !decodeCommand(w, req.Body, &c) {
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for i, old := range f.commands[scope(r)] {
				if old["id"] == r.PathValue("cmd") {
					for k, v := range c {
						old[k] = v
					}
					f.stampLocked(old, scope(r))
					f.commands[scope(r)][i] = old
					writeDiscordJSON(w, http.StatusOK, old)
					return
				}
			}
			writeDiscordError(w, http.StatusNotFound, 10063, "Unknown application command")
		})
		f.route(mux, "DELETE "+base+"/{cmd}", func(w http.ResponseWriter, r *http.Request, _ DiscordRequest) {
			if !f.ownApp(w, r) {
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			cmds := f.commands[scope(r)]
			for i, old := range cmds {
				if old["id"] == r.PathValue("cmd") {
					f.commands[scope(r)] = append(cmds[:i], cmds[i+1:]...)
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
			writeDiscordError(w, http.StatusNotFound, 10063, "Unknown application command")
		})
		f.route(mux, "PUT "+base, func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
			var cmds []map[string]any
			if !f.ownApp(w, r) {
				return
			}
			if err := json.Unmarshal(req.Body, &cmds); err != nil {
				writeDiscordError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
				return
			}
			f.mu.Lock()
			for _, c := range cmds {
				f.stampLocked(c, scope(r))
			}
			f.commands[scope(r)] = cmds
			f.mu.Unlock()
			writeDiscordJSON(w, http.StatusOK, cmds)
		})
	}
	f.route(mux, "GET /api/v9/channels/{ch}", func(w http.ResponseWriter, r *http.Request, _ DiscordRequest) {
		ch := r.PathValue("ch")
		f.mu.Lock()
		parent, isThread := f.threads[ch]
		f.mu.Unlock()
		if isThread {
			writeDiscordJSON(w, http.StatusOK, map[string]any{"id": ch, "type": 11, "guild_id": DiscordGuild, "parent_id": parent, "name": "thread"})
			return
		}
		writeDiscordJSON(w, http.StatusOK, map[string]any{"id": ch, "type": 0, "guild_id": DiscordGuild, "name": "ops"})
	})
	f.route(mux, "POST /api/v9/channels/{ch}/messages", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		// With enforce_nonce, a second message with the same nonce in the
		// same channel returns the first instead of creating one, as
		// Discord does for a few minutes.
		// The nonce is an integer or a string (Discord takes either);
		// its JSON text is the key.
		var n struct {
			Nonce        json.RawMessage `json:"nonce"`
			EnforceNonce bool            `json:"enforce_nonce"`
		}
		if err := json.Unmarshal(req.Body, &n); err != nil {
			writeDiscordError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
			return
		}
		nonce := string(n.Nonce)
		if nonce == "null" {
			nonce = ""
		}
		key := r.PathValue("ch") + "/" + nonce
		f.mu.Lock()
		earlier, dup := f.nonces[key]
		f.mu.Unlock()
		if n.EnforceNonce && nonce != "" && dup {
			writeDiscordJSON(w, http.StatusOK, earlier)
			return
		}
		m := f.message(f.newID(), r.PathValue("ch"), req.Body)
		if n.EnforceNonce && nonce != "" {
			f.mu.Lock()
			f.nonces[key] = m
			f.mu.Unlock()
		}
		writeDiscordJSON(w, http.StatusOK, m)
	})
	f.route(mux, "PATCH /api/v9/channels/{ch}/messages/{mid}", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		writeDiscordJSON(w, http.StatusOK, f.message(r.PathValue("mid"), r.PathValue("ch"), req.Body))
	})
	f.route(mux, "POST /api/v9/channels/{ch}/messages/{mid}/threads", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		ch, mid := r.PathValue("ch"), r.PathValue("mid")
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case f.dms[ch]:
			writeDiscordError(w, http.StatusBadRequest, 50024, "Cannot execute action on this channel type")
		case f.threads[mid] != "":
			writeDiscordError(w, http.StatusBadRequest, 160004, "A thread has already been created for this message")
		default:
			f.threads[mid] = ch
			var ts struct{ Name string }
			_ = json.Unmarshal(req.Body, &ts)
			writeDiscordJSON(w, http.StatusCreated, map[string]any{"id": mid, "type": 11, "guild_id": DiscordGuild, "parent_id": ch, "name": ts.Name, "owner_id": f.botID})
		}
	})
	f.route(mux, "POST /api/v9/interactions/{id}/{token}/callback", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		if !f.knownToken(r.PathValue("token")) {
			writeDiscordError(w, http.StatusNotFound, 10062, "Unknown interaction")
			return
		}
		var cb struct {
			Type int
			Data struct{ Flags int }
		}
		_ = json.Unmarshal(req.Body, &cb)
		f.mu.Lock()
		f.interaction[r.PathValue("id")] = cb.Type
		if cb.Type == 5 {
			f.deferred[r.PathValue("token")] = cb.Data.Flags
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f.route(mux, "DELETE /api/v9/webhooks/{app}/{token}/messages/{mid}", func(w http.ResponseWriter, r *http.Request, _ DiscordRequest) {
		token := r.PathValue("token")
		if r.PathValue("app") != f.appID || !f.knownToken(token) {
			writeDiscordError(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
			return
		}
		f.mu.Lock()
		f.deleted = append(f.deleted, token+"/"+r.PathValue("mid"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f.route(mux, "PATCH /api/v9/webhooks/{app}/{token}/messages/{mid}", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		token, mid := r.PathValue("token"), r.PathValue("mid")
		if r.PathValue("app") != f.appID || !f.knownToken(token) {
			writeDiscordError(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
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
		writeDiscordJSON(w, http.StatusOK, f.message(mid, DiscordChannel, req.Body))
	})
	f.route(mux, "POST /api/v9/webhooks/{app}/{token}", func(w http.ResponseWriter, r *http.Request, req DiscordRequest) {
		if r.PathValue("app") != f.appID || !f.knownToken(r.PathValue("token")) {
			writeDiscordError(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
			return
		}
		// Right after a deferred response (type 5), the first follow-up
		// edits the deferred "thinking…" message, keeping its flags, as
		// Discord does; later follow-ups are new messages with their own.
		token := r.PathValue("token")
		f.mu.Lock()
		id := ""
		flags, deferred := f.deferred[token]
		if deferred && f.originals[token] == "" {
			id = f.newIDLocked()
			f.originals[token] = id
			f.editedByFollowup = append(f.editedByFollowup, token)
		}
		f.mu.Unlock()
		if id == "" {
			id, flags = f.newID(), -1
		}
		if r.URL.Query().Get("wait") != "true" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		m := f.message(id, DiscordChannel, req.Body)
		if flags >= 0 {
			m["flags"] = flags
		}
		writeDiscordJSON(w, http.StatusOK, m)
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

func (f *Discord) ownApp(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("app") != f.appID {
		writeDiscordError(w, http.StatusForbidden, 50001, "Missing Access")
		return false
	}
	return true
}

func decodeCommand(w http.ResponseWriter, body json.RawMessage, c *map[string]any) bool {
	if err := json.Unmarshal(body, c); err != nil || (*c)["name"] == nil && (*c)["description"] == nil {
		writeDiscordError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return false
	}
	return true
}

// stampLocked gives a stored command the fields Discord adds.
func (f *Discord) stampLocked(c map[string]any, guild string) {
	if c["id"] == nil {
		c["id"] = f.newIDLocked()
	}
	c["application_id"], c["version"] = f.appID, f.newIDLocked()
	if guild != "" {
		c["guild_id"] = guild
	}
}

// Commands returns the application's commands in a guild, or the global
// ones for guild "".
func (f *Discord) Commands(guild string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	for _, c := range f.commands[guild] {
		cp := map[string]any{}
		for k, v := range c {
			cp[k] = v
		}
		out = append(out, cp)
	}
	return out
}

// AddCommand registers a command for the application as another tool
// would, in a guild or globally (""), and returns its id.
func (f *Discord) AddCommand(guild, name, description string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[string]any{"name": name, "description": description, "type": 1}
	f.stampLocked(c, guild)
	f.commands[guild] = append(f.commands[guild], c)
	return c["id"].(string)
}

func (f *Discord) botUser() map[string]any {
	return map[string]any{"id": f.botID, "username": "parley", "discriminator": "0", "global_name": nil, "avatar": nil, "bot": true}
}

func (f *Discord) knownToken(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}

func (f *Discord) newID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newIDLocked()
}

func (f *Discord) newIDLocked() string {
	f.ids++
	return fmt.Sprint(f.ids)
}

// message answers a create or edit with a message object built from body.
func (f *Discord) message(id, channel string, body json.RawMessage) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal(body, &m)
	m["id"], m["channel_id"], m["type"] = id, channel, 0
	m["author"] = f.botUser()
	m["timestamp"] = "2026-07-01T10:00:00.000000+00:00"
	return m
}

func writeDiscordJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeDiscordError(w http.ResponseWriter, status, code int, msg string) {
	writeDiscordJSON(w, status, map[string]any{"message": msg, "code": code})
}

// route registers a REST handler behind the checks every route shares:
// authorization, recording, injected failures and 429s.
func (f *Discord) route(mux *http.ServeMux, pattern string, h func(http.ResponseWriter, *http.Request, DiscordRequest)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		req := DiscordRequest{Route: pattern, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Channel: r.PathValue("ch")}
		if err := readBody(r, &req); err != nil {
			writeDiscordError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
			return
		}
		webhook := strings.Contains(pattern, "/webhooks/") || strings.Contains(pattern, "/interactions/")
		if !webhook && r.Header.Get("Authorization") != "Bot "+f.token {
			writeDiscordError(w, http.StatusUnauthorized, 0, "401: Unauthorized")
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
			writeDiscordJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": 0.03, "global": false})
			return
		}
		if fail != nil {
			if status, code := fail(pattern, req.Channel); status != 0 {
				f.mu.Lock()
				f.failed++
				f.mu.Unlock()
				writeDiscordError(w, status, code, http.StatusText(status))
				return
			}
		}
		h(w, r, req)
	})
}

func readBody(r *http.Request, req *DiscordRequest) error {
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

func (f *Discord) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// --- gateway -----------------------------------------------------------------

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (f *Discord) serveGateway(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("encoding") != "json" || (q.Get("v") != "9" && q.Get("v") != "10") {
		http.Error(w, "bad gateway query", http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &discordConn{ws: ws}
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
	var first gatewayFrame
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
			closeWith(ws, 4004, "Authentication failed.")
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
			"v": 10, "user": f.botUser(), "guilds": []map[string]any{{"id": DiscordGuild, "unavailable": true}},
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
		var missed []gatewayFrame
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
		var fr gatewayFrame
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

func (f *Discord) connected(how string) {
	f.mu.Lock()
	f.ready = append(f.ready, how)
	f.notifyLocked()
	f.mu.Unlock()
}

// dispatch sends an op 0 event on the current connection.
func (f *Discord) dispatch(typ string, d any) {
	f.t.Helper()
	raw, err := json.Marshal(d)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.seq++
	s, t := f.seq, typ
	fr := gatewayFrame{Op: 0, D: raw, S: &s, T: &t}
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
func (f *Discord) drop() {
	f.mu.Lock()
	c := f.conn
	f.conn = nil
	f.mu.Unlock()
	if c != nil {
		_ = c.ws.UnderlyingConn().Close()
	}
}

// --- payloads ------------------------------------------------------------------

// DiscordUserJSON is a user object.
func DiscordUserJSON(id, name string) map[string]any {
	return map[string]any{"id": id, "username": name, "global_name": strings.ToUpper(name[:1]) + name[1:], "discriminator": "0", "avatar": nil}
}

// DiscordMessageCreate is a MESSAGE_CREATE payload from a guild member (guild ""
// for a DM); mention adds the bot to mentions and content.
func DiscordMessageCreate(id, guild, channel, text string, mention bool) map[string]any {
	m := map[string]any{
		"id": id, "channel_id": channel, "author": DiscordUserJSON(DiscordUser, "maya"),
		"content": text, "timestamp": "2026-07-01T09:59:58.123000+00:00", "edited_timestamp": nil,
		"tts": false, "mention_everyone": false, "mentions": []any{}, "mention_roles": []any{},
		"attachments": []any{}, "embeds": []any{}, "pinned": false, "type": 0, "flags": 0,
	}
	if mention {
		m["content"] = "<@" + DiscordBotID + "> " + text
		bot := DiscordUserJSON(DiscordBotID, "parley")
		bot["bot"] = true
		m["mentions"] = []any{bot}
	}
	if guild != "" {
		m["guild_id"] = guild
		m["member"] = map[string]any{"roles": []string{DiscordRole}, "nick": nil, "joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0}
	}
	return m
}

// DiscordMember is the guild member object of DiscordUser.
func DiscordMember() map[string]any {
	return map[string]any{"user": DiscordUserJSON(DiscordUser, "maya"), "roles": []string{DiscordRole}, "nick": "Maya (ML)", "joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0, "permissions": "2248473465835073"}
}

// DiscordSlashEvalRun is the INTERACTION_CREATE for
// "/parley eval run suite:intent-routing variant:prompt-v2".
func DiscordSlashEvalRun(id, token string) map[string]any {
	return map[string]any{
		"id": id, "application_id": DiscordAppID, "type": 2, "token": token, "version": 1,
		"guild_id": DiscordGuild, "channel_id": DiscordBound, "channel": map[string]any{"id": DiscordBound, "type": 0},
		"member": DiscordMember(), "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2248473465835073",
		"data": map[string]any{
			"id": "1130000000000000700", "name": "parley", "type": 1, "guild_id": DiscordGuild,
			"options": []any{map[string]any{"name": "eval", "type": 2, "options": []any{
				map[string]any{"name": "run", "type": 1, "options": []any{
					map[string]any{"name": "suite", "type": 3, "value": "intent-routing"},
					map[string]any{"name": "variant", "type": 3, "value": "prompt-v2"},
				}},
			}}},
		},
	}
}

// DiscordButtonClick is the INTERACTION_CREATE for a click on a button whose
// custom_id is given, on the bot's message msgID.
func DiscordButtonClick(id, token, customID, msgID string) map[string]any {
	return map[string]any{
		"id": id, "application_id": DiscordAppID, "type": 3, "token": token, "version": 1,
		"guild_id": DiscordGuild, "channel_id": DiscordBound, "member": DiscordMember(), "locale": "en-US",
		"message": map[string]any{
			"id": msgID, "channel_id": DiscordBound, "author": DiscordUserJSON(DiscordBotID, "parley"), "content": "This will run the intent-routing evaluation.",
			"timestamp": "2026-07-01T10:00:00.000000+00:00", "type": 0, "flags": 0, "embeds": []any{}, "attachments": []any{}, "mentions": []any{},
			"components": []any{map[string]any{"type": 1, "components": []any{
				map[string]any{"type": 2, "style": 3, "label": "Confirm", "custom_id": "parley:confirm:cf-42"},
				map[string]any{"type": 2, "style": 4, "label": "Cancel", "custom_id": "parley:cancel:cf-42"},
			}}},
		},
		"data": map[string]any{"custom_id": customID, "component_type": 2},
	}
}

// --- accessors ----------------------------------------------------------------

// REST routes of the fake, as recorded in DiscordRequest.Route.
const (
	RouteCreateMessage  = "POST /api/v9/channels/{ch}/messages"
	RouteEditMessage    = "PATCH /api/v9/channels/{ch}/messages/{mid}"
	RouteStartThread    = "POST /api/v9/channels/{ch}/messages/{mid}/threads"
	RouteCallback       = "POST /api/v9/interactions/{id}/{token}/callback"
	RouteWebhookEdit    = "PATCH /api/v9/webhooks/{app}/{token}/messages/{mid}"
	RouteWebhookDelete  = "DELETE /api/v9/webhooks/{app}/{token}/messages/{mid}"
	RouteFollowup       = "POST /api/v9/webhooks/{app}/{token}"
	RouteListCommands   = "GET /api/v9/applications/{app}/commands"
	RouteCreateCommand  = "POST /api/v9/applications/{app}/commands"
	RouteEditCommand    = "PATCH /api/v9/applications/{app}/commands/{cmd}"
	RouteBulkCommands   = "PUT /api/v9/applications/{app}/commands"
	RouteGuildCommands  = "GET /api/v9/applications/{app}/guilds/{guild}/commands"
	RouteCreateGuildCmd = "POST /api/v9/applications/{app}/guilds/{guild}/commands"
	RouteEditGuildCmd   = "PATCH /api/v9/applications/{app}/guilds/{guild}/commands/{cmd}"
	RouteBulkGuildCmds  = "PUT /api/v9/applications/{app}/guilds/{guild}/commands"
)

// URL is the REST base URL (the adapter's APIURL option).
func (f *Discord) URL() string { return f.srv.URL }

// GatewayWSURL is the gateway's WebSocket URL (the adapter's GatewayURL).
func (f *Discord) GatewayWSURL() string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/gw"
}

// Dispatch sends an op 0 gateway event with the next sequence number.
func (f *Discord) Dispatch(typ string, d any) { f.dispatch(typ, d) }

// Drop cuts the gateway connection as a network failure would.
func (f *Discord) Drop() { f.drop() }

// SetReplay makes a RESUME resend the last event the client acknowledged
// too (at-least-once delivery).
func (f *Discord) SetReplay(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replay = on
}

// SetLimit answers the nth request of a route 429 while limit says so.
func (f *Discord) SetLimit(limit func(route string, n int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
}

// SetFail answers requests with an error (status, Discord code) while
// fail returns a non-zero status for the route and channel.
func (f *Discord) SetFail(fail func(route, channel string) (status, code int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// SetAppFlags sets the application flags READY and /applications/@me
// report (1<<19: Message Content intent, limited; 0: not enabled).
func (f *Discord) SetAppFlags(flags int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appFlags = flags
}

// SetCloseCode makes the gateway close with code after IDENTIFY (4014:
// disallowed intents).
func (f *Discord) SetCloseCode(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeCode = code
}

// SetSilent makes the gateway accept connections and never say HELLO.
func (f *Discord) SetSilent(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.silent = on
}

// AddThread makes the fake know a thread of parent.
func (f *Discord) AddThread(id, parent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.threads[id] = parent
}

// Limited is how many 429s the fake has served.
func (f *Discord) Limited() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limited
}

// Failed is how many injected failures the fake has served.
func (f *Discord) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// IssueToken makes an interaction token valid, as Discord does when it
// sends the interaction.
func (f *Discord) IssueToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = true
}

// Requests returns the recorded requests, in arrival order; with routes
// given, only those.
func (f *Discord) Requests(routes ...string) []DiscordRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DiscordRequest
	for _, r := range f.reqs {
		if len(routes) == 0 || slices.Contains(routes, r.Route) {
			out = append(out, r)
		}
	}
	return out
}

// Index is the position of the first request for route, or -1.
func (f *Discord) Index(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.reqs {
		if r.Route == route {
			return i
		}
	}
	return -1
}

// CallbackType is the type of the interaction response sent for the
// interaction id, 0 when none was.
func (f *Discord) CallbackType(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interaction[id]
}

// Original is the id of an interaction's @original message, once edited.
func (f *Discord) Original(token string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.originals[token]
}

// Sessions returns how many times the gateway was identified to and
// resumed, and "READY"/"RESUMED" for each established connection.
func (f *Discord) Sessions() (identifies, resumes int, ready []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.identifies, f.resumes, slices.Clone(f.ready)
}

// Gateway returns the intents of the last IDENTIFY and how many
// heartbeats the gateway answered.
func (f *Discord) Gateway() (intents, heartbeats int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intents, f.heartbeats
}

// WaitFor waits until cond holds, checking after every request or gateway
// event. cond may call the fake's accessors.
func (f *Discord) WaitFor(what string, cond func() bool) {
	f.t.Helper()
	waitFor(f.t, what, cond, func() <-chan struct{} {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.changed
	})
}

// DeferredFlags returns the flags of the deferred response of the
// interaction with this token, and whether it was deferred with a message.
func (f *Discord) DeferredFlags(token string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flags, ok := f.deferred[token]
	return flags, ok
}

// FollowupEditedOriginal reports whether a follow-up of this token landed
// on the deferred response (it was sent before the response was edited).
func (f *Discord) FollowupEditedOriginal(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.editedByFollowup, token)
}
