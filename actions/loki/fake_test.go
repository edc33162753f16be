package loki

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// The fake below stands in for Loki, which cannot run here. It listens on
// 127.0.0.1 and speaks Loki's HTTP query API: GET /loki/api/v1/query_range
// answered with the documented JSON bodies
// ({"status":"success","data":{"resultType":"streams"|"matrix"|"vector",
// "result":[...],"stats":{...}}}), and errors the way Loki sends them
// (400 with the LogQL parser's message as text/plain, 429, 5xx).

// Secrets used to check that credentials never leak into errors or logs.
const (
	testToken    = "tok-5ecret-b3arer-value"
	testPassword = "pa55-5ecret-basic-value"
)

// fakeLoki records the query requests it receives and answers each with
// its handler.
type fakeLoki struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []*http.Request
	answer   http.HandlerFunc
}

func newFakeLoki(t *testing.T, answer http.HandlerFunc) *fakeLoki {
	t.Helper()
	f := &fakeLoki{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != queryRangePath {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		answer := f.answer
		f.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// last returns the last request received.
func (f *fakeLoki) last() *http.Request {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		f.t.Fatal("Loki received no request")
	}
	return f.requests[len(f.requests)-1]
}

func jsonAnswer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func textAnswer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// testNow is the fixed clock of the tests: 2026-11-27T10:00:00Z.
var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// newQuery returns a loki.query pointed at f with a bearer token, a
// tenant and a log buffer that tests can search for secrets.
func newQuery(t *testing.T, f *fakeLoki, mod func(*Options)) (*Query, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	o := Options{
		URL:         f.srv.URL,
		TenantID:    "team-a",
		BearerToken: testToken,
		Client:      f.srv.Client(),
		Now:         func() time.Time { return testNow },
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("options: %v", err)
	}
	return New(o), &logs
}

func run(q *Query, p action.Params) (action.Result, error) {
	return q.Run(context.Background(), action.Request{Action: action.LokiQuery, Params: p, RequestID: "req-1"})
}

// noSecrets fails when a credential shows up in s.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testToken, testPassword} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a credential: %s", what, s)
		}
	}
}
