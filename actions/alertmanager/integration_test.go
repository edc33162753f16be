package alertmanager

// Tests against the real Alertmanager (Debian's prometheus-alertmanager,
// started by internal/testenv/promtest on 127.0.0.1 with a receiver that
// notifies nobody). Alerts are posted to it with its own API v2, as
// Prometheus does. Without the binary the tests skip
// (PARLEY_REQUIRE_INTEGRATION=1 makes that a failure).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/testenv/promtest"
)

const nullReceiver = `route: {receiver: "null", group_by: [alertname]}
receivers: [{name: "null"}]
`

func startAM(t *testing.T, auth *promtest.BasicAuth) *promtest.Alertmanager {
	t.Helper()
	return promtest.StartAlertmanager(t, promtest.AlertmanagerConfig{Config: nullReceiver, BasicAuth: auth})
}

// postAlerts sends firing alerts as Prometheus does (POST /api/v2/alerts),
// each ending far in the future so none resolves during the test.
func postAlerts(t *testing.T, am *promtest.Alertmanager, auth func(*http.Request), alerts ...testAlert) {
	t.Helper()
	type postable struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations,omitempty"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	}
	var body []postable
	for _, a := range alerts {
		body = append(body, postable{Labels: a.labels, Annotations: a.annotations, StartsAt: a.startsAt, EndsAt: time.Now().Add(24 * time.Hour)})
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, am.URL+"/api/v2/alerts", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", resp.Status)
	}
}

type testAlert struct {
	labels, annotations map[string]string
	startsAt            time.Time
}

func alert(startsAt time.Time, summary string, labels ...string) testAlert {
	a := testAlert{labels: map[string]string{}, startsAt: startsAt}
	for i := 0; i+1 < len(labels); i += 2 {
		a.labels[labels[i]] = labels[i+1]
	}
	if summary != "" {
		a.annotations = map[string]string{"summary": summary}
	}
	return a
}

// shop is the test's alerts: three pods of checkout failing, payments
// slow, a disk filling up with no service label.
func shop(now time.Time) []testAlert {
	return []testAlert{
		alert(now.Add(-2*time.Hour-10*time.Minute), "checkout 5xx above 5%", "alertname", "HighErrorRate", "service", "checkout", "severity", "critical", "namespace", "prod", "pod", "checkout-1"),
		alert(now.Add(-40*time.Minute), "checkout 5xx above 5%", "alertname", "HighErrorRate", "service", "checkout", "severity", "critical", "namespace", "prod", "pod", "checkout-2"),
		alert(now.Add(-5*time.Minute), "checkout 5xx above 5%", "alertname", "HighErrorRate", "service", "checkout", "severity", "critical", "namespace", "prod", "pod", "checkout-3"),
		alert(now.Add(-25*time.Minute), "payments p99 above 2s", "alertname", "HighLatency", "service", "payments", "severity", "warning", "namespace", "prod"),
		alert(now.Add(-3*24*time.Hour), "disk /var 91% full", "alertname", "DiskFillingUp", "severity", "info", "instance", "node-7"),
	}
}

func newTestClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func request(name string, params action.Params) action.Request {
	return action.Request{Action: name, Params: params, Subject: "slack:U024BE7LH", Channel: "slack:C0OPS", RequestID: "req-42"}
}

