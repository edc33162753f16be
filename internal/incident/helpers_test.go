package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/actions/loki"
	"github.com/parley-chatops/parley/actions/prometheus"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/store"
)

const testToken = "am-SECRET-token-0123456789"

// sent is one reply the recording sender got, with the id it answered.
type sent struct {
	chat.Reply
	ID string
	At time.Time
}

// recSender is a chat.Sender that records every reply. It answers a new
// message with a new id and an edit with the id edited, as Slack does.
type recSender struct {
	mu      sync.Mutex
	replies []sent
	n       int
	fail    func(r chat.Reply) error
	// delay makes every Send take this long, whatever its context says,
	// like a platform that answers late.
	delay time.Duration
	got   chan sent
	// minEdit, when set, makes the test fail if two edits of one message
	// come closer together than this.
	minEdit time.Duration
	t       testing.TB
	lastAt  map[string]time.Time
}

func newRecSender(t testing.TB) *recSender {
	return &recSender{t: t, got: make(chan sent, 10000), lastAt: map[string]time.Time{}}
}

func (s *recSender) Send(_ context.Context, r chat.Reply) (string, error) {
	s.mu.Lock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(r); err != nil {
			return "", err
		}
	}
	id := r.UpdateOf
	now := time.Now()
	if id == "" {
		s.n++
		id = fmt.Sprintf("msg-%d", s.n)
	} else if s.minEdit > 0 {
		if last, ok := s.lastAt[id]; ok && now.Sub(last) < s.minEdit {
			s.t.Errorf("message %s edited %s after its previous send; want at least %s", id, now.Sub(last), s.minEdit)
		}
	}
	if r.Thread == "" {
		s.lastAt[id] = now
	}
	x := sent{Reply: r, ID: id, At: now}
	s.replies = append(s.replies, x)
	select {
	case s.got <- x:
	default:
	}
	return id, nil
}

func (s *recSender) all() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sent(nil), s.replies...)
}

// tops are the group messages (posts and edits, not thread notes).
func (s *recSender) tops() (posts, edits []sent) {
	for _, r := range s.all() {
		switch {
		case r.Thread != "":
		case r.UpdateOf == "":
			posts = append(posts, r)
		default:
			edits = append(edits, r)
		}
	}
	return posts, edits
}

// wait waits for a reply that satisfies ok.
func (s *recSender) wait(t testing.TB, what string, ok func(sent) bool) sent {
	t.Helper()
	for _, r := range s.all() {
		if ok(r) {
			return r
		}
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-s.got:
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no reply: %s; got %d replies:\n%s", what, len(s.all()), dump(s.all()))
			return sent{}
		}
	}
}

func dump(rs []sent) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "--- id=%s update=%q thread=%q\n%s\n", r.ID, r.UpdateOf, r.Thread, render(r.Reply))
	}
	return b.String()
}

