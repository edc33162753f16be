package evals

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Output is a target's answer to one case.
type Output struct {
	Text             string
	Intent           *intent.Intent // router target only
	Latency          time.Duration
	PromptTokens     int
	CompletionTokens int
	Cost             float64
	Model            string
}

// CaseResult is one case answered by one variant, with its scores.
type CaseResult struct {
	RunID            int              `json:"run"`
	Variant          string           `json:"variant"`
	CaseID           string           `json:"case"`
	Index            int              `json:"index"` // position in the dataset
	Output           string           `json:"output"`
	Err              string           `json:"error,omitempty"` // the target failed after retries
	Scores           map[string]Score `json:"scores"`
	LatencyMS        float64          `json:"latency_ms"`
	PromptTokens     int              `json:"prompt_tokens"`
	CompletionTokens int              `json:"completion_tokens"`
	Cost             float64          `json:"cost_usd"` // the target's calls
	JudgeTokens      int              `json:"judge_tokens"`
	JudgeCost        float64          `json:"judge_cost_usd"`
}

// maxOutput bounds a stored answer.
const maxOutput = 16 << 10

// engine answers and scores cases; the local runner and Kubernetes
// workers share it.
type engine struct {
	llm     Completer // rate-limited and retried
	router  intent.Router
	catalog []action.Spec // what the router may choose from
	prices  llmcost.Prices
}

// answer runs one case through one variant and scores it. A target
// failure is recorded on the result, not returned; only the end of ctx is
// an error.
func (e *engine) answer(ctx context.Context, s *Suite, ds *Dataset, idx int, variant string) (CaseResult, error) {
	c := ds.Cases[idx]
	res := CaseResult{Variant: variant, CaseID: c.ID, Index: idx, Scores: map[string]Score{}}
	out, err := e.generate(ctx, s, ds, c, variant)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Output = clip(out.Text, maxOutput)
	res.LatencyMS = float64(out.Latency.Microseconds()) / 1000
	res.PromptTokens, res.CompletionTokens, res.Cost = out.PromptTokens, out.CompletionTokens, out.Cost
	if err != nil {
		res.Err = clip(err.Error(), 500)
		for _, m := range s.Metrics {
			res.Scores[m.Name] = Score{Err: "no answer"}
		}
		return res, nil
	}
	for i := range s.Metrics {
		m := &s.Metrics[i]
		if m.Type != LLMJudge {
			res.Scores[m.Name] = m.scoreLocal(c, out)
			continue
		}
		sc, tok, cost, err := e.judge(ctx, m, c, out.Text)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil {
			sc = Score{Err: clip(err.Error(), 300)}
		}
		res.Scores[m.Name] = sc
		res.JudgeTokens += tok
		res.JudgeCost += cost
	}
	return res, nil
}

func (e *engine) generate(ctx context.Context, s *Suite, ds *Dataset, c Case, variant string) (Output, error) {
	v := s.variant[variant]
	if v == nil {
		return Output{}, fmt.Errorf("%w: no variant %q", action.ErrNotFound, variant)
	}
	if s.Target.Type == TargetRouter {
		if e.router == nil {
			return Output{}, fmt.Errorf("%w: no router for the router target", action.ErrNotConfigured)
		}
		start := time.Now()
		got, err := e.router.Route(ctx, intent.Query{Text: c.InputText(), Catalog: e.catalog, Inventory: ds.routing.Inventory})
		out := Output{Latency: time.Since(start), Intent: &got}
		if err != nil {
			return out, err
		}
		b, _ := json.Marshal(map[string]any{"action": got.Action, "params": got.Params})
		out.Text = string(b)
		if got.Usage != nil {
			out.PromptTokens, out.CompletionTokens, out.Cost = got.Usage.PromptTokens, got.Usage.CompletionTokens, got.Usage.Cost
		}
		return out, nil
	}
	comp, err := s.completion(v, c)
	if err != nil {
		return Output{}, err
	}
	a, err := e.llm.Complete(ctx, comp)
	out := Output{Text: a.Text, Latency: a.Latency, PromptTokens: a.PromptTokens, CompletionTokens: a.CompletionTokens, Model: comp.Model}
	out.Cost, _ = e.prices.Cost(comp.Model, a.PromptTokens, a.CompletionTokens)
	return out, err
}

// promptData is what a target prompt template sees.
type promptData struct {
	Case struct {
		ID   string
		Tags []string
	}
}

// completion builds the call for a case: the variant's prompt is the
// system message; the case input goes alone in the user message, as data.
func (s *Suite) completion(v *resolved, c Case) (Completion, error) {
	var d promptData
	d.Case.ID, d.Case.Tags = c.ID, c.Tags
	system, err := v.Prompt.Render(d)
	if err != nil {
		return Completion{}, err
	}
	temp := 0.0
	if v.Params.Temperature != nil {
		temp = *v.Params.Temperature
	}
	return Completion{Provider: v.Params.Provider, Model: v.Params.Model, System: system, User: c.InputText(),
		Temperature: temp, MaxTokens: v.Params.MaxTokens}, nil
}

// judgeMessage is the judge's user message: everything it grades, as one
// JSON object, so that nothing in the answer can pose as instructions.
func judgeMessage(c Case, answer string) string {
	m := map[string]any{"input": json.RawMessage(c.Input), "answer": answer}
	if c.Reference != "" {
		m["reference"] = c.Reference
	}
	if len(c.Expected) > 0 {
		m["expected"] = json.RawMessage(c.Expected)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (e *engine) judge(ctx context.Context, m *MetricSpec, c Case, answer string) (Score, int, float64, error) {
	system, err := m.judge.Render(struct{ Scale string }{m.Scale})
	if err != nil {
		return Score{}, 0, 0, err
	}
	a, err := e.llm.Complete(ctx, Completion{Provider: m.Provider, Model: m.Model, System: system, User: judgeMessage(c, answer), MaxTokens: 200})
	tok := a.PromptTokens + a.CompletionTokens
	cost, _ := e.prices.Cost(m.Model, a.PromptTokens, a.CompletionTokens)
	if err != nil {
		return Score{}, tok, cost, fmt.Errorf("judge: %w", err)
	}
	return judgeVerdict(m.Scale, a.Text), tok, cost, nil
}
