package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPrometheusScrapesExporter(t *testing.T) {
	exp := NewExporter(t)
	exp.Init("checkout", "200", "500")
	prom := StartPrometheus(t, Config{Targets: []Target{{Job: "app", Addrs: []string{exp.Addr}}}})
	prom.WaitForTargets(t, 30*time.Second, 1)

	exp.AddRequests("checkout", "200", 7)
	exp.AddRequests("checkout", "500", 3)
	exp.Observe("checkout", 0.2, 4)
	got := prom.WaitForValue(t, 30*time.Second, `sum(http_requests_total{service="checkout"})`, func(v float64) bool { return v == 10 })
	if got != 10 {
		t.Fatalf("sum = %v", got)
	}
	prom.WaitForValue(t, 30*time.Second, `http_request_duration_seconds_count{service="checkout"}`, func(v float64) bool { return v == 4 })
	prom.WaitForValue(t, 30*time.Second, `http_request_duration_seconds_bucket{service="checkout",le="0.25"}`, func(v float64) bool { return v == 4 })
	prom.WaitForValue(t, 30*time.Second, `http_request_duration_seconds_bucket{service="checkout",le="0.1"}`, func(v float64) bool { return v == 0 })
}

func TestPrometheusBackfill(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Minute)
	var b strings.Builder
	b.WriteString("# TYPE parley_backfilled gauge\n")
	for i := 120; i >= 0; i-- {
		ts := end.Add(-time.Duration(i) * time.Minute)
		fmt.Fprintf(&b, "parley_backfilled{kind=\"test\"} %d %d\n", i, ts.Unix())
	}
	b.WriteString("# EOF\n")
	prom := StartPrometheus(t, Config{Backfill: b.String()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _, _, err := prom.API.Query(ctx, `parley_backfilled`, end.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.String(); !strings.Contains(got, "=> 60 @") {
		t.Fatalf("value an hour before the end = %s, want 60", got)
	}
}

// TestAlertmanagerReceivesPrometheusAlerts runs the whole alerting path:
// a rule that always fires, Prometheus sending it to Alertmanager, and
// Alertmanager posting its webhook to a server in the test.
func TestAlertmanagerReceivesPrometheusAlerts(t *testing.T) {
	got := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg map[string]any
		if err := json.Unmarshal(body, &msg); err == nil {
			select {
			case got <- msg:
			default:
			}
		}
	}))
	t.Cleanup(hook.Close)

	am := StartAlertmanager(t, AlertmanagerConfig{WebhookURL: hook.URL})
	StartPrometheus(t, Config{
		Alertmanagers: []string{am.Addr},
		RuleFiles: map[string]string{"alerts.yml": `groups:
  - name: test
    rules:
      - alert: ParleyTestAlert
        expr: vector(1)
        labels: {service: checkout, severity: page}
        annotations: {summary: "always firing"}
`},
	})
	select {
	case msg := <-got:
		if msg["status"] != "firing" {
			t.Errorf("status = %v, want firing", msg["status"])
		}
		labels, _ := msg["commonLabels"].(map[string]any)
		if labels["alertname"] != "ParleyTestAlert" || labels["service"] != "checkout" {
			t.Errorf("commonLabels = %v", labels)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook from Alertmanager within 60s")
	}
}

func TestConfigRender(t *testing.T) {
	c := Config{Targets: []Target{{Addrs: []string{"127.0.0.1:1"}}}, ScrapeInterval: 2 * time.Second}
	got := c.render(t, t.TempDir())
	for _, want := range []string{"scrape_interval: 2s", `job_name: "test"`, `- "127.0.0.1:1"`, "evaluation_interval: 1s"} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}
