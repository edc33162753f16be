// Package llmcost accounts for what Parley's language-model calls cost:
// a price table per model, the usage of each call, per-day budgets per
// channel and per user after which the model is not called any more, and
// a TTL cache so that the same question is not paid for twice.
//
// Routers and summarisers report Usage (estimated from the request and
// response sizes when a provider reports none); the Ledger checks budgets
// against the spend its SpendStore holds — DBStore, the llm_spend table of
// Parley's database, so budgets hold across restarts and replicas — and
// Cache holds answers keyed by a hash the caller builds with Key.
package llmcost

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	InputPer1M  float64 `yaml:"input_per_1m" json:"input_per_1m"`
	OutputPer1M float64 `yaml:"output_per_1m" json:"output_per_1m"`
}

// Prices maps a model name to its price. A name ending in "*" is a
// prefix ("gpt-4o-mini*" prices "gpt-4o-mini-2024-07-18"); an exact name
// wins over a prefix and a longer prefix over a shorter one.
type Prices map[string]Price

// Check reports prices that cannot be right.
func (p Prices) Check() error {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pr := p[n]
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("llm price with an empty model name")
		}
		for _, v := range []float64{pr.InputPer1M, pr.OutputPer1M} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("llm price of %s: %v is not a price", n, v)
			}
		}
	}
	return nil
}

// Lookup returns the price of a model.
func (p Prices) Lookup(model string) (Price, bool) {
	if pr, ok := p[model]; ok {
		return pr, true
	}
	best, found := "", false
	for n := range p {
		prefix, ok := strings.CutSuffix(n, "*")
		if !ok || !strings.HasPrefix(model, prefix) {
			continue
		}
		if !found || len(prefix) > len(best) || len(prefix) == len(best) && prefix < best {
			best, found = prefix, true
		}
	}
	if !found {
		return Price{}, false
	}
	return p[best+"*"], true
}

// Cost prices a call. The bool is false for a model missing from the
// table (the cost is then 0 and budgets count tokens only).
func (p Prices) Cost(model string, promptTokens, completionTokens int) (float64, bool) {
	pr, ok := p.Lookup(model)
	if !ok {
		return 0, false
	}
	return (float64(promptTokens)*pr.InputPer1M + float64(completionTokens)*pr.OutputPer1M) / 1e6, true
}

// Usage is what one model call spent.
type Usage struct {
	Provider string // openai, anthropic, ...
	Model    string
	Variant  string // prompt variant
	// Prompt is the prompt template ("router/v3", "summary/v2") and
	// PromptVersion the version its header declares, so that a record
	// names exactly which prompt was sent.
	Prompt        string
	PromptVersion string
	// Tokens as the provider reported them, or estimated (Estimated) when
	// it reported none.
	PromptTokens     int
	CompletionTokens int
	// Estimated is true when the provider's response had no usage and the
	// tokens were estimated with ApproxTokens from the request and
	// response sizes: budgets still count the call.
	Estimated bool
	// RequestBytes is the size of the serialized request body of the last
	// attempt; ApproxTokens(RequestBytes) estimates prompt tokens where a
	// provider reports none.
	RequestBytes int
	Attempts     int           // HTTP attempts, retries included
	Latency      time.Duration // wall time of the call, retries included
	Cost         float64       // US dollars, from Prices
	Cached       bool          // answered from the Cache: nothing was sent
}

// TotalTokens is prompt plus completion tokens.
func (u Usage) TotalTokens() int { return u.PromptTokens + u.CompletionTokens }

// String is a short human form for notes: "812+14 tokens, $0.000130".
func (u Usage) String() string {
	if u.Cached {
		return "cached, 0 tokens"
	}
	if u.Estimated {
		return fmt.Sprintf("~%d+%d tokens (estimated), $%.6f", u.PromptTokens, u.CompletionTokens, u.Cost)
	}
	return fmt.Sprintf("%d+%d tokens, $%.6f", u.PromptTokens, u.CompletionTokens, u.Cost)
}

// ApproxTokens estimates the tokens of n bytes of English/JSON text as
// n/4 rounded up, the rule of thumb OpenAI documents ("one token is about
// four characters of English"). Real tokenizers differ by model, and
// providers render tool schemas in their own, usually more compact, form:
// treat it as an estimate for budgeting prompts, not a bill.
func ApproxTokens(n int) int { return (n + 3) / 4 }

// CallError is a model call that produced no usable answer, with what it
// spent as far as it is known (attempts, latency; tokens when the
// provider answered): the audit log records it with the failure.
type CallError struct {
	Usage Usage
	Err   error
}

func (e *CallError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying failure.
func (e *CallError) Unwrap() error { return e.Err }
