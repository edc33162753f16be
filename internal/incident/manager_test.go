package incident

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/pipeline"
)

var common = map[string]string{"alertname": "HighErrorRate", "service": "checkout", "namespace": "prod", "severity": "page"}

func TestResendsUpdatesAndResolutionEditOneMessage(t *testing.T) {
	h := startManager(t, openDB(t, t.TempDir()), Options{})
	a1 := alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod", "pod", "checkout-1")
	p := payload("{}:{alertname=\"HighErrorRate\"}", common, a1)
	if code := h.post(t, p); code != http.StatusOK {
		t.Fatalf("post = %d", code)
	}
	first := h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	if first.Platform != "slack" || first.Channel != "C0INCIDENT" {
		t.Errorf("posted to %s:%s, want slack:C0INCIDENT", first.Platform, first.Channel)
	}
	for _, want := range []string{"[FIRING:1] HighErrorRate", "checkout in prod", "HighErrorRate is firing", "Firing since 10:00:00 UTC", "Alertmanager: http://alertmanager:9093/#/alerts?receiver=parley"} {
		if !strings.Contains(render(first.Reply), want) {
			t.Errorf("first message lacks %q:\n%s", want, render(first.Reply))
		}
	}
	h.idle(t)
	before := len(h.sender.all())

	// Alertmanager re-sends the same notification: nothing new.
	for range 3 {
		h.post(t, p)
	}
	h.idle(t)
	if after := len(h.sender.all()); after != before {
		t.Fatalf("re-sends sent %d more replies, want none:\n%s", after-before, dump(h.sender.all()[before:]))
	}
	if got := h.met.duplicates.Load(); got != 3 {
		t.Errorf("duplicates = %d, want 3", got)
	}

	// A second alert joins the group.
	a2 := alert("HighErrorRate", "fp2", Firing, "service", "checkout", "namespace", "prod", "pod", "checkout-2")
	h.post(t, payload(p.GroupKey, common, a1, a2))
	edit := h.sender.wait(t, "edit with two alerts", func(s sent) bool {
		return s.UpdateOf == first.ID && strings.Contains(s.Text, "[FIRING:2]")
	})
	note := h.sender.wait(t, "+1 note", func(s sent) bool { return s.Thread == first.ID && strings.HasPrefix(s.Text, "+1 alert: ") })
	if !strings.Contains(note.Text, "pod=checkout-2") {
		t.Errorf("note = %q, want the new alert's distinguishing label", note.Text)
	}
	_ = edit
	h.idle(t)

	// Both resolve.
	r1, r2 := alert("HighErrorRate", "fp1", Resolved, "pod", "checkout-1"), alert("HighErrorRate", "fp2", Resolved, "pod", "checkout-2")
	h.post(t, payload(p.GroupKey, common, r1, r2))
	h.sender.wait(t, "resolved edit", func(s sent) bool {
		return s.UpdateOf == first.ID && strings.Contains(s.Text, "[RESOLVED] HighErrorRate") && strings.Contains(s.Text, "Resolved at 10:10:00 UTC after 10m")
	})
	h.sender.wait(t, "resolved note", func(s sent) bool {
		return s.Thread == first.ID && s.Text == "Resolved at 10:10:00 UTC: all 2 alerts."
	})
	h.idle(t)
	posts, _ := h.sender.tops()
	if len(posts) != 1 {
		t.Fatalf("%d group messages posted, want 1:\n%s", len(posts), dump(posts))
	}
	if n := len(h.audit.of(audit.IncidentPosted)); n != 1 {
		t.Errorf("%d incident.posted events, want 1", n)
	}
	if n := len(h.audit.of(audit.IncidentUpdated)); n < 2 {
		t.Errorf("%d incident.updated events, want at least 2", n)
	}
	for _, e := range h.audit.of(audit.IncidentPosted) {
		if e.Subject != "alertmanager:parley" || e.Channel != "slack:C0INCIDENT" || e.Platform != "slack" {
			t.Errorf("posted event = %+v", e)
		}
	}

	// A new firing after the resolution is a new incident: a new message.
	a1b := a1
	a1b.StartsAt = t0.Add(time.Hour)
	h.post(t, payload(p.GroupKey, common, a1b))
	h.sender.wait(t, "second incident", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" && s.ID != first.ID })
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	a1 := alert("DiskFull", "fpA", Firing, "instance", "db-1")
	p := payload("group-disk", map[string]string{"alertname": "DiskFull"}, a1)

	h1 := startManager(t, db, Options{})
	h1.post(t, p)
	first := h1.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" })
	h1.idle(t)
	h1.stop()

	// A new process with the same database: the re-send is known, the
	// resolution edits the message the first process posted.
	h2 := startManager(t, openDB(t, dir), Options{})
	h2.post(t, p)
	h2.idle(t)
	if n := len(h2.sender.all()); n != 0 {
		t.Fatalf("re-send after restart sent %d replies, want none:\n%s", n, dump(h2.sender.all()))
	}
	h2.post(t, payload("group-disk", map[string]string{"alertname": "DiskFull"}, alert("DiskFull", "fpA", Resolved, "instance", "db-1")))
	edit := h2.sender.wait(t, "resolution after restart", func(s sent) bool { return s.UpdateOf != "" })
	if edit.UpdateOf != first.ID || !strings.Contains(edit.Text, "[RESOLVED]") {
		t.Errorf("edit of %q (%q), want of %q resolved", edit.UpdateOf, edit.Text, first.ID)
	}
	h2.sender.wait(t, "resolution note in the old thread", func(s sent) bool { return s.Thread == first.ID })
}

func TestRouting(t *testing.T) {
	mustRoute := func(m map[string]string, ch string) Route {
		r, err := ParseRoute(m, ch)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	routes := []Route{
		mustRoute(map[string]string{"team": "payments"}, "slack:CPAY"),
		mustRoute(map[string]string{"service": "=~check.*", "severity": "page"}, "discord:42"),
		mustRoute(map[string]string{"service": "=~check.*"}, "slack:CLATE"),
	}
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"team": "payments", "service": "checkout", "severity": "page"}, "slack:CPAY"},
		{map[string]string{"service": "checkout", "severity": "page"}, "discord:42"},
		{map[string]string{"service": "checkout", "severity": "ticket"}, "slack:CLATE"},
		{map[string]string{"service": "xcheckout"}, "slack:DEFAULT"},
	}
	for _, tt := range tests {
		if got, _ := route(routes, "slack:DEFAULT", tt.labels); got != tt.want {
			t.Errorf("route(%v) = %s, want %s", tt.labels, got, tt.want)
		}
	}
	if _, err := ParseRoute(map[string]string{"a": "=~("}, "slack:C"); err == nil {
		t.Error("bad regexp accepted")
	}
	if _, err := ParseRoute(map[string]string{"a": "b"}, "C123"); err == nil {
		t.Error("channel without platform accepted")
	}

	// No route and no default: reported, audited, counted, never posted.
	h := startManager(t, openDB(t, t.TempDir()), Options{Routes: routes[:1]})
	p := payload("g-unrouted", map[string]string{"alertname": "X", "team": "search"}, alert("X", "fpx", Firing, "team", "search"))
	h.post(t, p)
	h.post(t, p)
	h.idle(t)
	if n := len(h.sender.all()); n != 0 {
		t.Errorf("unrouted group posted %d replies", n)
	}
	ev := h.audit.of(audit.IncidentUnrouted)
	if len(ev) != 1 || !strings.Contains(ev[0].Outcome, "no route matched") || ev[0].Details["group_key"] != "g-unrouted" {
		t.Errorf("unrouted events = %+v, want one naming the group", ev)
	}
	if h.met.unrouted.Load() != 1 {
		t.Errorf("unrouted counter = %d, want 1", h.met.unrouted.Load())
	}
}

