package incident_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/actions/loki"
	"github.com/parley-chatops/parley/actions/prometheus"
	"github.com/parley-chatops/parley/adapters/console"
	slackadapter "github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/promtest"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

const (
	e2eToken    = "am-e2e-SECRET-bearer"
	e2eBotToken = "xoxb-" + "fake-e2e-SECRETBOT"
)

// TestEndToEnd runs the whole incident path against real processes: the
// test exporter raises checkout's error rate to 5%, a Prometheus rule
// (evaluated every second) fires, Alertmanager (group_wait 1s) posts its
// webhook with a bearer token to Parley's handler on 127.0.0.1, and the
// summary arrives in two channels: console:ops through the console adapter
// (writing to a buffer), and slack:C0INCIDENT through the real Slack
// adapter talking to slack-go's slacktest server (an httptest server on
// 127.0.0.1 whose Web API methods answer as Slack documents them). Then
// the errors stop, the rule resolves, Alertmanager sends "resolved", and
// the same messages are edited.
func TestEndToEnd(t *testing.T) {
	promtest.Need(t, promtest.PrometheusBinary, promtest.AlertmanagerBinary)
	ctx := t.Context()

	// The service: 5 of every 100 requests fail until stopped.
	exp := promtest.NewExporter(t)
	exp.Init("checkout", "200", "500")
	var failing sync.Mutex
	errorsOn := true
	traffic, stopTraffic := context.WithCancel(ctx)
	var trafficDone sync.WaitGroup
	trafficDone.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-traffic.Done():
				return
			case <-tick.C:
				failing.Lock()
				if errorsOn {
					exp.AddRequests("checkout", "200", 95)
					exp.AddRequests("checkout", "500", 5)
				} else {
					exp.AddRequests("checkout", "200", 100)
				}
				failing.Unlock()
				exp.Observe("checkout", 0.2, 10)
			}
		}
	})
	t.Cleanup(func() { stopTraffic(); trafficDone.Wait() })

	// The cluster: the demo shop, with checkout rolled out just now.
	sb, err := kubernetes.NewSandbox(kubernetes.DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	dep, err := sb.Client().AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = "shop/checkout:1.5.0"
	if _, err := sb.Client().AppsV1().Deployments("prod").Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Chat: console and Slack, with a tap recording what Parley sent.
	var consoleOut lockedBuffer
	cons := console.New(console.Config{Out: &consoleOut})
	fs := newFakeSlack(t)
	sl, err := slackadapter.New(slackadapter.Options{BotToken: e2eBotToken, Mode: slackadapter.ModeEvents, SigningSecret: "s",
		APIURL: fs.srv.GetAPIURL(), PostInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	slackCtx, stopSlack := context.WithCancel(ctx)
	slackDone := make(chan error, 1)
	go func() { slackDone <- sl.Run(slackCtx, nopHandler{}) }()
	t.Cleanup(func() { stopSlack(); <-slackDone })
	waitFor(t, "slack adapter connected", func() bool { return fs.authed() })
	tap := &tap{senders: map[string]chat.Sender{chat.Console: cons, chat.Slack: sl}}

	// Parley: actions against the real Prometheus, the store, the manager.
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rec := audit.New(db, audit.Options{})
	t.Cleanup(func() { _ = rec.Close(context.Background()) })

	// The webhook server, noting when each request arrives.
	var (
		hookMu     sync.Mutex
		deliveries []time.Time
		bodies     []string
	)
	var handler http.Handler = http.NotFoundHandler()
	var handlerMu sync.RWMutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		deliveries = append(deliveries, at)
		bodies = append(bodies, string(body))
		hookMu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handlerMu.RLock()
		h := handler
		handlerMu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hook.Close)

	am := promtest.StartAlertmanager(t, promtest.AlertmanagerConfig{Config: fmt.Sprintf(`route:
  receiver: parley
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: parley
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          authorization:
            credentials: %q
`, hook.URL+"/webhooks/alertmanager", e2eToken)})
	rule := func(team string) string {
		return fmt.Sprintf(`      - alert: HighErrorRate
        expr: (sum(rate(http_requests_total{service="checkout",code=~"5.."}[10s])) or vector(0)) / sum(rate(http_requests_total{service="checkout"}[10s])) > 0.01
        for: 1s
        labels: {service: checkout, namespace: prod, severity: page, team: %s}
        annotations: {summary: "checkout is failing more than 1%% of requests", description: "Error ratio {{ $value | humanizePercentage }} over 10s."}
`, team)
	}
	prom := promtest.StartPrometheus(t, promtest.Config{
		Targets:       []promtest.Target{{Job: "shop", Addrs: []string{exp.Addr}}},
		Alertmanagers: []string{am.Addr},
		RuleFiles:     map[string]string{"alerts.yml": "groups:\n  - name: parley\n    interval: 1s\n    rules:\n" + rule("sre") + rule("ops")},
	})

	// Deadlines far above what a query takes: on a loaded machine (the
	// race detector, other test binaries) a source that times out is
	// shown as unavailable, and this test is about what it shows.
	promQuery, err := prometheus.New(prometheus.Options{URL: prom.URL, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(promQuery.CloseIdleConnections)
	k8s, err := kubernetes.Actions(kubernetes.Options{Clients: sb.Clients()})
	if err != nil {
		t.Fatal(err)
	}
	var status action.Action
	for _, a := range k8s {
		if a.Spec().Name == action.KubernetesStatus {
			status = a
		}
	}
	srcs := []incident.Source{
		{Title: "Error rate", Action: promQuery, Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "error_rate", "window": w}, true
		}},
		{Title: "Latency p99", Action: promQuery, Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "latency_p99", "window": w}, true
		}},
		{Title: "Error logs", Action: loki.New(loki.Options{}), Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "level": "error", "window": w, "limit": 5}, true
		}},
		{Title: "Kubernetes", Action: status, Params: func(s, ns, _ string) (action.Params, bool) {
			return action.Params{"deployment": s, "namespace": ns}, ns != ""
		}},
	}
	routeSlack, _ := incident.ParseRoute(map[string]string{"team": "sre"}, "slack:C0INCIDENT")
	routeConsole, _ := incident.ParseRoute(map[string]string{"team": "=~ops|dev"}, "console:ops")
	m, err := incident.New(incident.Options{
		Sender: tap, DB: db, Audit: rec,
		Auth:    incident.Auth{BearerToken: e2eToken},
		Routes:  []incident.Route{routeSlack, routeConsole},
		Sources: srcs, Rollouts: incident.KubeRollouts{Client: sb.Client()},
		GroupWait: time.Second, Window: "30m", SourceTimeout: 45 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(runCtx) }()
	t.Cleanup(func() {
		stopRun()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/alertmanager", m.Handler())
	handlerMu.Lock()
	handler = mux
	handlerMu.Unlock()

	// Firing: the first message in each channel, then the evidence.
	slackFirst := tap.wait(t, 90*time.Second, "first Slack message", func(s tapped) bool {
		return s.r.Platform == chat.Slack && s.r.UpdateOf == "" && s.r.Thread == ""
	})
	consoleFirst := tap.wait(t, 30*time.Second, "first console message", func(s tapped) bool {
		return s.r.Platform == chat.Console && s.r.UpdateOf == "" && s.r.Thread == ""
	})
	// Each group's first delivery (webhook request received) to its first
	// message in the channel.
	hookMu.Lock()
	arrived := map[string]time.Time{}
	for i, b := range bodies {
		for _, team := range []string{"sre", "ops"} {
			if _, seen := arrived[team]; !seen && strings.Contains(b, `"team":"`+team+`"`) {
				arrived[team] = deliveries[i]
			}
		}
	}
	hookMu.Unlock()
	t.Logf("Alertmanager delivery -> first message: Slack %s (real adapter, slacktest server), console %s",
		slackFirst.at.Sub(arrived["sre"]).Round(time.Millisecond), consoleFirst.at.Sub(arrived["ops"]).Round(time.Millisecond))
	if !strings.Contains(slackFirst.r.Text, "[FIRING:1] HighErrorRate") || slackFirst.id == "" {
		t.Fatalf("first Slack message = %q (id %q)", slackFirst.r.Text, slackFirst.id)
	}

	enriched := tap.wait(t, 90*time.Second, "Slack edit with the error rate", func(s tapped) bool {
		return s.r.UpdateOf == slackFirst.id && strings.Contains(fieldsOf(s.r), "Error rate: checkout error rate: ") && strings.Contains(s.r.Text, "Diagnosis")
	})
	rate := between(fieldsOf(enriched.r), "Error rate: checkout error rate: ", " now")
	if rate != "5.0%" {
		t.Errorf("error rate shown = %q, want 5.0%% (the exporter fails 5 of 100 requests):\n%s", rate, fieldsOf(enriched.r))
	}
	for _, want := range []string{"Kubernetes: checkout (prod): 3/3 ready, image shop/checkout:1.5.0, revision 5", "Recent change: rollout to revision 5 at ", "Error logs: not configured"} {
		if !strings.Contains(fieldsOf(enriched.r), want) {
			t.Errorf("enriched message lacks %q:\n%s", want, fieldsOf(enriched.r))
		}
	}
	if !hasButton(enriched.r, "Roll back checkout to revision 4") {
		t.Errorf("no rollback button: %+v", enriched.r.Buttons)
	}
	// What Slack got: the post, then chat.update of the same ts.
	fs.waitCall(t, "chat.update of the first message with 5.0%", func(c call) bool {
		return c.method == "chat.update" && c.ts == slackFirst.id && strings.Contains(c.blocks, "5.0%")
	})
	waitFor(t, "console shows 5.0%", func() bool { return strings.Contains(consoleOut.String(), "checkout error rate: 5.0%") })

	// Resolution: errors stop, the rule resolves, the same messages change.
	failing.Lock()
	errorsOn = false
	failing.Unlock()
	tap.wait(t, 90*time.Second, "Slack resolved edit", func(s tapped) bool {
		return s.r.UpdateOf == slackFirst.id && strings.Contains(s.r.Text, "[RESOLVED] HighErrorRate")
	})
	tap.wait(t, 30*time.Second, "console resolved edit", func(s tapped) bool {
		return s.r.UpdateOf == consoleFirst.id && strings.Contains(s.r.Text, "[RESOLVED] HighErrorRate")
	})
	fs.waitCall(t, "resolved note in the Slack thread", func(c call) bool {
		return c.method == "chat.postMessage" && c.thread == slackFirst.id && strings.Contains(c.text, "Resolved at")
	})
	if posts := fs.count("chat.postMessage", ""); posts != 1 {
		t.Errorf("%d top-level Slack posts, want 1 (one message per group)", posts)
	}
	if !strings.Contains(consoleOut.String(), "[RESOLVED] HighErrorRate") {
		t.Errorf("console never showed the resolution:\n%s", consoleOut.String())
	}

	// The audit log has the summaries and the suggestions, and no secret.
	events, err := rec.List(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[audit.Type]int{}
	for _, e := range events {
		kinds[e.Type]++
		if strings.Contains(fmt.Sprintf("%+v", e), e2eToken) {
			t.Errorf("audit event holds the webhook token: %+v", e)
		}
	}
	if kinds[audit.IncidentPosted] != 2 || kinds[audit.IncidentUpdated] < 2 || kinds[audit.IncidentSuggested] < 1 || kinds[audit.IncidentReceived] < 2 {
		t.Errorf("audit events by type = %v", kinds)
	}
	hookMu.Lock()
	t.Logf("%d webhook deliveries; first payload: %s", len(deliveries), clipString(bodies[0], 400))
	hookMu.Unlock()
}

func fieldsOf(r chat.Reply) string {
	var b strings.Builder
	for _, f := range r.Fields {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	return b.String()
}

func hasButton(r chat.Reply, label string) bool {
	for _, b := range r.Buttons {
		if b.Label == label && b.Action == "run" {
			return true
		}
	}
	return false
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	out, _, _ := strings.Cut(rest, b)
	return out
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type nopHandler struct{}

func (nopHandler) Handle(context.Context, chat.Message) {}

// tap routes replies by platform, like the application's mux, and records
// each with the id the adapter answered.
type tap struct {
	senders map[string]chat.Sender
	mu      sync.Mutex
	sent    []tapped
}

type tapped struct {
	r  chat.Reply
	id string
	at time.Time
}

func (t *tap) Send(ctx context.Context, r chat.Reply) (string, error) {
	s, ok := t.senders[r.Platform]
	if !ok {
		return "", fmt.Errorf("no %s adapter", r.Platform)
	}
	id, err := s.Send(ctx, r)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	t.sent = append(t.sent, tapped{r: r, id: id, at: time.Now()})
	t.mu.Unlock()
	return id, nil
}

func (t *tap) wait(tb testing.TB, timeout time.Duration, what string, ok func(tapped) bool) tapped {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		for _, s := range t.sent {
			if ok(s) {
				t.mu.Unlock()
				return s
			}
		}
		n := len(t.sent)
		var last string
		if n > 0 {
			last = t.sent[n-1].r.Text + "\n" + fieldsOf(t.sent[n-1].r)
		}
		t.mu.Unlock()
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within %s; %d replies, last: %q", what, timeout, n, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer = logtest.Buffer

// fakeSlack is slack-go's slacktest server with the Web API methods the
// adapter uses answered as Slack documents them: form-encoded requests
// with the bot token, {"ok":...} JSON answers, ts strings.
type fakeSlack struct {
	srv   *slacktest.Server
	mu    sync.Mutex
	calls []call
	next  int
	auth  bool
}

type call struct {
	method, channel, ts, thread, text, blocks string
	form                                      string // every form value, for checking what left Parley
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{}
	writeJSON := func(w http.ResponseWriter, s string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, s)
	}
	authed := func(w http.ResponseWriter, r *http.Request) bool {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if tok != e2eBotToken {
			writeJSON(w, `{"ok":false,"error":"invalid_auth"}`)
			return false
		}
		return true
	}
	chatMethod := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !authed(w, r) {
				return
			}
			c := call{method: method, channel: r.PostForm.Get("channel"), thread: r.PostForm.Get("thread_ts"),
				text: r.PostForm.Get("text"), blocks: r.PostForm.Get("blocks"), ts: r.PostForm.Get("ts")}
			for k, vs := range r.PostForm {
				c.form += k + "=" + strings.Join(vs, ",") + "\n"
			}
			f.mu.Lock()
			if method == "chat.postMessage" {
				f.next++
				c.ts = fmt.Sprintf("1700000%03d.000100", f.next)
			}
			f.calls = append(f.calls, c)
			f.mu.Unlock()
			writeJSON(w, fmt.Sprintf(`{"ok":true,"channel":%q,"ts":%q}`, c.channel, c.ts))
		}
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", func(w http.ResponseWriter, r *http.Request) {
			if !authed(w, r) {
				return
			}
			f.mu.Lock()
			f.auth = true
			f.mu.Unlock()
			var granted []string // every scope of Parley's app manifest
			for _, sc := range slackadapter.Scopes() {
				granted = append(granted, sc.Name)
			}
			w.Header().Set("X-OAuth-Scopes", strings.Join(granted, ","))
			writeJSON(w, `{"ok":true,"team":"Parley","user":"parley","team_id":"T1","user_id":"UBOT","bot_id":"BBOT"}`)
		})
		c.Handle("/usergroups.list", func(w http.ResponseWriter, r *http.Request) {
			if authed(w, r) {
				writeJSON(w, `{"ok":true,"usergroups":[]}`)
			}
		})
		c.Handle("/chat.postMessage", chatMethod("chat.postMessage"))
		c.Handle("/chat.update", chatMethod("chat.update"))
		c.Handle("/files.getUploadURLExternal", func(w http.ResponseWriter, r *http.Request) {
			if authed(w, r) {
				writeJSON(w, fmt.Sprintf(`{"ok":true,"upload_url":%q,"file_id":"F1"}`, f.srv.GetAPIURL()+"upload/F1"))
			}
		})
		c.Handle("/upload/", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "OK")
		})
		c.Handle("/files.completeUploadExternal", func(w http.ResponseWriter, r *http.Request) {
			if authed(w, r) {
				f.mu.Lock()
				f.calls = append(f.calls, call{method: "files.completeUploadExternal", channel: r.PostForm.Get("channel_id"), thread: r.PostForm.Get("thread_ts")})
				f.mu.Unlock()
				writeJSON(w, `{"ok":true,"files":[{"id":"F1","title":"chart"}]}`)
			}
		})
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) authed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth
}

func (f *fakeSlack) count(method, thread string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.method == method && c.thread == thread {
			n++
		}
	}
	return n
}

func (f *fakeSlack) waitCall(t *testing.T, what string, ok func(call) bool) call {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.mu.Lock()
		for _, c := range f.calls {
			if ok(c) {
				f.mu.Unlock()
				return c
			}
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var b strings.Builder
			for _, c := range f.calls {
				b.WriteString(c.method + " ts=" + c.ts + " thread=" + c.thread + " " + strconv.Quote(clipString(c.text, 120)) + "\n")
			}
			t.Fatalf("no Slack call: %s; calls:\n%s", what, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
