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
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"why": 3.5, "investigate": 3.5, "investigation": 3.5, "diagnose": 3.5, "diagnosis": 3.5, "diag": 3.5,
			"troubleshoot": 3.5, "rca": 3.5, "analyze": 3.5, "analyse": 3.5, "triage": 3.5, "explain": 3,
			"wrong": 3,
			"slow":  2.5, "slowness": 2.5, "sluggish": 2.5, "laggy": 2.5, "lagging": 2.5, "slower": 2.5,
			"broken": 2, "broke": 2, "failing": 2, "fails": 2, "erroring": 2, "crashing": 2, "flaky": 2, "flapping": 2,
			"unstable": 2, "degraded": 2, "struggling": 2, "weird": 2, "strange": 2, "throwing": 2, "fire": 2,
			"burning": 2, "firing": 2, "alert": 2, "alerting": 2, "alerts": 2, "paging": 2,
			"complaining": 2, "complain": 2, "complains": 2, "complained": 2, "complaints": 2, "funky": 2, "wonky": 2,
			"odd": 2, "funny": 2, "glitchy": 2, "glitching": 2,
			"issue": 2, "issues": 2, "problem": 2, "problems": 2, "incident": 2, "outage": 2, "outages": 2,
			"happening": 2, "happened": 2, "doing": 2, "down": 2, "debug": 2,
			"spiking": 1.5, "spike": 1.5, "spikes": 1.5, "unhealthy": 1.5,
			"look": 1, "off": 1, "errors": 0.5,
			"going on":                             3.5, // the question outweighs a metric quoted as context
			"root cause":                           3,
			"(look|dig|looking|digging) (into|at)": 2.5,
			"acting (up|weird|strange)":            2.5,
			"(timing|timed) out":                   2,
			"what is? (happened|happening)":        1.5,
			"how slow":                             1,
			action.CueWellness:                     2.5, // "is storefront ok?", "something's up with identity"
			action.CueSymptom:                      1.5, // "investigate mailer, emails aren't going out"
			"<service>":                            0.3,
			"<window>":                             0.3,
		}},
	}
}
