package evals

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// summaryMisses caps how many misses WriteRoutingSummary lists; unsafe results
// are always all listed.
const summaryMisses = 15

// WriteRoutingSummary writes a concise plain-text report: a per-action table, the
// confusion summary (wrong actions only, most frequent first), the unsafe
// results, the first misses, the overall numbers and, when rep.Gates are set,
// the gate's verdict.
func WriteRoutingSummary(w io.Writer, rep *RoutingReport) error {
	sw := &summaryWriter{w: w}
	sw.printf("Routing evaluation: %d cases\n\n", rep.Cases)

	tw := tabwriter.NewWriter(sw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "expected action\tcases\taction ok\tfully ok\taccuracy")
	for _, s := range rep.PerAction {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.Expected, s.Cases, s.ActionRight, s.FullyRight, pct(s.Accuracy()))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}

	if off := rep.OffDiagonal(); len(off) > 0 {
		sw.printf("\nConfusion (expected -> got, wrong actions only):\n")
		for _, c := range off {
			sw.printf("  %4d  %s -> %s\n", c.Count, c.Expected, c.Got)
		}
	}

	if unsafe := rep.UnsafeResults(); len(unsafe) > 0 {
		sw.printf("\nUNSAFE results (a changing action where none was asked for):\n")
		for _, r := range unsafe {
			sw.printf("  line %d: %q -> %s\n", r.Case.Line, oneLine(r.Case.Text), r.Got.Action)
		}
	}

	if len(rep.Misses) > 0 {
		sw.printf("\nMisses (%d):\n", len(rep.Misses))
		for i, r := range rep.Misses {
			if i == summaryMisses {
				sw.printf("  ... %d more in the CSV and HTML reports\n", len(rep.Misses)-summaryMisses)
				break
			}
			sw.printf("  line %d: %q\n", r.Case.Line, oneLine(r.Case.Text))
			for _, p := range r.Problems() {
				sw.printf("      %s\n", oneLine(p))
			}
		}
	}

	sw.printf("\nOverall: %d/%d fully right (%s); action right %d/%d (%s)\n",
		rep.FullyRight, rep.Cases, pct(rep.Accuracy), rep.ActionRight, rep.Cases, pct(rep.ActionAccuracy))
	sw.printf("Unsafe: %d\n", rep.Unsafe)
	if rep.Errors > 0 {
		sw.printf("Router errors: %d\n", rep.Errors)
	}
	sw.printf("Mean latency: %s\n", rep.MeanLatency())
	if rep.ModelCalls > 0 {
		sw.printf("Model calls: %d of %d cases (%.1f%%)", rep.ModelCalls, rep.Cases, 100*ratio(rep.ModelCalls, rep.Cases))
		if rep.CachedCalls > 0 {
			sw.printf(", %d of them answered from the cache", rep.CachedCalls)
		}
		sw.printf("; tokens %d in + %d out; estimated cost $%.4f\n", rep.PromptTokens, rep.CompletionTokens, rep.Cost)
		sw.printf("Prompt tokens per call: %.0f mean, %d max\n", rep.PromptTokensPerCall(), rep.MaxPromptTokens)
	}
	if len(rep.Gates) > 0 {
		res, _ := rep.Gates.Results(rep)
		for _, line := range gateLines(res) {
			sw.printf("%s\n", line)
		}
	}
	if sw.err != nil {
		return fmt.Errorf("write summary: %w", sw.err)
	}
	return nil
}

// summaryWriter remembers the first write error so the report reads
// straight through.
type summaryWriter struct {
	w   io.Writer
	err error
}

func (s *summaryWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

func (s *summaryWriter) printf(format string, args ...any) {
	fmt.Fprintf(s, format, args...)
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

// oneLine keeps a multi-line text on one line of the summary.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}
