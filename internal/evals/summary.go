package evals

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Summary is a finished run's results: scores per metric and variant, the
// paired comparison, gates, the worst regressions and spend.
type Summary struct {
	RunID    int               `json:"run"`
	Suite    string            `json:"suite"`
	Variant  string            `json:"variant"`
	Baseline string            `json:"baseline"`
	Cases    int               `json:"cases"`
	Errors   map[string]int    `json:"errors"`  // target failures per variant
	Prompts  map[string]string `json:"prompts"` // prompt version per variant
	Metrics  []MetricSummary   `json:"metrics"`
	Tags     []TagSummary      `json:"tags,omitempty"`
	Gates    []GateResult      `json:"gates"`
	// GatesPassed is true when every gate passed (and there are no gates
	// or every answer failed: then false).
	GatesPassed bool         `json:"gates_passed"`
	Worst       []Regression `json:"worst,omitempty"`

	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	JudgeTokens      int     `json:"judge_tokens"`
	Cost             float64 `json:"cost_usd"` // target and judge calls

	CSV  string `json:"csv,omitempty"`  // report paths or URLs
	HTML string `json:"html,omitempty"` // ...
}

// Compared reports whether a variant was compared with a baseline.
func (s *Summary) Compared() bool { return s.Variant != s.Baseline }

// MetricSummary is one metric's result.
type MetricSummary struct {
	Name           string      `json:"name"`
	Type           string      `json:"type"`
	Binary         bool        `json:"binary"`
	HigherIsBetter bool        `json:"higher_is_better"`
	Judge          string      `json:"judge,omitempty"` // judge prompt version
	Baseline       Stat        `json:"baseline"`
	Variant        Stat        `json:"variant"`
	Comparison     *Comparison `json:"comparison,omitempty"`
}

// Stat is a metric's mean over the cases it could score.
type Stat struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"` // pass rate for pass/fail metrics
	Errs int     `json:"errors"`
}

// Comparison is the paired comparison of variant and baseline.
type Comparison struct {
	Method string  `json:"method"` // mcnemar | bootstrap
	N      int     `json:"n"`      // cases both scored
	Diff   float64 `json:"diff"`   // mean of variant − baseline
	Low    float64 `json:"low"`    // 95% bootstrap interval of Diff
	High   float64 `json:"high"`
	// McNemar: cases passed only by the baseline (B) or only by the
	// variant (C), and the exact two-sided p-value.
	B           int     `json:"b,omitempty"`
	C           int     `json:"c,omitempty"`
	P           float64 `json:"p"`
	Significant bool    `json:"significant"`
	Verdict     string  `json:"verdict"` // better | worse | no significant difference
}

// GateResult is one gate's verdict.
type GateResult struct {
	Gate   string  `json:"gate"`
	Value  float64 `json:"value"`
	Passed bool    `json:"passed"`
	Reason string  `json:"reason,omitempty"`
}

// Regression is a case where the variant did worse than the baseline.
type Regression struct {
	CaseID   string  `json:"case"`
	Metric   string  `json:"metric"`
	Baseline float64 `json:"baseline"`
	Variant  float64 `json:"variant"`
	Delta    float64 `json:"delta"` // direction-aware: negative is worse
	Output   string  `json:"output"`
}

// TagSummary is the primary metric per tag.
type TagSummary struct {
	Tag      string `json:"tag"`
	Metric   string `json:"metric"`
	Baseline Stat   `json:"baseline"`
	Variant  Stat   `json:"variant"`
}

// maxWorst is how many regressions a summary lists.
const maxWorst = 5

// Summarize totals a run's answers. results may hold both variants; when
// variant == baseline there is no comparison.
func Summarize(s *Suite, ds *Dataset, runID int, variant, baseline string, results []CaseResult) *Summary {
	sum := &Summary{RunID: runID, Suite: s.Name, Variant: variant, Baseline: baseline, Cases: len(ds.Cases),
		Errors: map[string]int{}, Prompts: map[string]string{}}
	for _, v := range []string{baseline, variant} {
		if pv := s.PromptVersion(v); pv != "" {
			sum.Prompts[v] = pv
		}
	}
	by := map[string]map[string]CaseResult{baseline: {}, variant: {}}
	for _, r := range results {
		if by[r.Variant] == nil {
			continue
		}
		by[r.Variant][r.CaseID] = r
	}
	for _, r := range results {
		if by[r.Variant] == nil {
			continue
		}
		if r.Err != "" {
			sum.Errors[r.Variant]++
		}
		sum.PromptTokens += r.PromptTokens
		sum.CompletionTokens += r.CompletionTokens
		sum.JudgeTokens += r.JudgeTokens
		sum.Cost += r.Cost + r.JudgeCost
	}
	compared := variant != baseline
	for i := range s.Metrics {
		m := &s.Metrics[i]
		ms := MetricSummary{Name: m.Name, Type: m.Type, Binary: m.Binary(), HigherIsBetter: m.HigherIsBetter(), Judge: m.JudgeVersion()}
		ms.Baseline = statOf(ds, by[baseline], m.Name, nil)
		ms.Variant = statOf(ds, by[variant], m.Name, nil)
		if compared {
			ms.Comparison = compare(ds, m, by[baseline], by[variant])
		}
		sum.Metrics = append(sum.Metrics, ms)
	}
	sum.Gates, sum.GatesPassed = checkGates(s, sum)
	if len(by[variant]) > 0 && sum.Errors[variant] == len(by[variant]) {
		sum.GatesPassed = false
	}
	if compared {
		sum.Worst = worst(s, ds, by[baseline], by[variant])
	}
	sum.Tags = tagStats(s, ds, by[baseline], by[variant])
	return sum
}

