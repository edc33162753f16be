package incident

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWebhookRefusals(t *testing.T) {
	h := startManager(t, openDB(t, t.TempDir()), Options{MaxBody: 4096})
	good, _ := json.Marshal(payload("g", map[string]string{"alertname": "X"}, alert("X", "fp", Firing)))
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	mutate := func(f func(p map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	alertField := func(k string, v any) func(map[string]any) {
		return func(p map[string]any) { p["alerts"].([]any)[0].(map[string]any)[k] = v }
	}
	tests := []struct {
		name    string
		body    []byte
		headers map[string]string
		want    int
		msg     string
	}{
		{"no credentials", good, nil, 401, "unauthorized"},
		{"wrong token", good, map[string]string{"Authorization": "Bearer nope"}, 401, "unauthorized"},
		{"token as basic", good, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+testToken))}, 401, "unauthorized"},
		{"oversized", append(good[:len(good)-1], []byte(`,"pad":"`+strings.Repeat("x", 5000)+`"}`)...), bearer, 413, "larger than 4096"},
		{"malformed JSON", []byte(`{"version":"4",`), bearer, 400, "truncated body"},
		{"not an object", []byte(`[1,2]`), bearer, 400, "wrong type"},
		{"two values", append(append([]byte{}, good...), good...), bearer, 400, "more than one JSON value"},
		{"wrong version", mutate(func(p map[string]any) { p["version"] = "3" }), bearer, 400, `version "3" is not supported`},
		{"no group key", mutate(func(p map[string]any) { delete(p, "groupKey") }), bearer, 400, "groupKey is required"},
		{"bad status", mutate(func(p map[string]any) { p["status"] = "burning" }), bearer, 400, `status "burning"`},
		{"no receiver", mutate(func(p map[string]any) { p["receiver"] = "" }), bearer, 400, "receiver is required"},
		{"no alerts", mutate(func(p map[string]any) { p["alerts"] = []any{} }), bearer, 400, "alerts is empty"},
		{"no fingerprint", mutate(alertField("fingerprint", "")), bearer, 400, "fingerprint is required"},
		{"no startsAt", mutate(alertField("startsAt", "0001-01-01T00:00:00Z")), bearer, 400, "startsAt is required"},
		{"bad time", mutate(alertField("startsAt", "yesterday")), bearer, 400, "malformed body"},
		{"resolved without end", mutate(func(p map[string]any) {
			a := p["alerts"].([]any)[0].(map[string]any)
			a["status"], a["endsAt"] = "resolved", "0001-01-01T00:00:00Z"
		}), bearer, 400, "resolved without endsAt"},
		{"not JSON content", good, map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "text/plain"}, 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL, bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.msg) {
				t.Errorf("status %d %q, want %d containing %q", resp.StatusCode, body, tt.want, tt.msg)
			}
			if strings.Contains(string(body), testToken) {
				t.Errorf("answer reveals the token: %q", body)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	resp, err := h.srv.Client().Get(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
	h.idle(t)
	if n := len(h.sender.all()); n != 0 {
		t.Errorf("refused requests posted %d replies", n)
	}
	if n := len(h.audit.events); n != 0 {
		t.Errorf("refused requests made %d audit events", n)
	}
	if h.met.hook("unauthorized") != 3 || h.met.hook("too_large") != 1 || h.met.hook("accepted") != 0 {
		t.Errorf("webhook counters: unauthorized %d, too_large %d, accepted %d", h.met.hook("unauthorized"), h.met.hook("too_large"), h.met.hook("accepted"))
	}
	// And the good one goes through.
	if code := h.postRaw(t, good, bearer); code != 200 {
		t.Errorf("good notification = %d", code)
	}
	h.sender.wait(t, "post", func(s sent) bool { return true })
}

func TestWebhookBasicAuth(t *testing.T) {
	h := startManager(t, openDB(t, t.TempDir()), Options{Auth: Auth{Username: "alertmanager", Password: "pw-SECRET"}})
	good, _ := json.Marshal(payload("g", map[string]string{"alertname": "X"}, alert("X", "fp", Firing)))
	basic := func(u, p string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))}
	}
	for _, tt := range []struct {
		headers map[string]string
		want    int
	}{
		{basic("alertmanager", "wrong"), 401},
		{basic("someone", "pw-SECRET"), 401},
		{map[string]string{"Authorization": "Bearer pw-SECRET"}, 401},
		{basic("alertmanager", "pw-SECRET"), 200},
	} {
		if got := h.postRaw(t, good, tt.headers); got != tt.want {
			t.Errorf("%v = %d, want %d", tt.headers, got, tt.want)
		}
	}
}

// TestWebhookQueueFull fills the queue of a manager that is not running:
// Alertmanager is told to retry (503 with Retry-After), and nothing is
// lost of what was accepted: once the manager runs, both stored groups
// are posted, and the refused one, sent again, too.
func TestWebhookQueueFull(t *testing.T) {
	rs := newRecSender(t)
	m, err := New(Options{Sender: rs, DB: openDB(t, t.TempDir()), Audit: &recAudit{}, Auth: Auth{BearerToken: testToken},
		DefaultChannel: "slack:C1", QueueSize: 2, GroupWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, m)
	send := func(i int) *http.Response {
		body, err := json.Marshal(payload("g"+string(rune('a'+i)), map[string]string{"alertname": "X"}, alert("X", "fp", Firing)))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var codes []int
	var full *http.Response
	for i := range 3 {
		full = send(i)
		codes = append(codes, full.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 503 {
		t.Errorf("codes = %v, want 200 200 503", codes)
	}
	if ra := full.Header.Get("Retry-After"); ra == "" {
		t.Error("503 of a full queue without Retry-After")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for _, g := range []string{"ga", "gb"} {
		eventually(t, "the stored group "+g+" posted", func() bool { return postedGroup(m, g) })
	}
	// Alertmanager's retry of the refused one.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code := send(2).StatusCode; code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retry of the refused notification still refused after 30s")
		}
	}
	eventually(t, "the retried group posted", func() bool { return postedGroup(m, "gc") })
	if posts, _ := rs.tops(); len(posts) != 3 {
		t.Errorf("%d messages posted, want 3 (one per group)", len(posts))
	}
}

// eventually waits up to 30s for ok.
func eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// postedGroup reports whether the group's message id is recorded.
func postedGroup(m *Manager, key string) bool {
	rec, ok, err := m.st.load(context.Background(), key)
	return err == nil && ok && rec.messageID != ""
}

func TestOptionsAndNoSecretsInErrors(t *testing.T) {
	base := func() Options {
		return Options{Sender: newRecSender(t), DB: openDB(t, t.TempDir()), Audit: &recAudit{}, Auth: Auth{BearerToken: testToken}, DefaultChannel: "slack:C1"}
	}
	for name, f := range map[string]func(*Options){
		"no sender":       func(o *Options) { o.Sender = nil },
		"no db":           func(o *Options) { o.DB = nil },
		"no audit":        func(o *Options) { o.Audit = nil },
		"no auth":         func(o *Options) { o.Auth = Auth{} },
		"both auths":      func(o *Options) { o.Auth.Username, o.Auth.Password = "u", testToken },
		"bad default":     func(o *Options) { o.DefaultChannel = "C1" },
		"bad window":      func(o *Options) { o.Window = "soon" },
		"negative wait":   func(o *Options) { o.GroupWait = -time.Second },
		"user without pw": func(o *Options) { o.Auth = Auth{Username: "u"} },
	} {
		o := base()
		f(&o)
		_, err := New(o)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error reveals the secret: %v", name, err)
		}
	}
	if _, err := New(base()); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
