package action

// Names of the built-in actions that other packages refer to by name: the
// incident suggestions and diagnosis sources, the pipeline's help and
// evaluation cancel, and tests. The names are a public contract (routers,
// policies, datasets and LLM tool definitions are written against them);
// each spec lives with the package that implements it, and internal/app
// registers them explicitly. An action nobody else names needs no constant.
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
)

// None is a router's answer when no action fits; the bot then says what it
// can do.
const None = "none"
