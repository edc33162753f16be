package lokisink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
)

var _ audit.Sink = (*Sink)(nil)

const testToken = "tok-5ecret-push-value"

// The fake below stands in for Loki, which cannot run here: it listens on
// 127.0.0.1 and takes POST /loki/api/v1/push with the JSON body Loki
// documents, {"streams":[{"stream":{<labels>},"values":[["<unix ns>",
// "<line>"]]}]}, decoded strictly (unknown fields are an error), and
// answers 204 like Loki, or the statuses a test scripts.

type wirePush struct {
	Streams []wireStream `json:"streams"`
}

type wireStream struct {
	Stream map[string]string `json:"stream"`
	Values [][]string        `json:"values"`
}

type fakeLoki struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	pushes   []wirePush
	headers  []http.Header
	attempts int
	statuses []int         // answered in turn before 204s
	block    chan struct{} // when set, requests wait for it or their cancellation
	pushed   chan struct{} // one value per accepted push
}

func newFakeLoki(t *testing.T) *fakeLoki {
	t.Helper()
	f := &fakeLoki{t: t, pushed: make(chan struct{}, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLoki) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != PushPath {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	// Read the body first: the server notices a client going away (and
	// cancels r.Context) only once the body is consumed.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	block := f.block
	f.attempts++
	status := http.StatusNoContent
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	if status != http.StatusNoContent {
		http.Error(w, "scripted failure", status)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p wirePush
	if err := dec.Decode(&p); err != nil {
		http.Error(w, "bad push: "+err.Error(), http.StatusBadRequest)
		f.t.Errorf("push body is not Loki's JSON: %v", err)
		return
	}
	for _, s := range p.Streams {
		for _, v := range s.Values {
			if len(v) != 2 {
				f.t.Errorf("value %v is not [ns, line]", v)
			}
			if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
				f.t.Errorf("timestamp %q is not unix nanoseconds", v[0])
			}
		}
	}
	f.mu.Lock()
	f.pushes = append(f.pushes, p)
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	f.pushed <- struct{}{}
}

// snapshot returns the accepted pushes and the attempts so far.
func (f *fakeLoki) snapshot() ([]wirePush, []http.Header, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wirePush(nil), f.pushes...), append([]http.Header(nil), f.headers...), f.attempts
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func event(seq int64, typ audit.Type) audit.Event {
	return audit.Event{
		Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Type: typ,
		RequestID: "req-" + strconv.FormatInt(seq, 10), Platform: "slack", Channel: "slack:C1",
		Subject: "slack:U024BE7LH", Action: action.KubernetesScale,
		Params:   action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5},
		Decision: audit.Confirm, Hash: "h" + strconv.FormatInt(seq, 10),
	}
}

func newSink(t *testing.T, f *fakeLoki, mod func(*Options)) (*Sink, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	o := Options{
		URL: f.srv.URL, TenantID: "team-a", BearerToken: testToken,
		Labels:        map[string]string{"env": "test"},
		Client:        f.srv.Client(),
		FlushInterval: time.Hour, // only a full batch or Close pushes, unless a test says otherwise
		MinBackoff:    time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestPushShape(t *testing.T) {
	f := newFakeLoki(t)
	s, logs := newSink(t, f, nil)
	ctx := context.Background()
	e1 := event(1, audit.MessageReceived)
	e1.Text = "scale checkout to 5, my password=hunter2"
	e2 := event(2, audit.ActionSucceeded)
	e2.Outcome = "replicas 3 -> 5"
	e2.Duration = 1500 * time.Millisecond
	e3 := event(3, audit.MessageReceived)
	for _, e := range []audit.Event{e1, e2, e3} {
		if err := s.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	closeSink(t, s)

	pushes, headers, _ := f.snapshot()
	if len(pushes) != 1 {
		t.Fatalf("want one push, got %d", len(pushes))
	}
	if headers[0].Get("X-Scope-OrgID") != "team-a" || headers[0].Get("Authorization") != "Bearer "+testToken {
		t.Errorf("tenant or auth header missing")
	}
	streams := pushes[0].Streams
	if len(streams) != 2 {
		t.Fatalf("want a stream per event type, got %+v", streams)
	}
	want := map[string]string{"app": "parley", "env": "test", "type": string(audit.MessageReceived)}
	if !equalMaps(streams[0].Stream, want) {
		t.Errorf("labels %v, want %v (no subject or action)", streams[0].Stream, want)
	}
	if got := streams[1].Stream["type"]; got != string(audit.ActionSucceeded) {
		t.Errorf("second stream type %q", got)
	}
	if len(streams[0].Values) != 2 || len(streams[1].Values) != 1 {
		t.Fatalf("values per stream: %d, %d", len(streams[0].Values), len(streams[1].Values))
	}
	if streams[0].Values[0][0] != strconv.FormatInt(e1.Time.UnixNano(), 10) {
		t.Errorf("timestamp %s, want the event time", streams[0].Values[0][0])
	}
	var l map[string]any
	if err := json.Unmarshal([]byte(streams[1].Values[0][1]), &l); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"seq": 2.0, "type": "action.succeeded", "subject": "slack:U024BE7LH", "channel": "slack:C1",
		"action": "kubernetes.scale", "decision": "confirm", "outcome": "replicas 3 -> 5",
		"request_id": "req-2", "hash": "h2", "duration_ms": 1500.0, "time": "2026-11-27T10:00:00.002Z",
	} {
		if l[k] != v {
			t.Errorf("line field %s = %v, want %v", k, l[k], v)
		}
	}
	if p, _ := l["params"].(map[string]any); p["replicas"] != 5.0 || p["deployment"] != "checkout" {
		t.Errorf("params %v", l["params"])
	}
	if first := streams[0].Values[0][1]; strings.Contains(first, "hunter2") || !strings.Contains(first, "password=[REDACTED]") {
		t.Errorf("text not redacted: %s", first)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log holds the token")
	}
}

func TestBatching(t *testing.T) {
	f := newFakeLoki(t)
	s, _ := newSink(t, f, func(o *Options) { o.BatchSize = 3 })
	for i := range 7 {
		if err := s.Write(context.Background(), event(int64(i+1), audit.ActionStarted)); err != nil {
			t.Fatal(err)
		}
	}
	closeSink(t, s)
	pushes, _, _ := f.snapshot()
	var sizes []int
	var seqs []string
	for _, p := range pushes {
		n := 0
		for _, st := range p.Streams {
			n += len(st.Values)
			for _, v := range st.Values {
				var l struct{ Seq int }
				_ = json.Unmarshal([]byte(v[1]), &l)
				seqs = append(seqs, strconv.Itoa(l.Seq))
			}
		}
		sizes = append(sizes, n)
	}
	if got := strings.Join(seqs, ","); got != "1,2,3,4,5,6,7" {
		t.Errorf("pushed seqs %s", got)
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Errorf("batch sizes %v, want [3 3 1]", sizes)
	}
}

func TestFlushInterval(t *testing.T) {
	f := newFakeLoki(t)
	s, _ := newSink(t, f, func(o *Options) { o.FlushInterval = 10 * time.Millisecond })
	defer closeSink(t, s)
	if err := s.Write(context.Background(), event(1, audit.ActionStarted)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.pushed: // pushed by the ticker, before any Close
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not pushed on the flush interval")
	}
}

func TestRetries(t *testing.T) {
	f := newFakeLoki(t)
	f.statuses = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError}
	s, _ := newSink(t, f, nil)
	if err := s.Write(context.Background(), event(1, audit.ActionStarted)); err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	pushes, _, attempts := f.snapshot()
	if len(pushes) != 1 || attempts != 4 {
		t.Errorf("pushes %d after %d attempts, want 1 after 4", len(pushes), attempts)
	}
}

func TestGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		attempts int
	}{
		{"bad request is not retried", []int{400}, 1},
		{"retries are bounded", []int{503, 503, 503, 503, 503, 503, 503}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLoki(t)
			f.statuses = tc.statuses
			s, logs := newSink(t, f, func(o *Options) { o.MaxRetries = 2 })
			if err := s.Write(context.Background(), event(1, audit.ActionStarted)); err != nil {
				t.Fatal(err)
			}
			closeSink(t, s)
			pushes, _, attempts := f.snapshot()
			if len(pushes) != 0 || attempts != tc.attempts {
				t.Errorf("pushes %d, attempts %d, want 0 and %d", len(pushes), attempts, tc.attempts)
			}
			if !strings.Contains(logs.String(), "batch dropped") || strings.Contains(logs.String(), testToken) {
				t.Errorf("log: %s", logs.String())
			}
		})
	}
}

