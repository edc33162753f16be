package action

// The built-in catalog. Names and parameters are a public contract
// (DESIGN.md, "Action catalog"): routers, policies, datasets and LLM tool
// definitions are written against them. Integrations implement these specs;
// internal/app registers the implementations explicitly.

// Action names.
const (
	Help               = "help"
	PrometheusQuery    = "prometheus.query"
	LokiQuery          = "loki.query"
	KubernetesStatus   = "kubernetes.status"
	KubernetesScale    = "kubernetes.scale"
	KubernetesRollback = "kubernetes.rollback"
	KubernetesRestart  = "kubernetes.restart"
	EvaluationRun      = "evaluation.run"
	EvaluationStatus   = "evaluation.status"
	IncidentDiagnose   = "incident.diagnose"
	None               = "none"
)

// Metrics are the named metrics of prometheus.query.
var Metrics = []string{"error_rate", "latency_p99", "latency_p95", "latency_p50", "request_rate", "cpu", "memory", "restarts"}

// LogLevels are the levels of loki.query.
var LogLevels = []string{"error", "warn", "info", "debug"}

func intp(n int) *int { return &n }

// Catalog returns the specs of every built-in action, in a stable order.
// The slice is new on every call.
func Catalog() []Spec {
	deployment := func(required bool) Param {
		return Param{Name: "deployment", Type: String, Source: Deployments, Required: required,
			Description: "Kubernetes Deployment name, e.g. checkout"}
	}
	namespace := Param{Name: "namespace", Type: String, Source: Namespaces, Required: true,
		Description: "Kubernetes namespace, e.g. prod; defaults to the channel's bound namespace"}
	window := Param{Name: "window", Type: Duration,
		Description: "time window as a Prometheus duration: 30m, 1h, 1d"}
	service := Param{Name: "service", Type: String, Source: Services, Description: "service name, e.g. payments"}
	return []Spec{
		{
			Name: Help, Kind: Read,
			Description: "List what the asking user may do here, with examples.",
			Examples:    []Example{{Text: "help"}, {Text: "what can you do?"}},
		},
		{
			Name: PrometheusQuery, Kind: Read,
			Description: "Query Prometheus for a service metric (error rate, latency percentiles, request rate, cpu, memory, restarts) or a raw PromQL expression.",
			Params: []Param{
				service,
				{Name: "metric", Type: Enum, Enum: Metrics, Description: "named metric"},
				window,
				{Name: "query", Type: String, Description: "raw PromQL, only when the user wrote it literally"},
			},
			Examples: []Example{{Text: "error rate of checkout over the last hour"}, {Text: "p99 latency for payments"}, {Text: "`sum(rate(http_requests_total[5m]))`"}},
		},
		{
			Name: LokiQuery, Kind: Read,
			Description: "Search a service's logs in Loki by level and text, or run raw LogQL.",
			Params: []Param{
				service,
				{Name: "level", Type: Enum, Enum: LogLevels, Description: "log level"},
				{Name: "filter", Type: String, Description: "text the log lines must contain"},
				window,
				{Name: "limit", Type: Int, Min: intp(1), Max: intp(5000), Description: "maximum number of lines"},
				{Name: "query", Type: String, Description: "raw LogQL, only when the user wrote it literally"},
			},
			Examples: []Example{{Text: "show error logs for payments"}, {Text: "logs of checkout containing \"timeout\" in the last 15m"}},
		},
		{
			Name: KubernetesStatus, Kind: Read,
			Description: "Show a Deployment's replicas, image, revision, conditions, restarts and recent warning events.",
			Params:      []Param{deployment(false), withRequired(namespace, false)},
			Examples:    []Example{{Text: "status of checkout in prod"}, {Text: "kubectl get deploy/auth -n staging"}},
		},
		{
			Name: KubernetesScale, Kind: Mutating,
			Description: "Set a Deployment's replica count.",
			Params: []Param{deployment(true), namespace,
				{Name: "replicas", Type: Int, Required: true, Min: intp(0), Max: intp(1000), Description: "desired replica count"}},
			Examples: []Example{{Text: "scale checkout to 5 in prod"}, {Text: "kubectl scale deploy/auth --replicas=3 -n staging"}},
		},
		{
			Name: KubernetesRollback, Kind: Mutating,
			Description: "Roll a Deployment back to its previous revision, or to a named revision (kubectl rollout undo).",
			Params: []Param{deployment(true), namespace,
				{Name: "revision", Type: Int, Min: intp(1), Description: "revision to roll back to; omitted means the previous one"}},
			Examples: []Example{{Text: "roll back payments in prod"}, {Text: "rollback checkout to revision 3 in staging"}},
		},
		{
			Name: KubernetesRestart, Kind: Mutating,
			Description: "Restart a Deployment's pods with a rolling restart (kubectl rollout restart).",
			Params:      []Param{deployment(true), namespace},
			Examples:    []Example{{Text: "restart checkout in staging"}, {Text: "kubectl rollout restart deploy/auth -n prod"}},
		},
		{
			Name: EvaluationRun, Kind: Mutating,
			Description: "Run an evaluation suite, optionally for a variant against a baseline (spends model tokens).",
			Params: []Param{
				{Name: "suite", Type: String, Source: EvalSuites, Required: true, Description: "evaluation suite, e.g. intent-routing"},
				{Name: "variant", Type: String, Source: EvalVariants, Description: "variant to evaluate, e.g. prompt-v2"},
				{Name: "baseline", Type: String, Source: EvalVariants, Description: "variant to compare against"},
			},
			Examples: []Example{{Text: "run the intent-routing eval against prompt-v2"}, {Text: "eval run intent-routing variant:prompt-v2"}},
		},
		{
			Name: EvaluationStatus, Kind: Read,
			Description: "Show the status and results of an evaluation run, or the latest run of a suite.",
			Params: []Param{
				{Name: "run", Type: Int, Min: intp(1), Description: "evaluation run number"},
				{Name: "suite", Type: String, Source: EvalSuites, Description: "evaluation suite"},
			},
			Examples: []Example{{Text: "how did the last eval go?"}, {Text: "status of eval run 42"}},
		},
		{
			Name: IncidentDiagnose, Kind: Read,
			Description: "Diagnose a service: key metrics, recent error logs, Kubernetes state and recent rollouts, summarised.",
			Params:      []Param{withRequired(service, false), window},
			Examples:    []Example{{Text: "why is payments slow?"}, {Text: "what's wrong with checkout"}},
		},
	}
}

func withRequired(p Param, required bool) Param {
	p.Required = required
	return p
}

// CatalogSpec returns the built-in spec with the given name.
func CatalogSpec(name string) (Spec, bool) {
	for _, s := range Catalog() {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}
