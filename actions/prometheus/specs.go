package prometheus

import "github.com/parley-chatops/parley/internal/action"

// Metrics are the named metrics of prometheus.query, the values of its
// metric parameter; DefaultTemplates has a PromQL template for each.
var Metrics = []string{"error_rate", "latency_p99", "latency_p95", "latency_p50", "request_rate", "cpu", "memory", "restarts"}

// Specs is prometheus.query's public contract: its typed parameters, how
// people ask for it (the offline router reads Vocabulary, Examples and the
// parameters' Words and Synonyms) and what help and the LLM tools show.
func Specs() []action.Spec { return []action.Spec{querySpec()} }

func querySpec() action.Spec {
	return action.Spec{
		Name: action.PrometheusQuery, Kind: action.Read,
		Description: "Query Prometheus for a service metric (error rate, latency percentiles, request rate, cpu, memory, restarts) or a raw PromQL expression.",
		Params: []action.Param{
			{Name: "service", Type: action.String, Source: action.Services, Description: "service name, e.g. payments"},
			{Name: "metric", Type: action.Enum, Enum: Metrics, Description: "named metric"},
			{Name: "window", Type: action.Duration, Description: "time window as a Prometheus duration: 30m, 1h, 1d"},
			{Name: "query", Type: action.String, Description: "raw PromQL, only when the user wrote it literally"},
		},
		Examples: []action.Example{
			{Text: "error rate of checkout over the last hour", Params: map[string]any{"service": "checkout", "metric": "error_rate", "window": "1h"}},
			{Text: "p99 latency for payments", Params: map[string]any{"service": "payments", "metric": "latency_p99"}},
			{Text: "`sum(rate(http_requests_total[5m]))`", Params: map[string]any{"query": "sum(rate(http_requests_total[5m]))"}},
		},
	}
}