// fakeAct is a read action with scripted answers.
type fakeAct struct {
	name string
	run  func(ctx context.Context, p action.Params) (action.Result, error)
}

func (f *fakeAct) Spec() action.Spec { return specNamed(f.name) }
func (f *fakeAct) Run(ctx context.Context, r action.Request) (action.Result, error) {
	return f.run(ctx, r.Params)
}

type fakeRollouts []Rollout

func (f fakeRollouts) Rollouts(context.Context, string, string) ([]Rollout, error) { return f, nil }

type fakeSummarizer struct {
	got chan llm.Evidence
	err error
}

func (f *fakeSummarizer) Summarize(_ context.Context, ev llm.Evidence) (string, llmcost.Usage, error) {
	f.got <- ev
	if f.err != nil {
		return "", llmcost.Usage{}, f.err
	}
	return "Checkout fails 5% of requests since revision 42 [M1][R1]; token=abcdef0123456789abcdef0123456789 leaked.", llmcost.Usage{}, nil
}

// sources are incident.diagnose's sources over fake backends; release
// unblocks the metrics so a test can look at the message before they
// answer.
func sources(release <-chan struct{}) []Source {
	prom := &fakeAct{name: action.PrometheusQuery, run: func(ctx context.Context, p action.Params) (action.Result, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return action.Result{}, ctx.Err()
		}
		switch p.String("metric") {
		case "error_rate":
			return action.Result{Text: "checkout error rate: 5.0% now, up from 0.0% 1h ago", Outcome: map[string]string{"value": "5.0%"},
				Images: []chat.Image{{Name: "checkout-error_rate.png", ContentType: "image/png", Data: []byte("PNG")}}}, nil
		default:
			return action.Result{Text: "checkout p99 latency: 475 ms now", Outcome: map[string]string{"value": "475 ms"}}, nil
		}
	}}
	loki := &fakeAct{name: action.LokiQuery, run: func(context.Context, action.Params) (action.Result, error) {
		return action.Result{Text: "checkout error logs, last 1h, newest first: 2 lines (2 error).",
			Table: &chat.Table{Header: []string{"time (UTC)", "stream", "line"}, Rows: [][]string{
				{"03-14 10:00:02", "checkout-1", "ERROR payment declined password=hunter2secret"},
				{"03-14 10:00:01", "checkout-2", "ERROR upstream timeout"},
			}}}, nil
	}}
	k8s := &fakeAct{name: action.KubernetesStatus, run: func(_ context.Context, p action.Params) (action.Result, error) {
		return action.Result{Text: "checkout (prod): 3/4 ready, image shop/checkout:1.5.0, revision 42",
			Fields: []chat.Field{{Label: "Desired", Value: "4"}, {Label: "Ready", Value: "3"}, {Label: "Pod restarts", Value: "2 across 4 pods"}}}, nil
	}}
	return []Source{
		{Title: "Error rate", Action: prom, Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "error_rate", "window": w}, true
		}},
		{Title: "Latency p99", Action: prom, Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "latency_p99", "window": w}, true
		}},
		{Title: "Error logs", Action: loki, Params: func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "level": "error", "window": w, "limit": 5}, true
		}},
		{Title: "Kubernetes", Action: k8s, Params: func(s, ns, _ string) (action.Params, bool) {
			return action.Params{"deployment": s, "namespace": ns}, ns != ""
		}},
	}
}

