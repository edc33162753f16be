package evals

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
)

//go:embed routing.html.tmpl
var routingTemplate string

// WriteRoutingHTML writes the report as one self-contained HTML page (inline CSS,
// no scripts or external assets): the summary numbers, per-action accuracy
// with bars, the confusion table and every miss with its parameter diff.
// All dataset and router text is escaped.
func WriteRoutingHTML(w io.Writer, rep *RoutingReport) error {
	tmpl, err := template.New("report").Parse(routingTemplate)
	if err != nil {
		return fmt.Errorf("write html: parse template: %w", err)
	}
	if err := tmpl.Execute(w, newHTMLView(rep)); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

type htmlView struct {
	Cases, FullyRight, ActionRight, Unsafe, Errors int
	Accuracy, ActionAccuracy                       string
	MeanLatency                                    string
	ModelCalls                                     string // "" when no model was asked
	PromptPerCall                                  string
	Gate                                           string // empty when no gate
	GatePass                                       bool
	GateProblems                                   []string
	PerAction                                      []htmlActionRow
	MatrixCols                                     []string
	Matrix                                         []htmlMatrixRow
	Misses                                         []htmlMiss
}

type htmlActionRow struct {
	Expected                       string
	Cases, ActionRight, FullyRight int
	Accuracy, ActionAccuracy       string
	Bar                            int // 0..100
	Good                           bool
}

type htmlMatrixRow struct {
	Expected string
	Cells    []htmlMatrixCell
}

type htmlMatrixCell struct {
	Count   int
	Correct bool
}

type htmlMiss struct {
	Line       int
	Text       string
	Want       string
	Got        string
	ActionOK   bool
	Unsafe     bool
	Confidence string
	Err        string
	Params     []htmlParam
	Note       string
}

type htmlParam struct {
	Name, Want, Got string
	OK              bool
}

func newHTMLView(rep *RoutingReport) htmlView {
	v := htmlView{
		Cases: rep.Cases, FullyRight: rep.FullyRight, ActionRight: rep.ActionRight,
		Unsafe: rep.Unsafe, Errors: rep.Errors,
		Accuracy: pct(rep.Accuracy), ActionAccuracy: pct(rep.ActionAccuracy),
		MeanLatency: rep.MeanLatency().String(),
	}
	if rep.ModelCalls > 0 {
		v.ModelCalls = fmt.Sprintf("%d (%s)", rep.ModelCalls, pct(ratio(rep.ModelCalls, rep.Cases)))
		v.PromptPerCall = fmt.Sprintf("%.0f", rep.PromptTokensPerCall())
	}
	if len(rep.Gates) > 0 {
		res, ok := rep.Gates.Results(rep)
		v.Gate, v.GatePass = rep.Gates.String(), ok
		for _, r := range res {
			if !r.Passed {
				v.GateProblems = append(v.GateProblems, fmt.Sprintf("gate %s: %s", r.Gate, r.Reason))
			}
		}
	}
	for _, s := range rep.PerAction {
		v.PerAction = append(v.PerAction, htmlActionRow{
			Expected: s.Expected, Cases: s.Cases, ActionRight: s.ActionRight, FullyRight: s.FullyRight,
			Accuracy: pct(s.Accuracy()), ActionAccuracy: pct(s.ActionAccuracy()),
			Bar:  int(math.Round(s.Accuracy() * 100)),
			Good: s.Accuracy() >= 0.9,
		})
	}

	// Confusion matrix: expected labels as rows, routed actions as columns.
	counts := map[[2]string]ConfusionCell{}
	var cols []string
	for _, c := range rep.Confusion {
		counts[[2]string{c.Expected, c.Got}] = c
		if !slices.Contains(cols, c.Got) {
			cols = append(cols, c.Got)
		}
	}
	sort.Slice(cols, func(i, j int) bool {
		if ri, rj := rep.cat.rank(cols[i]), rep.cat.rank(cols[j]); ri != rj {
			return ri < rj
		}
		return cols[i] < cols[j]
	})
	v.MatrixCols = cols
	for _, s := range rep.PerAction {
		row := htmlMatrixRow{Expected: s.Expected}
		for _, col := range cols {
			c := counts[[2]string{s.Expected, col}]
			row.Cells = append(row.Cells, htmlMatrixCell{Count: c.Count, Correct: c.Correct})
		}
		v.Matrix = append(v.Matrix, row)
	}

	for _, r := range rep.Misses {
		m := htmlMiss{
			Line: r.Case.Line, Text: r.Case.Text, Note: r.Case.Note,
			Want:       strings.Join(r.Case.Actions, " | "),
			Got:        orNothing(r.Got.Action),
			ActionOK:   r.ActionOK,
			Unsafe:     r.Unsafe,
			Confidence: fmt.Sprintf("%.2f", r.Got.Confidence),
		}
		if r.Err != nil {
			m.Err = r.Err.Error()
		}
		for _, p := range r.Params {
			got := "nothing"
			if p.Present {
				got = FormatValue(p.Got)
			}
			m.Params = append(m.Params, htmlParam{Name: p.Name, Want: FormatValues(p.Want), Got: got, OK: p.OK})
		}
		v.Misses = append(v.Misses, m)
	}
	return v
}
