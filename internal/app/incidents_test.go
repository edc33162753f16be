package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/adapters/webhook"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// amToken is the Alertmanager webhook's bearer token in these tests (made
// of parts: no token-shaped literal in the source).
var amToken = "am-" + "test-" + "SECRET-webhook-42"

// incidentsSection routes every group to channel, with short waits and a
// message for each group (these tests send a few groups at once, not a
// storm).
func incidentsSection(channel string) string {
	return fmt.Sprintf(`incidents:
  auth: {bearer_token: {env: AM_TOKEN}}
  default_channel: %q
  group_wait: 300ms
  digest_after: 50
`, channel)
}

// alertGroup is a notification of group n: one alert of service svc-n.
func alertGroup(n int, status string) incident.Payload {
	svc := fmt.Sprintf("svc-%02d", n)
	a := incident.Alert{Status: status, Labels: map[string]string{"alertname": "Outage", "service": svc},
		Annotations: map[string]string{"summary": svc + " is down"}, StartsAt: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC),
		Fingerprint: "fp-" + svc}
	if status == incident.Resolved {
		a.EndsAt = a.StartsAt.Add(10 * time.Minute)
	}
	return incident.Payload{Version: "4", GroupKey: "{}:{service=\"" + svc + "\"}", Status: status, Receiver: "parley",
		GroupLabels: map[string]string{"service": svc}, CommonLabels: map[string]string{"alertname": "Outage", "service": svc},
		CommonAnnotations: map[string]string{}, ExternalURL: "http://alertmanager:9093", Alerts: []incident.Alert{a}}
}

// notify posts a notification to the replica's Alertmanager webhook as
// Alertmanager does, and returns the status.
func (r *serveReplica) notify(t *testing.T, p incident.Payload) int {
	t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, r.url+"/webhooks/alertmanager", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+amToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	drain(t, resp)
	return resp.StatusCode
}