func TestPostFirstThenEnrich(t *testing.T) {
	release := make(chan struct{})
	now := time.Now().UTC()
	h := startManager(t, openDB(t, t.TempDir()), Options{
		Sources:  sources(release),
		Rollouts: fakeRollouts{{Revision: 42, Created: now.Add(-12 * time.Minute), Image: "shop/checkout:1.5.0"}, {Revision: 41, Created: now.Add(-30 * 24 * time.Hour)}},
	})
	a := alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod")
	a.StartsAt = now.Add(-time.Minute)
	h.post(t, payload("g1", common, a))

	// The message is out while the metrics backend has not answered.
	first := h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	if !strings.Contains(render(first.Reply), "Gathering evidence") {
		t.Errorf("first message does not say evidence is coming:\n%s", render(first.Reply))
	}
	close(release)

	done := h.sender.wait(t, "enriched edit", func(s sent) bool {
		return s.UpdateOf == first.ID && strings.Contains(s.Text, "Diagnosis")
	})
	text := render(done.Reply)
	for _, want := range []string{
		"Error rate: checkout error rate: 5.0% now",
		"Latency p99: checkout p99 latency: 475 ms now",
		"Kubernetes: checkout (prod): 3/4 ready",
		"Recent change: rollout to revision 42 at ",
		"Checkout is failing 5.0% of requests",
		"Changed shortly before: a rollout of checkout to revision 42 (shop/checkout:1.5.0) 11m before the alert started",
		"ERROR upstream timeout",
		"[Roll back checkout to revision 41]", "[Show error logs]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("enriched message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "hunter2secret") {
		t.Errorf("a secret from the logs reached the message:\n%s", text)
	}
	if strings.Contains(strings.ToLower(text), "likel") || strings.Contains(strings.ToLower(text), "cause") {
		t.Errorf("the diagnosis gives a verdict rather than the evidence:\n%s", text)
	}
	if strings.Contains(text, "Gathering evidence") {
		t.Errorf("finished message still says gathering:\n%s", text)
	}
	// Saturation was not the alert: no scale button.
	if strings.Contains(text, "[Scale") {
		t.Errorf("scale offered for an error-rate alert:\n%s", text)
	}
	// The rollback button carries a suggestion the pipeline reads.
	var rollback chat.Button
	for _, b := range done.Buttons {
		if strings.HasPrefix(b.Label, "Roll back") {
			rollback = b
		}
	}
	want := encodeSuggestion(t, pipeline.Suggestion{Action: action.KubernetesRollback,
		Params: map[string]any{"deployment": "checkout", "namespace": "prod", "revision": 41}})
	if rollback.Action != "run" || rollback.Value != want {
		t.Errorf("rollback button = %+v, want run %s", rollback, want)
	}
	// The chart went once into the thread.
	chart := h.sender.wait(t, "chart", func(s sent) bool { return s.Thread == first.ID && len(s.Images) > 0 })
	if chart.Images[0].Name != "checkout-error_rate.png" {
		t.Errorf("chart = %+v", chart.Images[0])
	}
	h.idle(t)
	sugg := h.audit.of(audit.IncidentSuggested)
	if len(sugg) != 2 {
		t.Fatalf("%d suggestion events, want 2 (rollback, logs): %+v", len(sugg), sugg)
	}
	for _, e := range sugg {
		if e.Channel != "slack:C0INCIDENT" || e.Action == "" || e.Outcome == "" {
			t.Errorf("suggestion event = %+v", e)
		}
	}
}

