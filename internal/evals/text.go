package evals

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// MetricRows are the summary's metric lines as table cells: metric,
// baseline, variant, difference, 95% CI, p, verdict (the last five empty
// without a comparison).
func (s *Summary) MetricRows() (header []string, rows [][]string) {
	header = []string{"metric", s.Baseline}
	if s.Compared() {
		header = append(header, s.Variant, "diff", "95% CI", "p", "verdict")
	}
	for _, m := range s.Metrics {
		row := []string{m.Name, fmtStat(m, m.Baseline)}
		if s.Compared() {
			row = append(row, fmtStat(m, m.Variant))
			if c := m.Comparison; c != nil && c.N > 0 {
				p := ""
				if c.Method == "mcnemar" {
					p = fmt.Sprintf("%.3g", c.P)
				}
				row = append(row, fmtDiff(m, c.Diff), "["+fmtDiff(m, c.Low)+", "+fmtDiff(m, c.High)+"]", p, c.Verdict)
			} else {
				row = append(row, "", "", "", "not compared")
			}
		}
		rows = append(rows, row)
	}
	return header, rows
}

// GateLines describe each gate: "PASS routing >= 0.95 (0.967)".
func (s *Summary) GateLines() []string { return gateLines(s.Gates) }

// gateLines describe judged gates, of a suite's run or a routing report.
func gateLines(gates []GateResult) []string {
	var out []string
	for _, g := range gates {
		if g.Passed {
			out = append(out, fmt.Sprintf("PASS %s (%s)", g.Gate, num(g.Value)))
		} else {
			out = append(out, fmt.Sprintf("FAIL %s: %s", g.Gate, g.Reason))
		}
	}
	return out
}

// SpendLine is e.g. "61234 tokens (judge 12000), $0.0412".
func (s *Summary) SpendLine() string {
	t := s.PromptTokens + s.CompletionTokens + s.JudgeTokens
	line := fmt.Sprintf("%d tokens", t)
	if s.JudgeTokens > 0 {
		line += fmt.Sprintf(" (judge %d)", s.JudgeTokens)
	}
	return line + fmt.Sprintf(", $%.4f", s.Cost)
}

// WriteText writes the summary for a terminal.
func WriteText(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "eval run %d: %s, %d cases — %s\n", s.RunID, s.Suite, s.Cases, s.Headline())
	for v, n := range s.Errors {
		if n > 0 {
			fmt.Fprintf(&b, "  %s: %d answers failed\n", v, n)
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	head, rows := s.MetricRows()
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	if len(s.Gates) > 0 {
		b.WriteString("\ngates:\n")
		for _, g := range s.GateLines() {
			b.WriteString("  " + g + "\n")
		}
	}
	if len(s.Worst) > 0 {
		b.WriteString("\nworst regressions:\n")
		for _, r := range s.Worst {
			fmt.Fprintf(&b, "  %s  %s %s -> %s\n", r.CaseID, r.Metric, num(r.Baseline), num(r.Variant))
		}
	}
	fmt.Fprintf(&b, "\nspend: %s\n", s.SpendLine())
	if s.CSV != "" {
		fmt.Fprintf(&b, "reports: %s, %s\n", s.CSV, s.HTML)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
