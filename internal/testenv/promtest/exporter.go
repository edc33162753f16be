package promtest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultBuckets are the latency buckets of the exporter's histogram, in
// seconds (client_golang's defaults).
var DefaultBuckets = prometheus.DefBuckets

// Exporter is a /metrics endpoint on 127.0.0.1 in the test process, with
// the series Parley's default templates read:
//
//	http_requests_total{service, code}                counter
//	http_request_duration_seconds_bucket{service, le} histogram (DefaultBuckets)
//
// Tests move the numbers with AddRequests and Observe, and may register
// more collectors (container_cpu_usage_seconds_total, …) on Registry.
type Exporter struct {
	Registry *prometheus.Registry
	Addr     string // host:port, for Target.Addrs
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewExporter starts an exporter that is closed when the test ends.
func NewExporter(t testing.TB) *Exporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &Exporter{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by service and status code.",
		}, []string{"service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by service.", Buckets: DefaultBuckets,
		}, []string{"service"}),
	}
	reg.MustRegister(e.requests, e.duration)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	e.Addr = strings.TrimPrefix(srv.URL, "http://")
	return e
}

// Init creates a service's series at zero, so that the first scrape sees
// them and later increases show up in rate() from the start.
func (e *Exporter) Init(service string, codes ...string) {
	for _, c := range codes {
		e.requests.WithLabelValues(service, c)
	}
	e.duration.WithLabelValues(service)
}

// AddRequests counts n requests of service answered with code.
func (e *Exporter) AddRequests(service, code string, n int) {
	e.requests.WithLabelValues(service, code).Add(float64(n))
}

// Observe records n requests of service that took seconds each.
func (e *Exporter) Observe(service string, seconds float64, n int) {
	h := e.duration.WithLabelValues(service)
	for range n {
		h.Observe(seconds)
	}
}
