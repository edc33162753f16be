package prometheus

import (
	"math"
	"testing"
	"time"
)

func TestUnitFormat(t *testing.T) {
	for _, c := range []struct {
		u    unit
		v    float64
		want string
	}{
		{unitPercent, 0.023, "2.3%"},
		{unitPercent, 0.004, "0.4%"},
		{unitPercent, 0.0005, "0.05%"},
		{unitPercent, 0, "0.0%"},
		{unitPercent, 1, "100.0%"},
		{unitSeconds, 0.475, "475 ms"},
		{unitSeconds, 0.0388889, "38.9 ms"},
		{unitSeconds, 0.00125, "1.25 ms"},
		{unitSeconds, 2.5, "2.50 s"},
		{unitSeconds, 0, "0 ms"},
		{unitPerSecond, 10, "10 req/s"},
		{unitPerSecond, 1234.6, "1235 req/s"},
		{unitPerSecond, 0.333333, "0.3333 req/s"},
		{unitCores, 0.25, "0.25 cores"},
		{unitCores, 12.34, "12.3 cores"},
		{unitBytes, 512 << 20, "512 MiB"},
		{unitBytes, 1.5 * (1 << 30), "1.5 GiB"},
		{unitBytes, 100, "100 B"},
		{unitCount, 2.0000001, "2"},
		{unitNone, 42, "42"},
		{unitNone, 0.000012, "1.2e-05"},
		{unitPercent, math.NaN(), "n/a"},
		{unitSeconds, math.Inf(1), "+Inf"},
	} {
		if got := c.u.format(c.v); got != c.want {
			t.Errorf("format(%v, %v) = %q, want %q", c.u, c.v, got, c.want)
		}
	}
}

func TestTrend(t *testing.T) {
	for _, c := range []struct {
		cur, then float64
		have      bool
		want      string
	}{
		{0.023, 0.004, true, ", up from 0.4% 1h ago"},
		{0.004, 0.023, true, ", down from 2.3% 1h ago"},
		{0.0501, 0.0499, true, ", unchanged from 1h ago"},
		{0.05, 0, false, " (no data 1h ago)"},
		{0.05, math.NaN(), true, " (no data 1h ago)"},
	} {
		if got := trend(unitPercent, c.cur, c.then, c.have, "1h"); got != c.want {
			t.Errorf("trend(%v, %v) = %q, want %q", c.cur, c.then, got, c.want)
		}
	}
}

func TestChartStepAndDurations(t *testing.T) {
	for _, c := range []struct {
		window time.Duration
		step   time.Duration
	}{
		{time.Hour, time.Minute},
		{24 * time.Hour, 24 * time.Minute},
		{30 * time.Second, time.Second},
		{90 * time.Second, time.Second},
	} {
		if got := chartStep(c.window); got != c.step {
			t.Errorf("chartStep(%s) = %s, want %s", c.window, got, c.step)
		}
	}
	if got := promDuration(1500 * time.Millisecond); got != "1s" {
		t.Errorf("promDuration(1.5s) = %q", got)
	}
	if got := promDuration(24 * time.Hour); got != "1d" {
		t.Errorf("promDuration(24h) = %q", got)
	}
}

func TestDefaultTemplatesRender(t *testing.T) {
	q := newQuery(t, Options{})
	want := map[string]string{
		"error_rate":   `(sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) or vector(0)) / sum(rate(http_requests_total{service="checkout"}[5m]))`,
		"latency_p99":  `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="checkout"}[5m])))`,
		"request_rate": `sum(rate(http_requests_total{service="checkout"}[5m]))`,
		"cpu":          `sum(rate(container_cpu_usage_seconds_total{container="checkout"}[5m]))`,
		"memory":       `sum(container_memory_working_set_bytes{container="checkout"})`,
		"restarts":     `sum(increase(kube_pod_container_status_restarts_total{container="checkout"}[5m]))`,
	}
	for name, w := range want {
		got, err := q.expr(name, "checkout", 5*time.Minute)
		if err != nil || got != w {
			t.Errorf("%s = %q, %v; want %q", name, got, err, w)
		}
	}
	for name := range DefaultTemplates {
		if _, ok := metrics[name]; !ok {
			t.Errorf("template %s has no metric definition", name)
		}
	}
	for name := range metrics {
		if _, ok := DefaultTemplates[name]; !ok {
			t.Errorf("metric %s has no default template", name)
		}
	}
	for _, name := range Metrics {
		if _, ok := metrics[name]; !ok {
			t.Errorf("catalog metric %s is not implemented", name)
		}
	}
}