func statOf(ds *Dataset, rs map[string]CaseResult, metric string, keep func(Case) bool) Stat {
	var st Stat
	total := 0.0
	for _, c := range ds.Cases {
		if keep != nil && !keep(c) {
			continue
		}
		r, ok := rs[c.ID]
		if !ok {
			continue
		}
		sc, ok := r.Scores[metric]
		if !ok || !sc.Valid() {
			st.Errs++
			continue
		}
		st.N++
		total += sc.Value
	}
	if st.N > 0 { // Mean stays 0 with N == 0: JSON has no NaN
		st.Mean = total / float64(st.N)
	}
	return st
}

// compare pairs the cases both variants scored.
func compare(ds *Dataset, m *MetricSpec, base, vari map[string]CaseResult) *Comparison {
	var d []float64
	b, c := 0, 0
	for _, cs := range ds.Cases {
		x, ok1 := base[cs.ID].Scores[m.Name]
		y, ok2 := vari[cs.ID].Scores[m.Name]
		if !ok1 || !ok2 || !x.Valid() || !y.Valid() {
			continue
		}
		d = append(d, y.Value-x.Value)
		switch {
		case x.Value >= 0.5 && y.Value < 0.5:
			b++
		case x.Value < 0.5 && y.Value >= 0.5:
			c++
		}
	}
	cmp := &Comparison{N: len(d), P: 1, Verdict: "no significant difference"}
	if len(d) == 0 {
		cmp.Verdict = "not compared"
		return cmp
	}
	cmp.Diff, cmp.Low, cmp.High = PairedBootstrap(d, BootstrapResamples, BootstrapSeed)
	if m.Binary() {
		cmp.Method, cmp.B, cmp.C = "mcnemar", b, c
		cmp.P = McNemarExact(b, c)
		cmp.Significant = cmp.P < Alpha
	} else {
		cmp.Method = "bootstrap"
		cmp.Significant = cmp.Low > 0 || cmp.High < 0
		// a two-sided bootstrap "p" is not reported: the interval says it
	}
	if cmp.Significant {
		better := cmp.Diff > 0
		if !m.HigherIsBetter() {
			better = !better
		}
		cmp.Verdict = "worse"
		if better {
			cmp.Verdict = "better"
		}
	}
	return cmp
}

func checkGates(s *Suite, sum *Summary) ([]GateResult, bool) {
	ok := true
	var out []GateResult
	for _, g := range s.Gates {
		var ms *MetricSummary
		for i := range sum.Metrics {
			if sum.Metrics[i].Name == g.Metric {
				ms = &sum.Metrics[i]
			}
		}
		gr := GateResult{Gate: g.String()}
		switch {
		case ms == nil:
			gr.Reason = "no such metric"
		case g.Min != nil || g.Max != nil:
			gr = judgeLevel(g, ms.Variant.Mean, ms.Variant.N)
		default: // max regression
			if ms.Comparison == nil {
				gr.Passed, gr.Reason = true, "no baseline to compare with"
				break
			}
			worse := -ms.Comparison.Diff
			if !ms.HigherIsBetter {
				worse = ms.Comparison.Diff
			}
			gr.Value = math.Max(0, worse)
			switch {
			case ms.Comparison.N == 0:
				gr.Reason = "no case could be compared"
			default:
				gr.Passed = worse <= *g.MaxRegression+1e-12
				if !gr.Passed {
					gr.Reason = fmt.Sprintf("%s is %s worse than %s (allowed %s)", g.Metric, num(worse), sum.Baseline, num(*g.MaxRegression))
				}
			}
		}
		ok = ok && gr.Passed
		out = append(out, gr)
	}
	return out, ok
}