func mustValidate(t *testing.T, spec action.Spec, raw map[string]any) action.Params {
	t.Helper()
	p, err := spec.Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAlertsAgainstAlertmanager(t *testing.T) {
	am := startAM(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	postAlerts(t, am, nil, shop(now)...)
	c := newTestClient(t, Options{URL: am.URL, Now: fixedClock(now)})
	alerts := NewAlerts(c)
	ctx := context.Background()

	res, err := alerts.Run(ctx, request(AlertsName, mustValidate(t, AlertsSpec(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Firing: 5 alerts in 3 groups (5 not silenced)." {
		t.Errorf("text = %q", res.Text)
	}
	want := [][]string{
		{"HighErrorRate ×3", "checkout", "critical", "2h10m", "firing", "checkout 5xx above 5%"},
		{"HighLatency", "payments", "warning", "25m", "firing", "payments p99 above 2s"},
		{"DiskFillingUp", "—", "info", "3d", "firing", "disk /var 91% full"},
	}
	if res.Table == nil || !equalRows(res.Table.Rows, want) {
		t.Errorf("table = %+v\nwant %v", res.Table, want)
	}
	if res.Outcome["alerts"] != "5" || res.Outcome["groups"] != "3" {
		t.Errorf("outcome = %v", res.Outcome)
	}

	// Filters become matchers on the labels.
	res, err = alerts.Run(ctx, request(AlertsName, mustValidate(t, AlertsSpec(), map[string]any{"service": "checkout", "severity": "critical"})))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "Firing for checkout (critical): 3 alerts in 1 group") || len(res.Table.Rows) != 1 {
		t.Errorf("filtered = %q %v", res.Text, res.Table)
	}
	res, err = alerts.Run(ctx, request(AlertsName, mustValidate(t, AlertsSpec(), map[string]any{"alertname": "NoSuchAlert"})))
	if err != nil || res.Text != "Nothing is firing (NoSuchAlert)." {
		t.Errorf("no match = %q, %v", res.Text, err)
	}
}

func TestSilenceLifecycleAgainstAlertmanager(t *testing.T) {
	am := startAM(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	postAlerts(t, am, nil, shop(now)...)
	c := newTestClient(t, Options{URL: am.URL, ExternalURL: "https://alerts.example.com", Now: fixedClock(now)})
	silencer, expirer, alerts := NewSilencer(c), NewExpirer(c), NewAlerts(c)
	ctx := context.Background()
	params := mustValidate(t, SilenceSpec(), map[string]any{"alertname": "HighErrorRate", "service": "checkout", "duration": "2h", "comment": "INC-231"})

	plan, err := silencer.Plan(ctx, request(SilenceName, params))
	if err != nil {
		t.Fatal(err)
	}
	end := now.Add(2 * time.Hour)
	for _, want := range []string{
		`silence alerts matching {alertname="HighErrorRate", service="checkout"} for 2h (until about ` + clock(end, now) + `)`,
		`it silences 3 firing alerts now: HighErrorRate{namespace="prod", pod="checkout-1"}, HighErrorRate{namespace="prod", pod="checkout-2"}, HighErrorRate{namespace="prod", pod="checkout-3"}`,
	} {
		if !strings.Contains(plan.Summary, want) {
			t.Errorf("plan summary %q\nlacks %q", plan.Summary, want)
		}
	}

	res, err := silencer.Run(ctx, request(SilenceName, params))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Outcome["silence_id"]
	if id == "" || !strings.Contains(res.Text, "3 firing alerts are silenced now") || !strings.Contains(res.Text, "expire silence "+shortID(id)) {
		t.Fatalf("silence result = %+v", res)
	}
	if link := fieldValue(res, "Alertmanager"); link != "https://alerts.example.com/#/silences/"+id {
		t.Errorf("link = %q", link)
	}

	// What Alertmanager stored: the matchers, the requester as creator,
	// the end two hours from now, the comment with the request id.
	stored, err := c.Silence(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Matchers.String() != `{alertname="HighErrorRate", service="checkout"}` || stored.CreatedBy != "slack:U024BE7LH" ||
		stored.Comment != "INC-231 (Parley request req-42)" || stored.Status.State != SilenceActive {
		t.Errorf("stored silence = %+v", stored)
	}
	if d := stored.EndsAt.Sub(end); d < -time.Second || d > time.Second {
		t.Errorf("silence ends at %s, want %s", stored.EndsAt, end)
	}

	// The alerts now show as silenced, by that silence, until its end.
	res, err = alerts.Run(ctx, request(AlertsName, mustValidate(t, AlertsSpec(), map[string]any{"service": "checkout"})))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Table.Rows[0][4]; got != "silenced until "+clock(stored.EndsAt, now)+" ("+shortID(id)+")" {
		t.Errorf("state = %q", got)
	}
	if !strings.Contains(res.Text, "(3 silenced)") {
		t.Errorf("text = %q", res.Text)
	}

	// Planning the same silence again shows the one that exists, and the
	// fingerprint moved: a request confirmed before it was created would
	// not run.
	again, err := silencer.Plan(ctx, request(SilenceName, params))
	if err != nil {
		t.Fatal(err)
	}
	if again.State == plan.State || !strings.Contains(again.Summary, "silence "+shortID(id)+" by slack:U024BE7LH already does this") {
		t.Errorf("second plan = %+v (first state %q)", again, plan.State)
	}

	// Expire it by its short id.
	ep := mustValidate(t, ExpireSpec(), map[string]any{"silence": shortID(id)})
	eplan, err := expirer.Plan(ctx, request(ExpireName, ep))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"expire silence " + shortID(id) + ` {alertname="HighErrorRate", service="checkout"} (created by slack:U024BE7LH, ends ` + clock(stored.EndsAt, now),
		`comment "INC-231 (Parley request req-42)"`,
		"3 firing alerts it silences will notify again",
	} {
		if !strings.Contains(eplan.Summary, want) {
			t.Errorf("expire plan %q\nlacks %q", eplan.Summary, want)
		}
	}
	res, err = expirer.Run(ctx, request(ExpireName, ep))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Text, "Expired silence "+shortID(id)) || !strings.Contains(res.Text, "3 matching alerts are firing and notifying now") {
		t.Errorf("expire result = %q", res.Text)
	}
	stored, err = c.Silence(ctx, id)
	if err != nil || stored.Status.State != SilenceExpired {
		t.Errorf("after expire: %+v, %v", stored.Status, err)
	}
	res, err = alerts.Run(ctx, request(AlertsName, mustValidate(t, AlertsSpec(), map[string]any{"service": "checkout"})))
	if err != nil || res.Table.Rows[0][4] != "firing" {
		t.Errorf("after expire the alerts show %v, %v", res.Table, err)
	}

	// An ended silence cannot be ended again; the plan says so.
	if _, err := expirer.Plan(ctx, request(ExpireName, ep)); !errors.Is(err, action.ErrInvalid) || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("expire twice: %v", err)
	}
}

func TestExpireUnknownSilence(t *testing.T) {
	am := startAM(t, nil)
	c := newTestClient(t, Options{URL: am.URL})
	expirer := NewExpirer(c)
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "0badc0de"} {
		_, err := expirer.Plan(context.Background(), request(ExpireName, mustValidate(t, ExpireSpec(), map[string]any{"silence": id})))
		if !errors.Is(err, action.ErrNotFound) {
			t.Errorf("expire %s: %v, want not found", id, err)
		}
	}
	if err := c.ExpireSilence(context.Background(), "00000000-0000-4000-8000-000000000000"); !errors.Is(err, action.ErrNotFound) {
		t.Errorf("DELETE of an unknown silence: %v, want not found", err)
	}
}

func TestBasicAuthAgainstAlertmanager(t *testing.T) {
	password := "am-" + "basic-pw-9f3c"
	am := startAM(t, &promtest.BasicAuth{User: "parley", Password: password})
	now := time.Now().UTC()
	postAlerts(t, am, func(r *http.Request) { r.SetBasicAuth("parley", password) }, shop(now)[:1]...)

	c := newTestClient(t, Options{URL: am.URL, BasicUser: "parley", BasicPassword: password})
	res, err := NewAlerts(c).Run(context.Background(), request(AlertsName, nil))
	if err != nil || !strings.HasPrefix(res.Text, "Firing: 1 alert in 1 group") {
		t.Fatalf("with the right password: %q, %v", res.Text, err)
	}
	wrong := newTestClient(t, Options{URL: am.URL, BasicUser: "parley", BasicPassword: password + "x"})
	_, err = NewAlerts(wrong).Run(context.Background(), request(AlertsName, nil))
	if !errors.Is(err, action.ErrForbidden) || !strings.Contains(err.Error(), "credentials were refused") || strings.Contains(err.Error(), password) {
		t.Errorf("with a wrong password: %v", err)
	}
}

// TestBearerTokenThroughProxy puts an authenticating reverse proxy (as
// deployments do: Alertmanager itself has no bearer tokens) in front of
// the real Alertmanager.
func TestBearerTokenThroughProxy(t *testing.T) {
	am := startAM(t, nil)
	token := "am-" + "proxy-token-51e7"
	target, err := url.Parse(am.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	postAlerts(t, am, nil, shop(time.Now())[3])

	c := newTestClient(t, Options{URL: srv.URL, BearerToken: token})
	res, err := NewAlerts(c).Run(context.Background(), request(AlertsName, nil))
	if err != nil || !strings.Contains(res.Text, "1 alert") {
		t.Fatalf("through the proxy: %q, %v", res.Text, err)
	}
	c = newTestClient(t, Options{URL: srv.URL, BearerToken: token + "-old"})
	_, err = NewSilencer(c).Plan(context.Background(), request(SilenceName, mustValidate(t, SilenceSpec(), map[string]any{"service": "payments"})))
	if !errors.Is(err, action.ErrForbidden) || strings.Contains(err.Error(), token) {
		t.Errorf("with a stale token: %v", err)
	}
}

func fieldValue(res action.Result, label string) string {
	for _, f := range res.Fields {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

func equalRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			return false
		}
	}
	return true
}
