package evals

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// RoutingReport is the outcome of routing a whole dataset.
type RoutingReport struct {
	Results []RoutingResult // one per case, in dataset order

	Cases          int
	FullyRight     int     // action and every listed parameter right
	ActionRight    int     // action right, parameters not considered
	Accuracy       float64 // FullyRight / Cases
	ActionAccuracy float64 // ActionRight / Cases
	Unsafe         int     // results with Unsafe set; a passing gate needs 0
	Errors         int     // router failures (counted as misses)
	TotalLatency   time.Duration

	// Model use (LLM and hybrid routers): cases that called the model
	// (cache hits included; CachedCalls of them answered from the cache,
	// without tokens), tokens, the largest prompt of one call and the
	// estimated cost.
	ModelCalls       int
	CachedCalls      int
	PromptTokens     int
	CompletionTokens int
	MaxPromptTokens  int
	Cost             float64

	PerAction []ActionStats   // by expected action (RoutingCase.Label), catalog order
	Confusion []ConfusionCell // every expected -> got pair seen, most frequent first
	Misses    []RoutingResult // results that are not fully right, in dataset order

	// Gates, when set, are the gates the report is judged by;
	// WriteRoutingSummary and WriteRoutingHTML print their verdicts.
	Gates RoutingGates

	cat *actionIndex // orders actions in the summary and the matrix
}

// ActionStats are the results for one expected action (or one list of
// acceptable actions, named "a|b").
type ActionStats struct {
	Expected    string
	Cases       int
	ActionRight int
	FullyRight  int
}

// Accuracy is FullyRight / Cases.
func (s ActionStats) Accuracy() float64 { return ratio(s.FullyRight, s.Cases) }

// ActionAccuracy is ActionRight / Cases.
func (s ActionStats) ActionAccuracy() float64 { return ratio(s.ActionRight, s.Cases) }

// ConfusionCell counts cases with an expected label whose routed action was
// Got. Correct cells are those where Got was acceptable.
type ConfusionCell struct {
	Expected string
	Got      string
	Count    int
	Correct  bool
}

// Run routes every case of ds through r and scores it. Each case is routed
// with the dataset's inventory and the catalog it was checked against
// (ds.Catalog). A router error is recorded on that case and counted as a
// miss; Run itself fails only when ctx ends.
func RunRouting(ctx context.Context, r intent.Router, ds *RoutingDataset) (*RoutingReport, error) {
	if ds == nil {
		return nil, fmt.Errorf("run routing eval: no dataset")
	}
	catalog := ds.Catalog
	cat := newActionIndex(catalog)
	results := make([]RoutingResult, 0, len(ds.Cases))
	for _, c := range ds.Cases {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("run routing eval: %w", err)
		}
		q := intent.Query{Text: c.Text, Catalog: catalog, Inventory: ds.Inventory, History: c.History}
		start := time.Now()
		got, err := r.Route(ctx, q)
		elapsed := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("run routing eval: line %d: %w", c.Line, err)
			}
			got = intent.Intent{}
		}
		res := score(c, got, cat)
		res.Err = err
		res.Latency = elapsed
		results = append(results, res)
	}
	return newRoutingReport(results, cat), nil
}

// NewRoutingReport totals scored results into a report; specs order the
// per-action lines (catalog order, then none, then lists).
func NewRoutingReport(results []RoutingResult, specs []action.Spec) *RoutingReport {
	return newRoutingReport(results, newActionIndex(specs))
}

func newRoutingReport(results []RoutingResult, cat *actionIndex) *RoutingReport {
	rep := &RoutingReport{Results: results, Cases: len(results), cat: cat}
	stats := map[string]*ActionStats{}
	cells := map[[2]string]*ConfusionCell{}
	for _, r := range results {
		label := r.Case.Label()
		st := stats[label]
		if st == nil {
			st = &ActionStats{Expected: label}
			stats[label] = st
		}
		st.Cases++
		if r.ActionOK {
			rep.ActionRight++
			st.ActionRight++
		}
		if r.OK {
			rep.FullyRight++
			st.FullyRight++
		} else {
			rep.Misses = append(rep.Misses, r)
		}
		if r.Unsafe {
			rep.Unsafe++
		}
		if r.Err != nil {
			rep.Errors++
		}
		rep.TotalLatency += r.Latency
		if u := r.Got.Usage; u != nil {
			rep.ModelCalls++
			if u.Cached {
				rep.CachedCalls++
			}
			rep.MaxPromptTokens = max(rep.MaxPromptTokens, u.PromptTokens)
			rep.PromptTokens += u.PromptTokens
			rep.CompletionTokens += u.CompletionTokens
			rep.Cost += u.Cost
		}
		got := r.Got.Action
		if got == "" {
			got = "(nothing)"
		}
		key := [2]string{label, got}
		cell := cells[key]
		if cell == nil {
			cell = &ConfusionCell{Expected: label, Got: got, Correct: r.ActionOK}
			cells[key] = cell
		}
		cell.Count++
	}
	rep.Accuracy = ratio(rep.FullyRight, rep.Cases)
	rep.ActionAccuracy = ratio(rep.ActionRight, rep.Cases)

	for _, st := range stats {
		rep.PerAction = append(rep.PerAction, *st)
	}
	sort.Slice(rep.PerAction, func(i, j int) bool {
		a, b := rep.PerAction[i].Expected, rep.PerAction[j].Expected
		if ra, rb := cat.rank(a), cat.rank(b); ra != rb {
			return ra < rb
		}
		return a < b
	})
	for _, c := range cells {
		rep.Confusion = append(rep.Confusion, *c)
	}
	sort.Slice(rep.Confusion, func(i, j int) bool {
		a, b := rep.Confusion[i], rep.Confusion[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Expected != b.Expected {
			return a.Expected < b.Expected
		}
		return a.Got < b.Got
	})
	return rep
}

// OffDiagonal returns the confusion cells where the routed action was not
// acceptable, most frequent first.
func (rep *RoutingReport) OffDiagonal() []ConfusionCell {
	var out []ConfusionCell
	for _, c := range rep.Confusion {
		if !c.Correct {
			out = append(out, c)
		}
	}
	return out
}

// UnsafeResults returns the results flagged unsafe, in dataset order.
func (rep *RoutingReport) UnsafeResults() []RoutingResult {
	var out []RoutingResult
	for _, r := range rep.Results {
		if r.Unsafe {
			out = append(out, r)
		}
	}
	return out
}

// PromptTokensPerCall is the mean prompt of the calls that reached the
// model (cache hits sent nothing).
func (rep *RoutingReport) PromptTokensPerCall() float64 {
	return ratio(rep.PromptTokens, rep.ModelCalls-rep.CachedCalls)
}

// MeanLatency is the mean time the router took per case.
func (rep *RoutingReport) MeanLatency() time.Duration {
	if rep.Cases == 0 {
		return 0
	}
	return rep.TotalLatency / time.Duration(rep.Cases)
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}
