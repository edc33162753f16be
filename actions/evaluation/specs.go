package evaluation

import "github.com/parley-chatops/parley/internal/action"

// Specs are evaluation.run's and evaluation.status's public contracts:
// their typed parameters, how people ask for them (the offline router reads
// Vocabulary, Examples and the parameters' Words) and what help and the LLM
// tools show.
func Specs() []action.Spec { return []action.Spec{runSpec(), statusSpec()} }

func intp(n int) *int { return &n }

func runSpec() action.Spec {
	return action.Spec{
		Name: action.EvaluationRun, Kind: action.Mutating,
		Description: "Run an evaluation suite, optionally for a variant against a baseline (spends model tokens).",
		Params: []action.Param{
			{Name: "suite", Type: action.String, Source: action.EvalSuites, Required: true, Description: "evaluation suite, e.g. intent-routing"},
			{Name: "variant", Type: action.String, Source: action.EvalVariants, Description: "variant to evaluate, e.g. prompt-v2"},
			{Name: "baseline", Type: action.String, Source: action.EvalVariants, Description: "variant to compare against"},
		},
		Examples: []action.Example{
			{Text: "run the intent-routing eval against prompt-v2", Params: map[string]any{"suite": "intent-routing", "variant": "prompt-v2"}},
			{Text: "eval run intent-routing variant:prompt-v2", Params: map[string]any{"suite": "intent-routing", "variant": "prompt-v2"}},
		},
	}
}

func statusSpec() action.Spec {
	return action.Spec{
		Name: action.EvaluationStatus, Kind: action.Read,
		Description: "Show the status and results of an evaluation run, or the latest run of a suite.",
		Params: []action.Param{
			{Name: "run", Type: action.Int, Min: intp(1), Description: "evaluation run number"},
			{Name: "suite", Type: action.String, Source: action.EvalSuites, Description: "evaluation suite"},
		},
		Examples: []action.Example{
			{Text: "how did the last eval go?"},
			{Text: "status of eval run 42", Params: map[string]any{"run": 42}},
		},
	}
}