// judgeLevel judges a Min or Max gate on a metric's mean over n scored
// cases; suites and routing reports (RoutingGates) share it.
func judgeLevel(g Gate, value float64, n int) GateResult {
	gr := GateResult{Gate: g.String(), Value: value}
	switch {
	case n == 0:
		gr.Reason = "no case could be scored"
	case g.Min != nil:
		gr.Passed = value >= *g.Min
		if !gr.Passed {
			gr.Reason = fmt.Sprintf("%s is %s, below %s", g.Metric, num(value), num(*g.Min))
		}
	default:
		gr.Passed = value <= *g.Max
		if !gr.Passed {
			gr.Reason = fmt.Sprintf("%s is %s, above %s", g.Metric, num(value), num(*g.Max))
		}
	}
	return gr
}

// worst lists the cases where the variant lost most against the baseline
// on the first quality metric (ties broken by the other quality metrics).
func worst(s *Suite, ds *Dataset, base, vari map[string]CaseResult) []Regression {
	var quality []*MetricSpec
	for i := range s.Metrics {
		if s.Metrics[i].HigherIsBetter() {
			quality = append(quality, &s.Metrics[i])
		}
	}
	if len(quality) == 0 {
		return nil
	}
	type cand struct {
		r   Regression
		tie float64
	}
	var cs []cand
	for _, c := range ds.Cases {
		b, ok1 := base[c.ID]
		v, ok2 := vari[c.ID]
		if !ok1 || !ok2 {
			continue
		}
		var best *Regression
		tie := 0.0
		for _, m := range quality {
			x, y := b.Scores[m.Name], v.Scores[m.Name]
			if !x.Valid() {
				continue
			}
			yv := y.Value
			if !y.Valid() {
				yv = 0
			}
			delta := yv - x.Value
			if m.Type == LLMJudge && m.Scale == ScaleScore {
				delta /= 4 // put 1..5 on the 0..1 scale of the others
			}
			if best == nil {
				best = &Regression{CaseID: c.ID, Metric: m.Name, Baseline: x.Value, Variant: yv, Delta: delta, Output: clip(v.Output, 300)}
			} else {
				tie += delta
			}
		}
		if best != nil && (best.Delta < 0 || best.Delta == 0 && tie < 0) {
			cs = append(cs, cand{*best, tie})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].r.Delta != cs[j].r.Delta {
			return cs[i].r.Delta < cs[j].r.Delta
		}
		return cs[i].tie < cs[j].tie
	})
	var out []Regression
	for i := range min(len(cs), maxWorst) {
		out = append(out, cs[i].r)
	}
	return out
}

func tagStats(s *Suite, ds *Dataset, base, vari map[string]CaseResult) []TagSummary {
	if len(s.Metrics) == 0 {
		return nil
	}
	primary := s.Metrics[0].Name
	var tags []string
	for _, c := range ds.Cases {
		for _, t := range c.Tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	sort.Strings(tags)
	var out []TagSummary
	for _, t := range tags {
		keep := func(c Case) bool { return slices.Contains(c.Tags, t) }
		out = append(out, TagSummary{Tag: t, Metric: primary, Baseline: statOf(ds, base, primary, keep), Variant: statOf(ds, vari, primary, keep)})
	}
	return out
}

// Headline is a one-line result: "prompt-v2 vs baseline: mentions 0.93
// vs 0.90 (no significant difference); gates passed".
func (s *Summary) Headline() string {
	var b strings.Builder
	if s.Compared() {
		fmt.Fprintf(&b, "%s vs %s", s.Variant, s.Baseline)
	} else {
		b.WriteString(s.Variant)
	}
	if len(s.Metrics) > 0 {
		m := s.Metrics[0]
		fmt.Fprintf(&b, ": %s %s", m.Name, fmtStat(m, m.Variant))
		if m.Comparison != nil {
			fmt.Fprintf(&b, " vs %s (%s)", fmtStat(m, m.Baseline), m.Comparison.Verdict)
		}
	}
	if len(s.Gates) > 0 {
		if s.GatesPassed {
			b.WriteString("; gates passed")
		} else {
			b.WriteString("; gates FAILED")
		}
	}
	return b.String()
}

// fmtStat writes a mean: a percentage for pass/fail metrics.
func fmtStat(m MetricSummary, st Stat) string {
	if st.N == 0 {
		return "–"
	}
	if m.Binary {
		return fmt.Sprintf("%.1f%%", st.Mean*100)
	}
	return num(st.Mean)
}

// fmtDiff writes a difference with its sign, in points for pass/fail.
func fmtDiff(m MetricSummary, d float64) string {
	if math.IsNaN(d) {
		return "–"
	}
	if m.Binary {
		return fmt.Sprintf("%+.1f pts", d*100)
	}
	s := num(d)
	if d > 0 {
		s = "+" + s
	}
	return s
}