func (r *serveReplica) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(r.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var svcNameRE = regexp.MustCompile(`svc-\d\d`)

// incidentMessages is what channel shows of each group: the ts of each
// message naming the service, and its latest content.
func incidentMessages(f *chattest.Slack, channel string) (bySvc map[string][]string, content map[string]string) {
	posts, updates := f.Snapshot()
	bySvc, content = map[string][]string{}, map[string]string{}
	for _, p := range posts {
		if p.Channel != channel || p.Thread != "" {
			continue
		}
		content[p.TS] = p.Text + p.Blocks
		if svc := svcNameRE.FindString(p.Text); svc != "" {
			bySvc[svc] = append(bySvc[svc], p.TS)
		}
	}
	for _, u := range updates {
		if _, ok := content[u.TS]; ok {
			content[u.TS] = u.Text + u.Blocks
		}
	}
	return bySvc, content
}

// incidentEvents counts the audit events of each type and group.
func incidentEvents(t *testing.T, db *store.DB) map[audit.Type]map[string]int {
	t.Helper()
	out := map[audit.Type]map[string]int{}
	err := audit.New(db, audit.Options{}).Each(context.Background(), audit.Filter{}, func(e audit.Event) error {
		if out[e.Type] == nil {
			out[e.Type] = map[string]int{}
		}
		out[e.Type][e.Details["group_key"]]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwoReplicasTakeTheAlertmanagerWebhook: two "parley serve" replicas
// on one PostgreSQL, with leader election (so one is a follower), and the
// Alertmanager webhook on both. Notifications sent to either replica, some
// to both (as Alertmanager's retry may land on the other replica behind
// the Service), are answered 200 by both, never 503, and each alert group
// is posted exactly once and each change audited once. Then the replica
// that took the firings stops; the resolutions sent to the other are
// delivered as edits of the same messages: the outbox and the groups'
// state are in the store, not in a replica.
func TestTwoReplicasTakeTheAlertmanagerWebhook(t *testing.T) {
	kc := kubetest.Shared(t)
	dsn := pgtest.Start(t)
	kubeconfig := kc.Kubeconfig(t)
	ns := kc.NewNamespace(t, "webhook")
	f := chattest.NewSlack(t)
	a := startServe(t, "a", dsn, kubeconfig, ns, f.URL(), incidentsSection("slack:C0INC"))
	b := startServe(t, "b", dsn, kubeconfig, ns, f.URL(), incidentsSection("slack:C0INC"))

	const groups = 6
	var wg sync.WaitGroup
	codes := make(chan string, 3*groups)
	for i := range groups {
		r := []*serveReplica{a, b}[i%2]
		wg.Go(func() {
			if code := r.notify(t, alertGroup(i, incident.Firing)); code != http.StatusOK {
				codes <- fmt.Sprintf("%s: group %d firing: %d", r.name, i, code)
			}
		})
		if i%3 == 0 { // the same notification to the other replica too
			other := []*serveReplica{b, a}[i%2]
			wg.Go(func() {
				if code := other.notify(t, alertGroup(i, incident.Firing)); code != http.StatusOK {
					codes <- fmt.Sprintf("%s: group %d firing again: %d", other.name, i, code)
				}
			})
		}
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		t.Error(c)
	}
	f.WaitFor("every group posted", func() bool {
		bySvc, _ := incidentMessages(f, "C0INC")
		return len(bySvc) == groups
	})

	// The replica that took the even groups stops; the resolutions go to
	// the other, which leads now (or already did).
	a.stop()
	for i := range groups {
		if code := b.notify(t, alertGroup(i, incident.Resolved)); code != http.StatusOK {
			t.Errorf("b: group %d resolved: %d", i, code)
		}
	}
	f.WaitFor("every message showing its group resolved", func() bool {
		bySvc, content := incidentMessages(f, "C0INC")
		if len(bySvc) != groups {
			return false
		}
		for _, ts := range bySvc {
			if !strings.Contains(content[ts[0]], "[RESOLVED]") {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // stragglers would show now
	bySvc, _ := incidentMessages(f, "C0INC")
	for svc, ts := range bySvc {
		if len(ts) != 1 {
			t.Errorf("%s posted %d times, want once", svc, len(ts))
		}
	}
	db, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := incidentEvents(t, db)
	for i := range groups {
		key := alertGroup(i, incident.Firing).GroupKey
		if n := ev[audit.IncidentReceived][key]; n != 2 {
			t.Errorf("group %d: %d incident.received events, want 2 (firing, resolved)", i, n)
		}
		if n := ev[audit.IncidentPosted][key]; n != 1 {
			t.Errorf("group %d: %d incident.posted events, want 1", i, n)
		}
	}
	// The outbox empties once the evidence gathered after the posts is
	// shown too.
	var inbox, outbox int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := db.QueryRowContext(context.Background(), `SELECT (SELECT COUNT(*) FROM incident_inbox), (SELECT COUNT(*) FROM incident_outbox)`).Scan(&inbox, &outbox); err != nil {
			t.Fatal(err)
		}
		if inbox+outbox == 0 || time.Now().After(deadline) {
			break
		}
	}
	if inbox != 0 || outbox != 0 {
		t.Errorf("inbox %d, outbox %d rows left, want none", inbox, outbox)
		rows, err := db.QueryContext(context.Background(), `SELECT group_key, due_at, attempts, last_error FROM incident_outbox`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var key, lastErr string
			var due, attempts int64
			if err := rows.Scan(&key, &due, &attempts, &lastErr); err != nil {
				t.Fatal(err)
			}
			t.Logf("outbox: %s due %s, %d attempts, %q", key, time.UnixMilli(due).UTC().Format(time.RFC3339Nano), attempts, lastErr)
		}
	}
}

// TestServeRidesOutAChatOutage runs "parley serve" (SQLite, the Slack
// Events API against the fake Slack) while Slack is down: for 60 seconds
// every Web API call fails with 503, from before serve starts. serve
// starts anyway, /readyz is 200 and says Slack is down, and the webhook
// takes alerts; 40 seconds in, serve is restarted (alerts keep coming);
// when Slack is back, every incident message appears once, showing the
// latest state of its group. Nothing expires, nothing is lost.
func TestServeRidesOutAChatOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60-second outage")
	}
	const outage = 60 * time.Second
	f := chattest.NewSlack(t)
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	f.SetFail(func(method string, _ int) (int, string, string) {
		if down.Load() {
			refused.Add(1)
			return http.StatusServiceUnavailable, "", ""
		}
		return 0, "", ""
	})
	start := time.Now()
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
database: %q
evals: {reports_dir: %q}
log: {level: debug}
slack:
  mode: events
  bot_token: {env: SLACK_BOT_TOKEN}
  signing_secret: {env: SLACK_SIGNING_SECRET}
  api_url: %q
`, port, filepath.Join(dir, "parley.db"), dir, f.URL())+incidentsSection("slack:C0INC")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK_BOT_TOKEN": chattest.SlackBotToken, "SLACK_SIGNING_SECRET": chattest.SlackSigningSecret, "AM_TOKEN": amToken}

	s1 := launch(t, "before", cfg, port, env)
	waitFor(t, 30*time.Second, "readyz saying slack is down", func() bool {
		code, body := s1.readyz(t)
		return code == http.StatusOK && strings.Contains(body, "slack: down since")
	})
	for i := range 3 {
		if code := s1.notify(t, alertGroup(i, incident.Firing)); code != http.StatusOK {
			t.Fatalf("group %d during the outage: %d", i, code)
		}
	}
	time.Sleep(40*time.Second - time.Since(start))
	s1.stop()
	s2 := launch(t, "after", cfg, port, env)
	if code, body := s2.readyz(t); code != http.StatusOK || !strings.Contains(body, "slack: ") {
		t.Errorf("readyz after the restart: %d %q", code, body)
	}
	for _, p := range []incident.Payload{alertGroup(0, incident.Resolved), alertGroup(3, incident.Firing)} {
		if code := s2.notify(t, p); code != http.StatusOK {
			t.Fatalf("notification during the outage, after the restart: %d", code)
		}
	}
	if posts, _ := f.Snapshot(); len(posts) != 0 {
		t.Fatalf("%d posts while Slack was down", len(posts))
	}
	time.Sleep(outage - time.Since(start))
	down.Store(false)
	back := time.Now()
	f.WaitFor("every group shown with its latest state", func() bool {
		bySvc, content := incidentMessages(f, "C0INC")
		if len(bySvc) != 4 {
			return false
		}
		return strings.Contains(content[bySvc["svc-00"][0]], "[RESOLVED]")
	})
	delivered := time.Since(back)
	time.Sleep(time.Second) // stragglers would show now
	bySvc, content := incidentMessages(f, "C0INC")
	for svc, ts := range bySvc {
		if len(ts) != 1 {
			t.Errorf("%s posted %d times, want once", svc, len(ts))
		}
	}
	for _, svc := range []string{"svc-01", "svc-02", "svc-03"} {
		if ts := bySvc[svc]; len(ts) == 0 || !strings.Contains(content[ts[0]], "[FIRING:1]") {
			t.Errorf("%s not shown firing", svc)
		}
	}
	waitFor(t, 10*time.Second, "readyz saying slack runs", func() bool {
		_, body := s2.readyz(t)
		return strings.Contains(body, "slack: running")
	})
	s2.stop()
	if !strings.Contains(s1.logs.String(), "chat adapter is down; serve goes on") {
		t.Error("the first serve did not log the adapter down")
	}
	db, err := store.Open(context.Background(), filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := incidentEvents(t, db)
	if n := len(ev[audit.IncidentExpired]); n != 0 {
		t.Errorf("%d incident.expired events, want none", n)
	}
	for i := range 4 {
		if n := ev[audit.IncidentPosted][alertGroup(i, incident.Firing).GroupKey]; n != 1 {
			t.Errorf("group %d: %d incident.posted events, want 1", i, n)
		}
	}
	t.Logf("Slack down %s (%d calls refused), serve restarted at %s: all 4 groups shown %s after Slack came back",
		outage, refused.Load(), 40*time.Second, delivered.Round(time.Millisecond))
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebhookFloodDoesNotStarveAlertmanager: 48 clients flood serve's
// listener (the cap on unauthenticated requests in progress is 8 here):
// 36 post to the Alertmanager webhook without credentials, with a wrong
// token or wrong basic auth, and malformed bodies; 12 trickle unsigned
// bodies to /slack/events, which must read a body to check its signature
// and so holds one of the 8 slots until the read timeout. Meanwhile
// Alertmanager's own notifications, authenticated, are all taken (200):
// the webhook checks its credentials, a header, before it reads anything,
// and does not share the slots of the unauthenticated routes, so the
// flood holds nothing it needs. Every flood request to the webhook gets
// 401.
func TestWebhookFloodDoesNotStarveAlertmanager(t *testing.T) {
	cfg := serveConfig(t, "")
	addr := startHTTP(t, cfg, slog.New(slog.DiscardHandler))
	token := cfg.Incidents.Auth.BearerToken.Value()
	url := "http://" + addr + "/webhooks/alertmanager"

	stop := make(chan struct{})
	var flood sync.WaitGroup
	var floodCodes sync.Map // status -> *atomic.Int64
	count := func(code int) {
		v, _ := floodCodes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 48 {
		if i == 12 {
			time.Sleep(300 * time.Millisecond) // the slow bodies hold the slots
		}
		slow := i < 12 // the slow-body clients first
		flood.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				target, body := url, io.Reader(strings.NewReader(`{"version":"4","groupKey":`)) // malformed
				if slow {
					target, body = "http://"+addr+"/slack/events", &trickle{n: 4096}
				}
				req, _ := http.NewRequest(http.MethodPost, target, body)
				req.Header.Set("Content-Type", "application/json")
				switch n % 3 {
				case 1:
					req.Header.Set("Authorization", "Bearer not-the-token")
				case 2:
					req.SetBasicAuth("alertmanager", "guess")
				}
				resp, err := client.Do(req)
				if err != nil {
					if target == url {
						count(-1)
					}
					continue
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					t.Logf("flood request: body cut short: %v", err) // the flood counts statuses only
				}
				resp.Body.Close()
				if target == url {
					count(resp.StatusCode)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the flood is on

	codes := map[int]int{}
	var slowest time.Duration
	for i := range 100 {
		body, _ := json.Marshal(alertGroup(i%40, incident.Firing))
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("authenticated notification %d: %v", i, err)
		}
		drain(t, resp)
		resp.Body.Close()
		slowest = max(slowest, time.Since(began))
		codes[resp.StatusCode]++
	}
	close(stop)
	flood.Wait()
	if codes[http.StatusOK] != 100 {
		t.Errorf("authenticated notifications answered %v, want 100 × 200", codes)
	}
	total := int64(0)
	floodCodes.Range(func(k, v any) bool {
		n := v.(*atomic.Int64).Load()
		total += n
		if k.(int) != http.StatusUnauthorized {
			t.Errorf("%d flood requests answered %d, want 401", n, k)
		}
		return true
	})
	t.Logf("100 authenticated notifications during a flood of %d unauthenticated or malformed webhook requests and 12 slow unsigned event bodies: answered %v, slowest %s",
		total, codes, slowest.Round(time.Millisecond))
}

// trickle is a request body sent a byte every 10ms.
type trickle struct{ n int }

func (r *trickle) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(10 * time.Millisecond)
	r.n--
	p[0] = ' '
	return 1, nil
}

// sinkReceiver is a team's endpoint for the outgoing webhook sink: an
// HTTP server on 127.0.0.1 that checks every request as
// docs/webhook-sink.md tells receivers to (webhook.Verify over the raw
// body) and keeps what it got. The first refuse requests are answered
// 503, as an endpoint that is down would.
type sinkReceiver struct {
	secret string
	mu     sync.Mutex
	refuse int
	got    []sinkDelivery
}

type sinkDelivery struct {
	status int // what the receiver answered
	msg    webhook.Message
	err    error // webhook.Verify's answer
}

func (rc *sinkReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d := sinkDelivery{status: http.StatusNoContent, err: webhook.Verify(rc.secret, r.Header, body, time.Now(), 0)}
	if err := json.Unmarshal(body, &d.msg); err != nil && d.err == nil {
		d.err = err
	}
	rc.mu.Lock()
	if rc.refuse > 0 {
		rc.refuse--
		d.status = http.StatusServiceUnavailable
	}
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	w.WriteHeader(d.status)
}

func (rc *sinkReceiver) all() []sinkDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]sinkDelivery(nil), rc.got...)
}

// shown is what a receiver that upserts by message id shows: the latest
// accepted content of each message, by id.
func (rc *sinkReceiver) shown() map[string]webhook.Message {
	out := map[string]webhook.Message{}
	for _, d := range rc.all() {
		if d.status >= 300 || d.err != nil || (d.msg.Event != "message" && d.msg.Event != "update") {
			continue
		}
		out[d.msg.ID] = d.msg
	}
	return out
}

// TestServeDeliversIncidentsToTheWebhookSink: "parley serve" with no chat
// platform at all, only incidents.webhook_sink, for a team without Slack
// or Discord. An Alertmanager notification becomes a signed JSON POST to
// the team's endpoint (checked there with webhook.Verify); the endpoint is
// down for its first two requests, and the message is tried again with
// the same id (its idempotency key), so a receiver that upserts by id
// shows it once. The resolution is an update of the same id. The group is
// audited as posted once, nothing expires, the outbox empties.
func TestServeDeliversIncidentsToTheWebhookSink(t *testing.T) {
	secret := "sink-" + "test-" + "0123456789abcdef"
	rc := &sinkReceiver{secret: secret, refuse: 2}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
database: %q
evals: {reports_dir: %q}
incidents:
  auth: {bearer_token: {env: AM_TOKEN}}
  default_channel: "webhook:oncall"
  group_wait: 300ms
  webhook_sink: {url: %q, secret: {env: SINK_SECRET}, timeout: 5s}
`, port, filepath.Join(dir, "parley.db"), dir, srv.URL+"/parley")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := launch(t, "sink", cfg, port, map[string]string{"AM_TOKEN": amToken, "SINK_SECRET": secret})

	if code := s.notify(t, alertGroup(0, incident.Firing)); code != http.StatusOK {
		t.Fatalf("firing notification: %d", code)
	}
	waitFor(t, 30*time.Second, "the incident message accepted by the endpoint", func() bool {
		for _, m := range rc.shown() {
			if m.Event == "message" && strings.Contains(m.Text, "svc-00") {
				return true
			}
		}
		return false
	})
	if code := s.notify(t, alertGroup(0, incident.Resolved)); code != http.StatusOK {
		t.Fatalf("resolved notification: %d", code)
	}
	waitFor(t, 30*time.Second, "the message updated to resolved", func() bool {
		for _, m := range rc.shown() {
			if strings.Contains(m.Text, "svc-00") && strings.Contains(m.Text, "[RESOLVED]") {
				return true
			}
		}
		return false
	})

	var posts []sinkDelivery
	ids := map[string]bool{}
	for _, d := range rc.all() {
		if d.err != nil {
			t.Errorf("a delivery fails the receiver's check: %v (%+v)", d.err, d.msg)
		}
		if d.msg.Channel != "oncall" || d.msg.Version != webhook.Version {
			t.Errorf("delivery to channel %q, version %q; want oncall, %s", d.msg.Channel, d.msg.Version, webhook.Version)
		}
		if d.msg.Event == "message" {
			posts = append(posts, d)
			ids[d.msg.ID] = true
		}
	}
	if len(posts) != 3 || posts[0].status != http.StatusServiceUnavailable || posts[2].status != http.StatusNoContent {
		t.Errorf("%d tries of the first message (answers %v), want 3: two refused, then taken", len(posts), statuses(posts))
	}
	if len(ids) != 1 {
		t.Errorf("the tries of the first message carry %d ids, want one (its idempotency key): %v", len(ids), ids)
	}
	shown := rc.shown()
	if len(shown) != 1 {
		t.Errorf("the receiver shows %d messages, want 1: %+v", len(shown), shown)
	}
	for id := range ids {
		if m := shown[id]; !strings.Contains(m.Text, "[RESOLVED]") {
			t.Errorf("message %s shows %q, want it resolved", id, m.Text)
		}
	}
	waitFor(t, 30*time.Second, "the outbox empty", func() bool {
		db, err := store.Open(context.Background(), filepath.Join(dir, "parley.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM incident_outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	s.stop()
	db, err := store.Open(context.Background(), filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := incidentEvents(t, db)
	key := alertGroup(0, incident.Firing).GroupKey
	if n := ev[audit.IncidentPosted][key]; n != 1 {
		t.Errorf("%d incident.posted events, want 1", n)
	}
	if n := len(ev[audit.IncidentExpired]); n != 0 {
		t.Errorf("%d incident.expired events, want none", n)
	}
	t.Logf("webhook sink: %d deliveries (%d tries of the first message), all signed and verified", len(rc.all()), len(posts))
}

func statuses(ds []sinkDelivery) []int {
	out := make([]int, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.status)
	}
	return out
}

// drain reads a response body to the end, so the connection is reused,
// and fails the test when it cannot.
func drain(t testing.TB, resp *http.Response) {
	t.Helper()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("read the response body: %v", err)
	}
}
