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
			{Name: "suite", Type: action.String, Source: action.EvalSuites, Required: true, Description: "evaluation suite, e.g. intent-routing",
				Words: []string{"suite"}},
			{Name: "variant", Type: action.String, Source: action.EvalVariants, Description: "variant to evaluate, e.g. prompt-v2",
				Words: []string{"variant"}},
			{Name: "baseline", Type: action.String, Source: action.EvalVariants, Description: "variant to compare against",
				Words: []string{"baseline", "vs", "versus", "compared", "relative"}},
		},
		Examples: []action.Example{
			{Text: "run the intent-routing eval against prompt-v2", Params: map[string]any{"suite": "intent-routing", "variant": "prompt-v2"}},
			{Text: "eval run intent-routing variant:prompt-v2", Params: map[string]any{"suite": "intent-routing", "variant": "prompt-v2"}},
		},
		Vocabulary: action.Vocabulary{
			// run, start, launch, test... are verbs of many things: they
			// ask for a run only beside an evaluation word or a suite or
			// variant name
			Verbs: []string{"evaluate", "benchmark", "run", "start", "launch", "trigger", "execute", "rerun", "re-run",
				"begin", "kickoff", "kick off", "queue", "test", "compare"},
			Cues: evalWords,
		},
	}
}

func statusSpec() action.Spec {
	return action.Spec{
		Name: action.EvaluationStatus, Kind: action.Read,
		Description: "Show the status and results of an evaluation run, or the latest run of a suite.",
		Params: []action.Param{
			{Name: "run", Type: action.Int, Min: intp(1), Description: "evaluation run number",
				Words: []string{"run", "runs", "id", "run-id", "run_id", "runid", "eval", "evaluation", "status", "#"}},
			{Name: "suite", Type: action.String, Source: action.EvalSuites, Description: "evaluation suite", Words: []string{"suite"}},
		},
		Examples: []action.Example{
			{Text: "how did the last eval go?"},
			{Text: "status of eval run 42", Params: map[string]any{"run": 42}},
		},
		Vocabulary: action.Vocabulary{Cues: statusWords()},
	}
}

// evalWords say an evaluation is talked about; suite and variant names do
// too.
var evalWords = map[string]float64{
	"eval": 2.5, "evals": 2.5, "evaluation": 2.5, "evaluations": 2.5, "benchmark": 2.5, "benchmarks": 2.5,
	"suite": 2.5, "suites": 2.5, "evaluate": 2.5,
	"<suite>": 2.5, "<variant>": 2.5, "<baseline>": 2.5,
}

// statusWords ask how a run went: evaluation words, and words of results
// (weak alone: "done?" asks nothing of an evaluation).
func statusWords() map[string]float64 {
	cues := map[string]float64{
		"status":  3, // shared with kubernetes.status: ours when an evaluation is named ("eval status")
		"results": 1, "result": 1, "score": 1, "scores": 1, "report": 1, "progress": 1, "finished": 1, "done": 1,
		"complete": 1, "completed": 1, "outcome": 1, "accuracy": 1, "went": 1, "running": 1.5,
		"how ... go": 1, // "how did the last eval go?"
		"<run>":      2,
	}
	for w, v := range evalWords {
		if w != "<variant>" && w != "<baseline>" {
			cues[w] = v
		}
	}
	return cues
}
