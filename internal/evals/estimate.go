package evals

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parley-chatops/parley/internal/llmcost"
)

// Estimate is what a run is expected to spend, before it runs.
type Estimate struct {
	Suite            string
	Cases            int
	Variants         []string
	Calls            int // model calls, judges included
	PromptTokens     int
	CompletionTokens int
	Cost             float64  // US dollars; 0 for the router target
	Models           []string // target models
	Judges           []string // judge models
	Unpriced         []string // models missing from the price table
	Router           bool
}

// judgeAnswerTokens is the expected size of a judge's JSON verdict.
const judgeAnswerTokens = 60

// EstimateRun prices a run from the rendered prompts: per case and
// variant, the prompt tokens of the system prompt and input (bytes/4, the
// documented rule of thumb), and as completion the reference answer's
// size when the case has one, else half of max_tokens; each judge reads
// the case and a reference-sized answer and writes about 60 tokens.
func EstimateRun(s *Suite, ds *Dataset, variant, baseline string, prices llmcost.Prices) Estimate {
	e := Estimate{Suite: s.Name, Cases: len(ds.Cases), Variants: variantsOf(variant, baseline), Router: s.Target.Type == TargetRouter}
	if e.Router {
		return e
	}
	add := func(list *[]string, v string) {
		if !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	price := func(model string, p, c int) {
		e.Calls++
		e.PromptTokens += p
		e.CompletionTokens += c
		cost, ok := prices.Cost(model, p, c)
		if !ok {
			add(&e.Unpriced, model)
		}
		e.Cost += cost
	}
	for _, vn := range e.Variants {
		v := s.variant[vn]
		add(&e.Models, v.Params.Model)
		for _, c := range ds.Cases {
			comp, err := s.completion(v, c)
			if err != nil {
				continue
			}
			out := v.Params.MaxTokens / 2
			if c.Reference != "" {
				out = min(v.Params.MaxTokens, llmcost.ApproxTokens(len(c.Reference)))
			}
			price(v.Params.Model, llmcost.ApproxTokens(len(comp.System)+len(comp.User))+8, out)
			for i := range s.Metrics {
				m := &s.Metrics[i]
				if m.Type != LLMJudge {
					continue
				}
				add(&e.Judges, m.Model)
				sys, _ := m.judge.Render(struct{ Scale string }{m.Scale})
				ans := c.Reference
				if ans == "" {
					ans = strings.Repeat("x", out*4)
				}
				price(m.Model, llmcost.ApproxTokens(len(sys)+len(judgeMessage(c, ans)))+8, judgeAnswerTokens)
			}
		}
	}
	return e
}

// String is the plan line: "run summarizer-golden: 30 cases × 2
// variants (baseline, prompt-v2) with gpt-4o-mini, judged by
// gpt-4o-mini, about $0.04 (120 model calls, ~61k tokens)".
func (e Estimate) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %d cases × %d variant", e.Suite, e.Cases, len(e.Variants))
	if len(e.Variants) != 1 {
		b.WriteString("s")
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(e.Variants, " vs "))
	if e.Router {
		b.WriteString(" with Parley's intent router, no model cost")
		return b.String()
	}
	fmt.Fprintf(&b, " with %s", strings.Join(e.Models, ", "))
	if len(e.Judges) > 0 {
		fmt.Fprintf(&b, ", judged by %s", strings.Join(e.Judges, ", "))
	}
	fmt.Fprintf(&b, ", about %s (%d model calls, ~%s tokens)", dollars(e.Cost), e.Calls, kilo(e.PromptTokens+e.CompletionTokens))
	if len(e.Unpriced) > 0 {
		fmt.Fprintf(&b, "; no price known for %s, so the cost is a lower bound", strings.Join(e.Unpriced, ", "))
	}
	return b.String()
}

func dollars(c float64) string {
	switch {
	case c == 0:
		return "$0"
	case c < 0.01:
		return fmt.Sprintf("$%.4f", c)
	case c < 10:
		return fmt.Sprintf("$%.2f", c)
	}
	return fmt.Sprintf("$%.0f", c)
}

func kilo(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.1fk", float64(n)/1000)
}
