package prometheus

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// DefaultTemplates are the PromQL templates of the named metrics, written
// for the conventional http_requests_total / http_request_duration_seconds
// instrumentation, cAdvisor and kube-state-metrics. Options.Templates
// overrides them one by one.
var DefaultTemplates = map[string]string{
	"error_rate": `(sum(rate(http_requests_total{service="{{.Service}}",code=~"5.."}[{{.Window}}])) or vector(0))` +
		` / sum(rate(http_requests_total{service="{{.Service}}"}[{{.Window}}]))`,
	"latency_p99":  latency("0.99"),
	"latency_p95":  latency("0.95"),
	"latency_p50":  latency("0.5"),
	"request_rate": `sum(rate(http_requests_total{service="{{.Service}}"}[{{.Window}}]))`,
	"cpu":          `sum(rate(container_cpu_usage_seconds_total{container="{{.Service}}"}[{{.Window}}]))`,
	"memory":       `sum(container_memory_working_set_bytes{container="{{.Service}}"})`,
	"restarts":     `sum(increase(kube_pod_container_status_restarts_total{container="{{.Service}}"}[{{.Window}}]))`,
}

func latency(q string) string {
	return `histogram_quantile(` + q + `, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{.Service}}"}[{{.Window}}])))`
}

// metric says how a named metric is titled, formatted and windowed.
type metric struct {
	title  string
	unit   unit
	ranged bool // the template uses {{.Window}} as a rate/increase range
	// total: the value "now" covers the whole window (restarts in the
	// last hour), not the last RateRange.
	total bool
}

var metrics = map[string]metric{
	"error_rate":   {title: "error rate", unit: unitPercent, ranged: true},
	"latency_p99":  {title: "p99 latency", unit: unitSeconds, ranged: true},
	"latency_p95":  {title: "p95 latency", unit: unitSeconds, ranged: true},
	"latency_p50":  {title: "p50 latency", unit: unitSeconds, ranged: true},
	"request_rate": {title: "request rate", unit: unitPerSecond, ranged: true},
	"cpu":          {title: "CPU", unit: unitCores, ranged: true},
	"memory":       {title: "memory", unit: unitBytes},
	"restarts":     {title: "restarts", unit: unitCount, ranged: true, total: true},
}

func (q *Query) parseTemplates(overrides map[string]string) error {
	src := maps.Clone(DefaultTemplates)
	for name, text := range overrides {
		if _, ok := metrics[name]; !ok {
			return fmt.Errorf("prometheus: template for unknown metric %q (known: %s)", name, metricNames())
		}
		if strings.TrimSpace(text) == "" {
			return fmt.Errorf("prometheus: template for %s is empty", name)
		}
		src[name] = text
	}
	q.templates = make(map[string]*template.Template, len(src))
	q.sources = src
	for _, name := range slices.Sorted(maps.Keys(src)) {
		t, err := template.New(name).Option("missingkey=error").Parse(src[name])
		if err != nil {
			return fmt.Errorf("prometheus: template for %s: %v", name, err)
		}
		// Execute once, so a misspelt field fails at startup, not in chat.
		if _, err := render(t, TemplateData{Service: "svc", Window: "5m"}); err != nil {
			return fmt.Errorf("prometheus: template for %s: %v", name, err)
		}
		q.templates[name] = t
	}
	return nil
}

func render(t *template.Template, d TemplateData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// promDuration writes d for PromQL: whole seconds at least, largest units.
func promDuration(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	return action.FormatDuration(d.Truncate(time.Second))
}