// TestWriteNeverBlocks: with Loki stuck, Write keeps returning at once
// (dropping when the queue is full), and Close gives up at its deadline,
// cancelling the push in flight.
func TestWriteNeverBlocks(t *testing.T) {
	f := newFakeLoki(t)
	f.block = make(chan struct{}) // never released: only cancellation ends a push
	s, logs := newSink(t, f, func(o *Options) { o.QueueSize, o.BatchSize = 2, 1 })
	var full int
	for i := range 10 {
		err := s.Write(context.Background(), event(int64(i+1), audit.ActionStarted))
		if errors.Is(err, ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// One event is in flight at most, two wait in the queue.
	if full < 7 {
		t.Errorf("%d writes dropped, want at least 7", full)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not pushed") {
		t.Errorf("close = %v", err)
	}
	if !errors.Is(s.Write(context.Background(), event(11, audit.ActionStarted)), ErrClosed) {
		t.Errorf("write after close accepted")
	}
	if err := s.Close(context.Background()); err != nil { // a second Close is harmless
		t.Errorf("second close: %v", err)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log holds the token")
	}
}

func TestURLs(t *testing.T) {
	f := newFakeLoki(t)
	base, _ := url.Parse(f.srv.URL)
	for _, tc := range []struct{ url, path string }{
		{f.srv.URL, PushPath},
		{f.srv.URL + "/", PushPath},
		{f.srv.URL + "/loki/api/v1/push", PushPath},
		{f.srv.URL + "/insert/loki/api/v1/push", "/insert/loki/api/v1/push"},
	} {
		s, err := New(Options{URL: tc.url})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := url.Parse(s.push); got.Path != tc.path || got.Host != base.Host {
			t.Errorf("URL %s pushes to %s", tc.url, s.push)
		}
		closeSink(t, s)
	}
	u, _ := url.Parse(f.srv.URL)
	u.User = url.UserPassword("parley", testToken)
	s, err := New(Options{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	if strings.Contains(s.push, testToken) || s.o.Password != testToken {
		t.Errorf("user info not moved to basic auth")
	}
}

func TestNewErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{URL: "loki:3100"},
		{URL: "http://loki", BearerToken: testToken, Password: "x"},
		{URL: "http://loki", Labels: map[string]string{"type": "x"}},
		{URL: "http://loki", Labels: map[string]string{"bad label": "x"}},
		{URL: "http://loki", QueueSize: -1},
		{URL: "http://loki", FlushInterval: -time.Second},
	} {
		s, err := New(o)
		if err == nil {
			closeSink(t, s)
			t.Errorf("New(%+v) accepted", o)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error holds the token: %v", err)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
