package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// testSecret is made of parts: no secret-shaped literal in the source.
var testSecret = "sink-" + "test-" + "0123456789abcdef"

// receiver is an HTTP endpoint on 127.0.0.1 that verifies every request
// as docs/webhook-sink.md tells receivers to, and keeps what it got.
type receiver struct {
	srv    *httptest.Server
	status int
	mu     sync.Mutex
	got    []received
}

type received struct {
	header http.Header
	body   []byte
	msg    Message
	err    error // Verify's answer
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusNoContent}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		x := received{header: r.Header.Clone(), body: body, err: Verify(testSecret, r.Header, body, time.Now(), 0)}
		_ = json.Unmarshal(body, &x.msg)
		rc.mu.Lock()
		rc.got = append(rc.got, x)
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func newSink(t *testing.T, url string) *Sink {
	t.Helper()
	s, err := New(Options{URL: url, Secret: testSecret, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSendSignsAndShapesEachEvent: a new message (its idempotency key as
// its id), a reply in its thread and an update of it arrive signed, with
// the documented headers and body.
func TestSendSignsAndShapesEachEvent(t *testing.T) {
	rc := newReceiver(t)
	s := newSink(t, rc.srv.URL)
	ctx := context.Background()
	id, err := s.Send(ctx, chat.Reply{Platform: chat.Webhook, Channel: "oncall", Kind: chat.KindError, Text: "*[FIRING:1] HighErrorRate*",
		Fields: []chat.Field{{Label: "Alerts", Value: "HighErrorRate: 1 firing"}}, Table: &chat.Table{Header: []string{"a"}, Rows: [][]string{{"b"}}},
		Buttons: []chat.Button{{Label: "Silence 1h", Action: "run", Value: "opaque"}}, Context: []string{"receiver parley"},
		IdempotencyKey: "parley-0123456789abcdef01234567"})
	if err != nil {
		t.Fatal(err)
	}
	if id != "parley-0123456789abcdef01234567" {
		t.Errorf("id = %q, want the idempotency key", id)
	}
	if _, err := s.Send(ctx, chat.Reply{Platform: chat.Webhook, Channel: "oncall", Thread: id, Text: "+1 alert",
		Images: []chat.Image{{Name: "chart.png", ContentType: "image/png", Data: []byte("\x89PNG")}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Send(ctx, chat.Reply{Platform: chat.Webhook, Channel: "oncall", UpdateOf: id, Text: "*[RESOLVED] HighErrorRate*", Kind: chat.KindSuccess}); err != nil || got != id {
		t.Fatalf("update = %q, %v; want %q", got, err, id)
	}
	got := rc.all()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, want := range []string{"message", "reply", "update"} {
		r := got[i]
		if r.err != nil {
			t.Errorf("request %d does not verify: %v", i, r.err)
		}
		if r.msg.Event != want || r.header.Get(HeaderEvent) != want || r.header.Get(HeaderID) != r.msg.ID || r.msg.Version != "1" || r.msg.Channel != "oncall" {
			t.Errorf("request %d: event %q (header %q), id %q (header %q), version %q, channel %q", i, r.msg.Event, r.header.Get(HeaderEvent),
				r.msg.ID, r.header.Get(HeaderID), r.msg.Version, r.msg.Channel)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
	}
	m := got[0].msg
	if m.Kind != "error" || len(m.Fields) != 1 || m.Table == nil || len(m.Actions) != 1 || m.Actions[0] != "Silence 1h" || m.SentAt.IsZero() {
		t.Errorf("message = %+v", m)
	}
	if strings.Contains(string(got[0].body), "opaque") {
		t.Error("a button's value (meant for the chat pipeline) was sent")
	}
	if r := got[1].msg; r.Thread != id || len(r.Images) != 1 || r.ID == id {
		t.Errorf("reply = %+v", r)
	} else if b, _ := base64.StdEncoding.DecodeString(r.Images[0].Data); string(b) != "\x89PNG" {
		t.Errorf("image data = %q", b)
	}
	if u := got[2].msg; u.ID != id || u.Thread != "" || u.Kind != "success" {
		t.Errorf("update = %+v", u)
	}
}

// TestSendFailures: what the receiver answers decides the error kind (the
// incident manager retries any failure until the message expires);
// redirects are not followed; no error holds the URL's credentials or the
// secret.
func TestSendFailures(t *testing.T) {
	for _, c := range []struct {
		status int
		want   error
	}{
		{http.StatusInternalServerError, action.ErrUnavailable},
		{http.StatusServiceUnavailable, action.ErrUnavailable},
		{http.StatusTooManyRequests, action.ErrUnavailable},
		{http.StatusRequestTimeout, action.ErrUnavailable},
		{http.StatusUnauthorized, action.ErrForbidden},
		{http.StatusForbidden, action.ErrForbidden},
		{http.StatusBadRequest, action.ErrInvalid},
		{http.StatusFound, action.ErrInvalid},
	} {
		rc := newReceiver(t)
		rc.status = c.status
		u := strings.Replace(rc.srv.URL, "http://", "http://user:"+testSecret+"@", 1)
		s := newSink(t, u)
		_, err := s.Send(context.Background(), chat.Reply{Channel: "oncall", Text: "x"})
		if !errors.Is(err, c.want) {
			t.Errorf("status %d: %v, want %v", c.status, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("status %d: error shows the URL's password: %v", c.status, err)
		}
	}
	// Nothing listens: unavailable, without the credentials.
	s := newSink(t, "http://user:"+testSecret+"@127.0.0.1:1/hook")
	if _, err := s.Send(context.Background(), chat.Reply{Channel: "oncall", Text: "x"}); !errors.Is(err, action.ErrUnavailable) || strings.Contains(err.Error(), testSecret) {
		t.Errorf("unreachable: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no url":       {Secret: testSecret},
		"relative url": {URL: "/hook", Secret: testSecret},
		"ftp":          {URL: "ftp://example.com/x", Secret: testSecret},
		"short secret": {URL: "https://example.com/x", Secret: "short"},
		"neg timeout":  {URL: "https://example.com/x", Secret: testSecret, Timeout: -time.Second},
	} {
		if _, err := New(o); !errors.Is(err, action.ErrNotConfigured) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error shows the secret", name)
		}
	}
	p := Platform()
	for id, ok := range map[string]bool{"oncall": true, "team.payments-1": true, "": false, "a b": false, "-x": false, strings.Repeat("a", 65): false} {
		if err := p.Check(id); (err == nil) != ok {
			t.Errorf("Check(%q) = %v", id, err)
		}
	}
}

// TestVerifyRefusesForgeriesAndReplays: a changed body, another secret, a
// missing or stale timestamp all fail.
func TestVerifyRefusesForgeriesAndReplays(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"version":"1","event":"message","id":"x"}`)
	h := http.Header{}
	ts := "1800000000"
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(testSecret, ts, body))
	if err := Verify(testSecret, h, body, now, 0); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}
	if err := Verify(testSecret, h, append(body, ' '), now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed body: %v", err)
	}
	if err := Verify("another-secret-0123456789", h, body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other secret: %v", err)
	}
	if err := Verify(testSecret, h, body, now.Add(6*time.Minute), 0); !errors.Is(err, ErrStale) {
		t.Errorf("replayed 6 minutes later: %v", err)
	}
	h2 := h.Clone()
	h2.Del(HeaderTimestamp)
	if err := Verify(testSecret, h2, body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no timestamp: %v", err)
	}
	// The timestamp is signed: moving it breaks the signature.
	h3 := h.Clone()
	h3.Set(HeaderTimestamp, "1800000001")
	if err := Verify(testSecret, h3, body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("moved timestamp: %v", err)
	}
}

// TestDocumentedPythonVerifier runs the Python function of
// docs/webhook-sink.md, as printed there, on requests the sink signed: it
// accepts them, and refuses a changed body, another secret and a stale
// timestamp.
func TestDocumentedPythonVerifier(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_INTEGRATION") != "" {
			t.Fatal("python3 is needed to run the documented verifier")
		}
		t.Skip("no python3")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "webhook-sink.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(code, "def verify(") {
		t.Fatal("no python verifier in docs/webhook-sink.md")
	}
	rc := newReceiver(t)
	s := newSink(t, rc.srv.URL)
	if _, err := s.Send(context.Background(), chat.Reply{Channel: "oncall", Text: "ünïcode *FIRING* \"quoted\"", Fields: []chat.Field{{Label: "a", Value: "b"}}}); err != nil {
		t.Fatal(err)
	}
	r := rc.all()[0]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "body"), r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	script := code + `
import sys
body = open(sys.argv[1], "rb").read()
headers = {"X-Parley-Timestamp": sys.argv[2], "X-Parley-Signature": sys.argv[3]}
secret = sys.argv[4].encode()
checks = [
    verify(secret, headers, body),
    not verify(secret, headers, body + b" "),
    not verify(b"another-secret-0123456789", headers, body),
    not verify(secret, headers, body, now=int(sys.argv[2]) + 301),
]
print(" ".join("ok" if c else "FAIL" for c in checks))
`
	if err := os.WriteFile(filepath.Join(dir, "verify.py"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, filepath.Join(dir, "verify.py"), filepath.Join(dir, "body"),
		r.header.Get(HeaderTimestamp), r.header.Get(HeaderSignature), testSecret).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok ok ok ok" {
		t.Fatalf("documented verifier: %s (%v)", out, err)
	}
}

// ExampleVerify is a receiver's check of a request.
func ExampleVerify() {
	secret := "sink-" + "example-secret-0123"
	body := []byte(`{"version":"1","event":"message","id":"m1","channel":"oncall","text":"hi"}`)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set(HeaderTimestamp, "1800000000")
	h.Set(HeaderSignature, Sign(secret, "1800000000", body))
	if err := Verify(secret, h, body, now, 0); err != nil {
		panic(err)
	}
	fmt.Println("verified")
	// Output: verified
}