// render is the whole visible text of a reply.
func render(r chat.Reply) string {
	var b strings.Builder
	b.WriteString(r.Text + "\n")
	for _, f := range r.Fields {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	if r.Table != nil {
		for _, row := range r.Table.Rows {
			b.WriteString(strings.Join(row, " | ") + "\n")
		}
	}
	b.WriteString(r.Code + "\n")
	for _, btn := range r.Buttons {
		b.WriteString("[" + btn.Label + "] ")
	}
	b.WriteString(strings.Join(r.Context, "\n"))
	return b.String()
}

// recAudit is an Auditor that keeps events in memory.
type recAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *recAudit) Record(_ context.Context, e audit.Event) (audit.Event, error) {
	if !e.Type.Valid() {
		return audit.Event{}, fmt.Errorf("unknown type %q", e.Type)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e.Seq = int64(len(a.events) + 1)
	a.events = append(a.events, e)
	return e, nil
}

func (a *recAudit) of(t audit.Type) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// counters is a Metrics that counts.
type counters struct {
	webhook                                                   sync.Map // outcome -> *atomic.Int64
	alerts, duplicates, posted, updated, unrouted, latencyNum atomic.Int64
	stateFails, sendFails, expired, digested                  atomic.Int64
	outboxWaiting                                             atomic.Int64
}

func (c *counters) Webhook(o string) {
	v, _ := c.webhook.LoadOrStore(o, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}
func (c *counters) hook(o string) int64 {
	v, ok := c.webhook.Load(o)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}
func (c *counters) AlertsReceived(n int)   { c.alerts.Add(int64(n)) }
func (c *counters) Duplicate()             { c.duplicates.Add(1) }
func (c *counters) Posted(d time.Duration) { c.posted.Add(1); c.latencyNum.Add(int64(d)) }
func (c *counters) Updated()               { c.updated.Add(1) }
func (c *counters) Unrouted()              { c.unrouted.Add(1) }
func (c *counters) StateSaveFailed()       { c.stateFails.Add(1) }
func (c *counters) SendFailed(string)      { c.sendFails.Add(1) }
func (c *counters) Expired(string)         { c.expired.Add(1) }
func (c *counters) Digested()              { c.digested.Add(1) }
func (c *counters) Outbox(n int, _ time.Duration) {
	c.outboxWaiting.Store(int64(n))
}

// openDB opens (migrating) a SQLite file in dir, so a second manager can
// reopen it.
func openDB(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "incidents.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// harness is a Manager running until the test ends.
type harness struct {
	m      *Manager
	sender *recSender
	audit  *recAudit
	met    *counters
	srv    *httptest.Server
	stop   func()
	ok     atomic.Int64 // notifications answered 200
}

func startManager(t testing.TB, db *store.DB, o Options) *harness {
	t.Helper()
	h := &harness{sender: newRecSender(t), audit: &recAudit{}, met: &counters{}}
	if o.Sender == nil {
		o.Sender = h.sender
	}
	o.DB, o.Audit, o.Metrics = db, h.audit, h.met
	if o.Auth == (Auth{}) {
		o.Auth = Auth{BearerToken: testToken}
	}
	if o.DefaultChannel == "" && len(o.Routes) == 0 {
		o.DefaultChannel = "slack:C0INCIDENT"
	}
	if o.GroupWait == 0 {
		o.GroupWait = 50 * time.Millisecond
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	h.srv = httptest.NewServer(m.Handler())
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			h.srv.Close()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30s of cancellation")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// post sends a payload to the webhook with the test token.
func (h *harness) post(t testing.TB, p any) int {
	t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return h.postRaw(t, body, map[string]string{"Authorization": "Bearer " + testToken})
}

func (h *harness) postRaw(t testing.TB, body []byte, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		h.ok.Add(1)
	}
	return resp.StatusCode
}

// idle waits until the manager has merged every notification answered
// 200 and has nothing left to deliver.
func (h *harness) idle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if h.m.merged.Load() >= h.ok.Load() && h.m.quiet() {
			if n, err := h.m.st.inboxLen(context.Background()); err == nil && n == 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("manager still busy after 30s")
}

var t0 = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

// alert builds one alert.
func alert(name, fp, status string, labels ...string) Alert {
	l := map[string]string{"alertname": name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	a := Alert{Status: status, Labels: l, Annotations: map[string]string{"summary": name + " is firing"},
		StartsAt: t0, Fingerprint: fp, GeneratorURL: "http://prometheus:9090/graph?g0.expr=x"}
	if status == Resolved {
		a.EndsAt = t0.Add(10 * time.Minute)
	}
	return a
}

// payload builds a version 4 notification of a group.
func payload(key string, common map[string]string, alerts ...Alert) Payload {
	status := Resolved
	for _, a := range alerts {
		if a.Status == Firing {
			status = Firing
		}
	}
	return Payload{Version: "4", GroupKey: key, Status: status, Receiver: "parley", GroupLabels: map[string]string{"alertname": common["alertname"]},
		CommonLabels: common, CommonAnnotations: map[string]string{}, ExternalURL: "http://alertmanager:9093", Alerts: alerts}
}

func startServer(t testing.TB, m *Manager) *httptest.Server {
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// specNamed is the real spec of a read action incident.diagnose consults
// (or of incident.diagnose itself), from the package that declares it.
func specNamed(name string) action.Spec {
	for _, s := range slices.Concat(prometheus.Specs(), loki.Specs(), kubernetes.Specs(), Specs()) {
		if s.Name == name {
			return s
		}
	}
	panic("no spec " + name)
}
