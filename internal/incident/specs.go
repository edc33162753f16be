package incident

import "github.com/parley-chatops/parley/internal/action"

// Specs is incident.diagnose's public contract: its typed parameters, how
// people ask for it (the offline router reads Vocabulary, Examples and the
// parameters' Words) and what help and the LLM tools show.
func Specs() []action.Spec { return []action.Spec{diagnoseSpec()} }

func diagnoseSpec() action.Spec {
	return action.Spec{
		Name: action.IncidentDiagnose, Kind: action.Read,
		Description: "Diagnose a service: key metrics, recent error logs, Kubernetes state and recent rollouts, summarised.",
		Params: []action.Param{
			{Name: "service", Type: action.String, Source: action.Services, Description: "service name, e.g. payments"},
			{Name: "window", Type: action.Duration, Description: "time window as a Prometheus duration: 30m, 1h, 1d"},
		},
		Examples: []action.Example{
			{Text: "why is payments slow?", Params: map[string]any{"service": "payments"}},
			{Text: "what's wrong with checkout", Params: map[string]any{"service": "checkout"}},
		},
	}
}