func TestModelDiagnosisAndSaturation(t *testing.T) {
	release := make(chan struct{})
	close(release)
	sum := &fakeSummarizer{got: make(chan llm.Evidence, 1)}
	h := startManager(t, openDB(t, t.TempDir()), Options{Sources: sources(release), Summarizer: sum})
	labels := map[string]string{"alertname": "CPUSaturation", "service": "checkout", "namespace": "prod"}
	h.post(t, payload("g-cpu", labels, alert("CPUSaturation", "fp1", Firing, "service", "checkout", "namespace", "prod")))
	done := h.sender.wait(t, "diagnosis", func(s sent) bool { return strings.Contains(s.Text, "Diagnosis") })
	ev := <-sum.got
	if len(ev.Metrics) != 2 || ev.Metrics[0].Name != "error_rate" && ev.Metrics[1].Name != "error_rate" {
		t.Errorf("evidence metrics = %+v", ev.Metrics)
	}
	for _, m := range ev.Metrics {
		if m.Name == "error_rate" && (m.Value != 0.05 || m.Unit != "ratio") {
			t.Errorf("error rate evidence = %+v, want 0.05 ratio", m)
		}
	}
	text := render(done.Reply)
	if !strings.Contains(text, "written by a model") || !strings.Contains(text, "since revision 42") {
		t.Errorf("model diagnosis not shown:\n%s", text)
	}
	if strings.Contains(text, "abcdef0123456789abcdef0123456789") {
		t.Errorf("model output not redacted:\n%s", text)
	}
	if !strings.Contains(text, "[Scale checkout to 6]") {
		t.Errorf("saturation alert with 4 desired replicas should offer scaling to 6:\n%s", text)
	}

	// A failing model falls back to the deterministic diagnosis.
	sum2 := &fakeSummarizer{got: make(chan llm.Evidence, 1), err: errors.New("model down")}
	h2 := startManager(t, openDB(t, t.TempDir()), Options{Sources: sources(release), Summarizer: sum2})
	h2.post(t, payload("g1", common, alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod")))
	d2 := h2.sender.wait(t, "fallback diagnosis", func(s sent) bool { return strings.Contains(s.Text, "Diagnosis") })
	if strings.Contains(d2.Text, "written by a model") || !strings.Contains(d2.Text, "failing 5.0% of requests") {
		t.Errorf("fallback diagnosis = %q", d2.Text)
	}
}

// TestUndeliveredMessageExpires: a message the platform keeps refusing is
// retried, then given up after ExpireAfter with a metric and an
// incident.expired audit event (never a silent drop, never reply.failed
// after three tries); the outbox is emptied, and the group's next change
// posts as usual.
func TestUndeliveredMessageExpires(t *testing.T) {
	db := openDB(t, t.TempDir())
	// Expiry reads this clock, which moves when the test moves it.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	h := startManager(t, db, Options{ExpireAfter: time.Hour, RetryMax: 100 * time.Millisecond, Now: now})
	h.sender.mu.Lock()
	h.sender.fail = func(chat.Reply) error { return fmt.Errorf("slack down: %w", action.ErrUnavailable) }
	h.sender.mu.Unlock()
	h.post(t, payload("g-fail", map[string]string{"alertname": "X"}, alert("X", "fp", Firing)))
	for deadline := time.Now().Add(30 * time.Second); h.met.sendFails.Load() < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the message was not tried three times")
		}
	}
	if n := len(h.audit.of(audit.IncidentExpired)); n != 0 {
		t.Fatalf("%d incident.expired events before expire_after", n)
	}
	clock.Add(int64(time.Hour))
	deadline := time.Now().Add(30 * time.Second)
	for len(h.audit.of(audit.IncidentExpired)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ev := h.audit.of(audit.IncidentExpired)
	if len(ev) != 1 || !strings.Contains(ev[0].Error, "slack down") || ev[0].Details["what"] != "the first message" ||
		ev[0].Channel != "slack:C0INCIDENT" || ev[0].Details["group_key"] != "g-fail" {
		t.Fatalf("incident.expired events = %+v", ev)
	}
	if n := h.met.expired.Load(); n != 1 {
		t.Errorf("expired counted %d times, want 1", n)
	}
	if n := h.met.sendFails.Load(); n < 2 {
		t.Errorf("%d failed tries counted, want several before the expiry", n)
	}
	if n := len(h.audit.of(audit.ReplyFailed)); n != 0 {
		t.Errorf("%d reply.failed events, want none (the message was retried until it expired)", n)
	}
	h.idle(t)
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM incident_outbox`).Scan(&n); err != nil || n != 0 {
		t.Errorf("outbox holds %d rows after the expiry (%v), want 0", n, err)
	}
	// The platform is back; the next notification of the group posts.
	h.sender.mu.Lock()
	h.sender.fail = nil
	h.sender.mu.Unlock()
	h.post(t, payload("g-fail", map[string]string{"alertname": "X"}, alert("X", "fp", Firing), alert("X", "fp2", Firing)))
	h.sender.wait(t, "post after recovery", func(s sent) bool { return s.UpdateOf == "" && strings.Contains(s.Text, "[FIRING:2]") })
}

// TestDiagnosisOffersOnlyWhatIsConfigured: without a Loki source there is
// no "Show error logs" (and no error-logs line); the pods' logs are offered
// instead through kubernetes.logs. A revision that kept the image is a
// restart, said as evidence with its timing, and not offered for a
// rollback (rolling back a restart only restarts again); without an
// Alertmanager API, no Silence button.
func TestDiagnosisOffersOnlyWhatIsConfigured(t *testing.T) {
	release := make(chan struct{})
	close(release)
	var noLoki []Source
	for _, s := range sources(release) {
		if s.Action.Spec().Name != action.LokiQuery {
			noLoki = append(noLoki, s)
		}
	}
	podLogs := action.Spec{Name: "kubernetes.logs", Kind: action.Read, Params: []action.Param{
		{Name: "deployment", Type: action.String, Required: true}, {Name: "namespace", Type: action.String, Required: true}}}
	now := time.Now().UTC()
	h := startManager(t, openDB(t, t.TempDir()), Options{
		Sources: noLoki, PodLogs: &podLogs,
		Rollouts: fakeRollouts{{Revision: 42, Created: now.Add(-5 * time.Minute), Image: "shop/checkout:1.5.0"},
			{Revision: 41, Created: now.Add(-3 * 24 * time.Hour), Image: "shop/checkout:1.5.0"}},
	})
	a := alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod")
	a.StartsAt = now.Add(-time.Minute)
	h.post(t, payload("g-restart", common, a))
	first := h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	done := h.sender.wait(t, "diagnosis", func(s sent) bool { return s.UpdateOf == first.ID && strings.Contains(s.Text, "Diagnosis") })
	text := render(done.Reply)
	for _, want := range []string{
		"Changed shortly before: a restart of checkout (revision 42, image shop/checkout:1.5.0 unchanged) 4m before the alert started.",
		"Recent change: restart (revision 42, image unchanged) at ",
		"[Show pod logs]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("message lacks %q:\n%s", want, text)
		}
	}
	for _, unwanted := range []string{"Show error logs", "Error logs", "Roll back", "Silence", "likeliest", "the cause"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("message offers or says %q:\n%s", unwanted, text)
		}
	}
	var btn chat.Button
	for _, b := range done.Buttons {
		if b.Label == "Show pod logs" {
			btn = b
		}
	}
	want := encodeSuggestion(t, pipeline.Suggestion{Action: "kubernetes.logs", Params: map[string]any{"deployment": "checkout", "namespace": "prod"}})
	if btn.Action != "run" || btn.Value != want {
		t.Errorf("pod logs button = %+v, want run %s", btn, want)
	}
}

// encodeSuggestion is a "run" button's value.
func encodeSuggestion(t testing.TB, s pipeline.Suggestion) string {
	t.Helper()
	v, err := pipeline.EncodeSuggestion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
