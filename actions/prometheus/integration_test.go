package prometheus

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/testenv/promtest"
)

// These tests run a real Prometheus (Debian's /usr/bin/prometheus) through
// internal/testenv/promtest. They skip when it is not installed, unless
// PARLEY_REQUIRE_INTEGRATION=1.

func run(t *testing.T, q *Query, params action.Params) action.Result {
	t.Helper()
	res, err := q.Run(context.Background(), action.Request{Action: action.PrometheusQuery, Params: params})
	if err != nil {
		t.Fatalf("Run(%v): %v", params, err)
	}
	return res
}

func field(res action.Result, label string) string {
	for _, f := range res.Fields {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

var chartDir = flag.String("charts", "", "write the charts the tests make into this directory, to look at them")

func assertChart(t *testing.T, res action.Result) {
	t.Helper()
	if *chartDir != "" && len(res.Images) > 0 {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".png"
		if err := os.WriteFile(filepath.Join(*chartDir, name), res.Images[0].Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(res.Images) != 1 {
		t.Fatalf("want one chart, got %d images (text %q)", len(res.Images), res.Text)
	}
	img := res.Images[0]
	if img.ContentType != "image/png" || img.Name == "" || img.AltText == "" {
		t.Errorf("image metadata = %q %q %q", img.Name, img.ContentType, img.AltText)
	}
	decoded, err := png.Decode(bytes.NewReader(img.Data))
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if b := decoded.Bounds(); b.Dx() != 800 || b.Dy() != 300 {
		t.Errorf("chart is %dx%d, want 800x300", b.Dx(), b.Dy())
	}
}

// history writes two hours and a quarter of samples, every 15s up to end,
// of a service whose error rate went from 1% to 5% 30 minutes before end,
// at 10 requests a second throughout, with 90% of requests in the
// (0.025s, 0.05s] latency bucket and 10% in (0.25s, 0.5s].
func history(end time.Time) string {
	var b strings.Builder
	type sample struct {
		name, labels string
		v            func(sec float64, late bool, lateSec float64) float64
	}
	const start = 135 * 60 // seconds of history
	switchAt := float64(start - 30*60)
	count := func(earlyRate, lateRate float64) func(float64, bool, float64) float64 {
		return func(sec float64, late bool, lateSec float64) float64 {
			if !late {
				return 1000 + earlyRate*sec
			}
			return 1000 + earlyRate*switchAt + lateRate*lateSec
		}
	}
	per := func(r float64) func(float64, bool, float64) float64 { return count(r, r) }
	series := []sample{
		{"http_requests_total", `service="checkout",code="200"`, count(9.9, 9.5)},
		{"http_requests_total", `service="checkout",code="500"`, count(0.1, 0.5)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="0.025"`, per(0)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="0.05"`, per(9)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="0.1"`, per(9)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="0.25"`, per(9)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="0.5"`, per(10)},
		{"http_request_duration_seconds_bucket", `service="checkout",le="+Inf"`, per(10)},
		{"container_cpu_usage_seconds_total", `container="checkout"`, per(0.25)},
		{"container_memory_working_set_bytes", `container="checkout"`, func(_ float64, late bool, _ float64) float64 {
			if late {
				return 768 << 20
			}
			return 512 << 20
		}},
		{"kube_pod_container_status_restarts_total", `container="checkout"`, func(sec float64, _ bool, _ float64) float64 {
			n := 0.0
			for _, at := range []float64{start - 90*60, start - 40*60, start - 10*60} {
				if sec >= at {
					n++
				}
			}
			return n
		}},
	}
	// Typed as gauges: PromQL does not care, and OpenMetrics' counter and
	// histogram families would need _created, _count and _sum samples too.
	done := map[string]bool{}
	for _, fam := range series {
		if done[fam.name] {
			continue
		}
		done[fam.name] = true
		fmt.Fprintf(&b, "# TYPE %s gauge\n", fam.name)
		for _, s := range series {
			if s.name != fam.name {
				continue
			}
			for sec := 0; sec <= start; sec += 15 {
				ts := end.Add(time.Duration(sec-start) * time.Second)
				late := float64(sec) > switchAt
				fmt.Fprintf(&b, "%s{%s} %g %d\n", s.name, s.labels, s.v(float64(sec), late, float64(sec)-switchAt), ts.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

// TestNamedMetricsWithHistory backfills known history into a real
// Prometheus and checks every named metric's words, numbers and chart.
func TestNamedMetricsWithHistory(t *testing.T) {
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	prom := promtest.StartPrometheus(t, promtest.Config{Backfill: history(end)})
	q, err := New(Options{URL: prom.URL, Now: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		metric, window, want string
	}{
		{"error_rate", "1h", "checkout error rate: 5.0% now, up from 1.0% 1h ago"},
		{"error_rate", "", "checkout error rate: 5.0% now, up from 1.0% 1h ago"}, // default window
		{"error_rate", "15m", "checkout error rate: 5.0% now, unchanged from 15m ago"},
		{"latency_p99", "1h", "checkout p99 latency: 475 ms now, unchanged from 1h ago"},
		{"latency_p95", "1h", "checkout p95 latency: 375 ms now"},
		{"latency_p50", "1h", "checkout p50 latency: 38.9 ms now"},
		{"request_rate", "1h", "checkout request rate: 10 req/s now, unchanged from 1h ago"},
		{"cpu", "1h", "checkout CPU: 0.25 cores now"},
		{"memory", "1h", "checkout memory: 768 MiB now, up from 512 MiB 1h ago"},
		{"restarts", "1h", "checkout restarts: 2 in the last 1h, 1 in the 1h before"},
	}
	for _, c := range cases {
		t.Run(c.metric+"/"+c.window, func(t *testing.T) {
			p := action.Params{"service": "checkout", "metric": c.metric}
			if c.window != "" {
				p["window"] = c.window
			}
			res := run(t, q, p)
			if !strings.HasPrefix(res.Text, c.want) {
				t.Errorf("text = %q, want it to start %q", res.Text, c.want)
			}
			if got := field(res, "PromQL"); !strings.Contains(got, `"checkout"`) {
				t.Errorf("PromQL field = %q", got)
			}
			assertChart(t, res)
		})
	}

	t.Run("overview", func(t *testing.T) {
		res := run(t, q, action.Params{"service": "checkout"})
		want := "checkout, last 5m: request rate 10 req/s, error rate 5.0%, p99 latency 475 ms"
		if res.Text != want {
			t.Errorf("text = %q, want %q", res.Text, want)
		}
	})
	t.Run("no data", func(t *testing.T) {
		res := run(t, q, action.Params{"service": "nosuch", "metric": "error_rate"})
		want := "No samples for service nosuch (error rate) in the last 5m: check the service label or the template for error_rate."
		if res.Text != want {
			t.Errorf("text = %q, want %q", res.Text, want)
		}
		if len(res.Images) != 0 {
			t.Error("chart for no data")
		}
	})
	t.Run("raw range with window", func(t *testing.T) {
		res := run(t, q, action.Params{"query": `sum by (code) (rate(http_requests_total[5m]))`, "window": "2h"})
		if !strings.HasPrefix(res.Text, "`sum by (code) (rate(http_requests_total[5m]))`: 2 series") {
			t.Errorf("text = %q", res.Text)
		}
		assertChart(t, res)
	})
}

// TestLiveTraffic drives an exporter in the test process and checks the
// numbers Parley reads back from a real Prometheus scraping it every 1s.
func TestLiveTraffic(t *testing.T) {
	exp := promtest.NewExporter(t)
	exp.Init("checkout", "200", "500")
	exp.Init("payments", "200", "500")
	items := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parley_test_items", Help: "items per shelf"}, []string{"shelf"})
	exp.Registry.MustRegister(items)
	for i := range 25 {
		items.WithLabelValues(fmt.Sprintf("s%02d", i)).Set(float64(i))
	}
	prom := promtest.StartPrometheus(t, promtest.Config{Targets: []promtest.Target{{Job: "shop", Addrs: []string{exp.Addr}}}})
	prom.WaitForTargets(t, 30*time.Second, 1) // the zeros are scraped before the traffic

	exp.AddRequests("checkout", "200", 95)
	exp.AddRequests("checkout", "500", 5)
	exp.AddRequests("payments", "200", 50)
	exp.Observe("checkout", 0.03, 90)
	exp.Observe("checkout", 0.4, 10)
	prom.WaitForValue(t, 30*time.Second, `sum(http_requests_total{service="checkout"})`, func(v float64) bool { return v == 100 })
	prom.WaitForValue(t, 30*time.Second, `sum(http_request_duration_seconds_count{service="checkout"})`, func(v float64) bool { return v == 100 })

	at := time.Now()
	q, err := New(Options{URL: prom.URL, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("error rate", func(t *testing.T) {
		res := run(t, q, action.Params{"service": "checkout", "metric": "error_rate", "window": "1h"})
		if want := "checkout error rate: 5.0% now (no data 1h ago)"; res.Text != want {
			t.Errorf("text = %q, want %q", res.Text, want)
		}
		assertChart(t, res)
		if res.Outcome["value"] != "5.0%" {
			t.Errorf("outcome = %v", res.Outcome)
		}
	})
	t.Run("latency", func(t *testing.T) {
		// 90 requests in (0.025, 0.05], 10 in (0.25, 0.5]: p99 interpolates
		// to 0.25 + 0.25 * (99-90)/10 = 0.475s.
		res := run(t, q, action.Params{"service": "checkout", "metric": "latency_p99"})
		if !strings.HasPrefix(res.Text, "checkout p99 latency: 475 ms now") {
			t.Errorf("text = %q", res.Text)
		}
	})
	t.Run("request rate", func(t *testing.T) {
		// rate() extrapolates from the scrape times, so compare with
		// Prometheus's own increase over the same 5m at the same instant.
		v, _, _, err := prom.API.Query(context.Background(), `sum(increase(http_requests_total{service="checkout"}[5m]))`, at)
		if err != nil {
			t.Fatal(err)
		}
		inc, n := single(v)
		if n != 1 || inc < 100 {
			t.Fatalf("increase = %v (%d samples)", inc, n)
		}
		want := "checkout request rate: " + unitPerSecond.format(inc/300) + " now"
		res := run(t, q, action.Params{"service": "checkout", "metric": "request_rate"})
		if !strings.HasPrefix(res.Text, want) {
			t.Errorf("text = %q, want it to start %q", res.Text, want)
		}
	})
	t.Run("raw scalar", func(t *testing.T) {
		res := run(t, q, action.Params{"query": "`sum(http_requests_total{service=\"checkout\"})`"})
		if want := "`sum(http_requests_total{service=\"checkout\"})` = 100"; res.Text != want {
			t.Errorf("text = %q, want %q", res.Text, want)
		}
		if field(res, "PromQL") != `sum(http_requests_total{service="checkout"})` {
			t.Errorf("fields = %v", res.Fields)
		}
		res = run(t, q, action.Params{"query": "scalar(sum(http_requests_total)) * 2"})
		if want := "`scalar(sum(http_requests_total)) * 2` = 300"; res.Text != want {
			t.Errorf("text = %q, want %q", res.Text, want)
		}
	})
	t.Run("raw vector table", func(t *testing.T) {
		res := run(t, q, action.Params{"query": "http_requests_total"})
		if res.Table == nil || len(res.Table.Rows) != 4 {
			t.Fatalf("table = %+v", res.Table)
		}
		first := res.Table.Rows[0]
		if !strings.Contains(first[0], `service="checkout"`) || !strings.Contains(first[0], `code="200"`) || first[1] != "95" {
			t.Errorf("first row = %v, want checkout 200 = 95 (highest first)", first)
		}
		if last := res.Table.Rows[3]; !strings.Contains(last[0], `service="payments"`) || last[1] != "0" {
			t.Errorf("last row = %v", last)
		}
		if len(res.Images) != 0 {
			t.Error("chart without a window")
		}
	})
	t.Run("raw table is cut at 20", func(t *testing.T) {
		res := run(t, q, action.Params{"query": "parley_test_items"})
		if res.Table == nil || len(res.Table.Rows) != MaxRows {
			t.Fatalf("table = %+v", res.Table)
		}
		if !strings.Contains(res.Text, "25 series; showing the 20 highest, 5 cut") {
			t.Errorf("text = %q", res.Text)
		}
		if res.Table.Rows[0][1] != "24" {
			t.Errorf("first row = %v", res.Table.Rows[0])
		}
	})
	t.Run("raw matrix", func(t *testing.T) {
		res := run(t, q, action.Params{"query": `http_requests_total{service="checkout"}[1m]`})
		if !strings.HasPrefix(res.Text, "`http_requests_total{service=\"checkout\"}[1m]`: 2 series") {
			t.Errorf("text = %q", res.Text)
		}
		assertChart(t, res)
	})
	t.Run("raw vector with window", func(t *testing.T) {
		res := run(t, q, action.Params{"query": `sum(http_requests_total)`, "window": "5m"})
		assertChart(t, res)
	})
	t.Run("bad PromQL", func(t *testing.T) {
		_, err := q.Run(context.Background(), action.Request{Params: action.Params{"query": "sum(rate(http_requests_total[5m]"}})
		if !errors.Is(err, action.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		if !strings.Contains(err.Error(), "Prometheus rejected the query") || !strings.Contains(err.Error(), "parse error") {
			t.Errorf("err = %q, want Prometheus's parse error", err)
		}
	})
	t.Run("no samples", func(t *testing.T) {
		res := run(t, q, action.Params{"query": `http_requests_total{service="nosuch"}`})
		if !strings.Contains(res.Text, "no samples") {
			t.Errorf("text = %q", res.Text)
		}
	})
}
