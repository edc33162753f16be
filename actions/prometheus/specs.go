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
			{Name: "metric", Type: action.Enum, Enum: Metrics, Description: "named metric", Synonyms: metricWords},
			{Name: "window", Type: action.Duration, Description: "time window as a Prometheus duration: 30m, 1h, 1d"},
			{Name: "query", Type: action.String, Code: true, Description: "raw PromQL, only when the user wrote it literally"},
		},
		Examples: []action.Example{
			{Text: "error rate of checkout over the last hour", Params: map[string]any{"service": "checkout", "metric": "error_rate", "window": "1h"}},
			{Text: "p99 latency for payments", Params: map[string]any{"service": "payments", "metric": "latency_p99"}},
			{Text: "`sum(rate(http_requests_total[5m]))`", Params: map[string]any{"query": "sum(rate(http_requests_total[5m]))"}},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"metrics": 2, "metric": 2, "graph": 2, "graphs": 2, "chart": 2, "charts": 2, "plot": 2, "prom": 2,
			"stats": 2, "statistics": 2, "numbers": 2,
			"prometheus": 3, "promql": 3,
			"dashboard": 1.5, "dashboards": 1.5, "grafana": 1.5,
			"(kubectl|k) top": 3,
			"<metric>":        3, // naming a metric nearly settles it
			"<service>":       0.3,
			"<window>":        0.3,
		}},
	}
}

// metricWords are what people call the metrics. "latency" and "response
// time" name no percentile: alone they mean the first, p99.
var metricWords = map[string][]string{
	"error_rate": {"errorrate", "5xx", "5xxs", "500s", "5xx's", "err-rate",
		"(error|errors|failure|failures|fail|failed|5xx|err) (rate|rates|ratio|percentage|percent|%)",
		"(error|errors|failure|failures|fail|failed|5xx|err) per (second|sec|minute)",
		"many (errors|failures|failed|5xx|500s|errored|failing)",
		"(percentage|percent|%|fraction|share) of? (errors|failures|failed|5xx|500s|errored|failing)",
		"(failed|failing|errored) (requests|calls|responses)", "success rate"},
	"latency_p99": {"p99", "p99.9", "99th", "99p", "tail-latency", "tail (latency|latencies)",
		"latency", "latencies", "response-time", "response (time|times)"},
	"latency_p95": {"p95", "95th", "95p", "latency", "latencies", "response-time", "response (time|times)"},
	"latency_p50": {"p50", "50th", "50p", "median", "latency", "latencies", "response-time", "response (time|times)"},
	"request_rate": {"rps", "qps", "tps", "throughput", "traffic", "request-rate",
		"(request|requests|req|reqs) (rate|rates|volume|per|count)", "many (requests|req|reqs)"},
	"cpu":    {"cpus", "processor", "(kubectl|k) top"},
	"memory": {"mem", "ram", "rss", "heap", "(memory|mem) usage"},
	"restarts": {"crashloop", "crashlooping", "crashloopbackoff", "crashloops", "crash-looping", "oomkills",
		"restart (count|counts)", "crash (loop|looping|loops)", "many times ... (restart|restarted|crash|crashed|restarting)"},
}
