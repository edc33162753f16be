package evals

import (
	"bufio"
	_ "embed"
	"encoding/csv"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteReports writes report.csv and report.html into dir.
func WriteReports(dir string, s *Suite, ds *Dataset, sum *Summary, results []CaseResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.csv":  func(w io.Writer) error { return WriteCSV(w, s, ds, results) },
		"report.html": func(w io.Writer) error { return WriteHTML(w, s, ds, sum, results) },
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, fn func(io.Writer) error) error {
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	w := bufio.NewWriter(f)
	if err := fn(w); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("reports: %s: %w", p, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// WriteCSV writes one row per case and variant: the case, the variant and
// its prompt version, the answer, each metric's value (empty when it could
// not score), notes, latency, tokens and cost. A text cell starting with
// = + - or @ gets a leading ' so that spreadsheets do not run model
// output as a formula.
func WriteCSV(w io.Writer, s *Suite, ds *Dataset, results []CaseResult) error {
	cw := csv.NewWriter(w)
	head := []string{"case", "index", "tags", "variant", "prompt_version", "output", "error"}
	for _, m := range s.Metrics {
		head = append(head, m.Name)
	}
	head = append(head, "notes", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "judge_tokens", "judge_cost_usd")
	if err := cw.Write(head); err != nil {
		return err
	}
	tags := map[string]string{}
	for _, c := range ds.Cases {
		tags[c.ID] = strings.Join(c.Tags, "|")
	}
	for _, r := range results {
		row := []string{safeCell(r.CaseID), strconv.Itoa(r.Index), safeCell(tags[r.CaseID]), r.Variant, s.PromptVersion(r.Variant), safeCell(r.Output), safeCell(r.Err)}
		var notes []string
		for _, m := range s.Metrics {
			sc, ok := r.Scores[m.Name]
			switch {
			case !ok:
				row = append(row, "")
			case !sc.Valid():
				row = append(row, "")
				notes = append(notes, m.Name+": "+sc.Err)
			default:
				row = append(row, strconv.FormatFloat(sc.Value, 'f', -1, 64))
				if sc.Note != "" {
					notes = append(notes, m.Name+": "+sc.Note)
				}
			}
		}
		row = append(row, safeCell(strings.Join(notes, "; ")), strconv.FormatFloat(r.LatencyMS, 'f', 1, 64),
			strconv.Itoa(r.PromptTokens), strconv.Itoa(r.CompletionTokens), strconv.FormatFloat(r.Cost, 'f', 6, 64),
			strconv.Itoa(r.JudgeTokens), strconv.FormatFloat(r.JudgeCost, 'f', 6, 64))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Parse(reportTemplate))

// WriteHTML writes a self-contained page (inline CSS and SVG, no script):
// the verdict, each metric for both variants with the paired comparison,
// distributions as SVG charts, per-tag results, the worst regressions and
// every case's answers side by side with a word diff. All dataset and
// model text is escaped.
func WriteHTML(w io.Writer, s *Suite, ds *Dataset, sum *Summary, results []CaseResult) error {
	return reportTmpl.Execute(w, newView(s, ds, sum, results))
}

type view struct {
	S        *Summary
	Headline string
	Desc     string
	Spend    string
	Metrics  []metricRow
	Charts   []template.HTML
	Tags     []tagRow
	Cases    []caseView
	Variants []string
}

type metricRow struct {
	Name, Type, Baseline, Variant, Diff, CI, P, Verdict, Class, Judge string
}

type tagRow struct{ Tag, Metric, Baseline, Variant, BN, VN string }

type caseView struct {
	ID, Input, Reference, Tags string
	Open                       bool
	Changed                    bool
	Rows                       []caseRow
	Diff                       template.HTML
}

type caseRow struct {
	Variant, Output, Err string
	Scores               []string
}

func newView(s *Suite, ds *Dataset, sum *Summary, results []CaseResult) view {
	v := view{S: sum, Headline: sum.Headline(), Desc: s.Description, Variants: variantsOf(sum.Variant, sum.Baseline)}
	v.Spend = fmt.Sprintf("%d prompt + %d completion tokens, %d judge tokens, $%.4f", sum.PromptTokens, sum.CompletionTokens, sum.JudgeTokens, sum.Cost)
	for _, m := range sum.Metrics {
		row := metricRow{Name: m.Name, Type: m.Type, Baseline: fmtStat(m, m.Baseline), Variant: fmtStat(m, m.Variant), Judge: m.Judge}
		if c := m.Comparison; c != nil && c.N > 0 {
			row.Diff = fmtDiff(m, c.Diff)
			row.CI = "[" + fmtDiff(m, c.Low) + ", " + fmtDiff(m, c.High) + "]"
			if c.Method == "mcnemar" {
				row.P = fmt.Sprintf("%.2g (%d vs %d)", c.P, c.B, c.C)
			}
			row.Verdict = c.Verdict
			switch c.Verdict {
			case "better":
				row.Class = "pass"
			case "worse":
				row.Class = "fail"
			}
		}
		v.Metrics = append(v.Metrics, row)
	}
	by := map[string]map[string]CaseResult{}
	for _, r := range results {
		if by[r.Variant] == nil {
			by[r.Variant] = map[string]CaseResult{}
		}
		by[r.Variant][r.CaseID] = r
	}
	for i := range s.Metrics {
		v.Charts = append(v.Charts, chart(&s.Metrics[i], v.Variants, ds, by))
	}
	for _, t := range sum.Tags {
		var m MetricSummary
		for _, x := range sum.Metrics {
			if x.Name == t.Metric {
				m = x
			}
		}
		v.Tags = append(v.Tags, tagRow{Tag: t.Tag, Metric: t.Metric, Baseline: fmtStat(m, t.Baseline), Variant: fmtStat(m, t.Variant),
			BN: strconv.Itoa(t.Baseline.N), VN: strconv.Itoa(t.Variant.N)})
	}
	for _, c := range ds.Cases {
		cv := caseView{ID: c.ID, Input: clip(c.InputText(), 2000), Reference: c.Reference, Tags: strings.Join(c.Tags, ", ")}
		var outs []string
		for _, vn := range v.Variants {
			r, ok := by[vn][c.ID]
			if !ok {
				continue
			}
			row := caseRow{Variant: vn, Output: r.Output, Err: r.Err}
			for _, m := range s.Metrics {
				sc := r.Scores[m.Name]
				txt := m.Name + " " + num(sc.Value)
				if !sc.Valid() {
					txt = m.Name + " –"
				}
				row.Scores = append(row.Scores, txt)
			}
			outs = append(outs, r.Output)
			cv.Rows = append(cv.Rows, row)
		}
		if len(outs) == 2 {
			cv.Changed = outs[0] != outs[1]
			cv.Diff = wordDiff(outs[0], outs[1])
		}
		for _, w := range sum.Worst {
			if w.CaseID == c.ID {
				cv.Open = true
			}
		}
		v.Cases = append(v.Cases, cv)
	}
	return v
}

// Variant colours: baseline grey-blue, variant orange.
var colours = []string{"#6e7781", "#d1701a"}

// chart draws a metric's distribution per variant as inline SVG: pass
// rates as bars for pass/fail metrics, a 10-bin histogram otherwise.
func chart(m *MetricSpec, variants []string, ds *Dataset, by map[string]map[string]CaseResult) template.HTML {
	const w, h, pad, top = 420, 170, 34, 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(m.Name))
	fmt.Fprintf(&b, `<text x="4" y="15" class="ct">%s</text>`, html.EscapeString(m.Name))
	vals := make([][]float64, len(variants))
	for i, v := range variants {
		for _, c := range ds.Cases {
			if sc, ok := by[v][c.ID].Scores[m.Name]; ok && sc.Valid() {
				vals[i] = append(vals[i], sc.Value)
			}
		}
	}
	plotH := float64(h - top - 22)
	base := float64(h - 22)
	if m.Binary() {
		bw := float64(w-2*pad) / float64(len(variants)) * 0.6
		for i, v := range variants {
			rate := meanOf(vals[i])
			if math.IsNaN(rate) {
				rate = 0
			}
			x := float64(pad) + float64(i)*float64(w-2*pad)/float64(len(variants)) + bw/3
			bh := rate * plotH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, base-bh, bw, bh, colours[i%2])
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="cl" text-anchor="middle">%.1f%%</text>`, x+bw/2, base-bh-4, rate*100)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="cl" text-anchor="middle">%s</text>`, x+bw/2, h-6, html.EscapeString(v))
		}
	} else {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, vs := range vals {
			for _, x := range vs {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
		if m.Type == LLMJudge {
			lo, hi = 1, 5
		} else if m.Type == Similarity || m.Type == JSONFields {
			lo, hi = 0, 1
		}
		if math.IsInf(lo, 0) {
			lo, hi = 0, 1
		}
		if hi == lo {
			hi = lo + 1
		}
		const bins = 10
		counts := make([][bins]int, len(variants))
		maxC := 1
		for i, vs := range vals {
			for _, x := range vs {
				k := min(bins-1, int((x-lo)/(hi-lo)*bins))
				counts[i][max(0, k)]++
				maxC = max(maxC, counts[i][max(0, k)])
			}
		}
		binW := float64(w-2*pad) / bins
		for k := range bins {
			for i := range variants {
				bh := float64(counts[i][k]) / float64(maxC) * plotH
				x := float64(pad) + float64(k)*binW + float64(i)*binW*0.45 + binW*0.05
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d</title></rect>`,
					x, base-bh, binW*0.43, bh, colours[i%2], html.EscapeString(variants[i]), counts[i][k])
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="cl">%s</text>`, pad, h-6, num(lo))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="cl" text-anchor="end">%s</text>`, w-pad, h-6, num(hi))
		for i, v := range variants {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="cl">%s</text>`,
				w-150+i*75, 6, colours[i%2], w-136+i*75, 15, html.EscapeString(v))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#8c959f"/>`, pad, base, w-pad, base)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it went through html.EscapeString
}

// maxDiffWords bounds the word diff (quadratic).
const maxDiffWords = 600

// wordDiff marks what the variant removed (del) and added (ins) relative
// to the baseline, word by word (longest common subsequence).
func wordDiff(a, b string) template.HTML {
	x, y := strings.Fields(a), strings.Fields(b)
	if len(x) > maxDiffWords || len(y) > maxDiffWords {
		return template.HTML(`<span class="meta">(too long to diff)</span>`)
	}
	n, m := len(x), len(y)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			out.WriteString(html.EscapeString(x[i]) + " ")
			i, j = i+1, j+1
		case j < m && (i == n || l[i][j+1] >= l[i+1][j]):
			out.WriteString("<ins>" + html.EscapeString(y[j]) + "</ins> ")
			j++
		default:
			out.WriteString("<del>" + html.EscapeString(x[i]) + "</del> ")
			i++
		}
	}
	return template.HTML(out.String()) // words escaped above
}

// ReportsHandler serves the report files under dir (mount it at
// /reports/ with http.StripPrefix). It serves only regular files named
// run-N/report.csv or run-N/report.html: no listings, no dot files, no
// path that leaves dir, no symlinks out of it.
func ReportsHandler(dir string) http.Handler {
	root, rootErr := filepath.Abs(dir)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if rootErr != nil || len(parts) != 2 || !validRunDir(parts[0]) || (parts[1] != "report.csv" && parts[1] != "report.html") {
			http.NotFound(w, r)
			return
		}
		full := filepath.Join(root, parts[0], parts[1])
		real, err := filepath.EvalSymlinks(full)
		if err != nil || !strings.HasPrefix(real, root+string(filepath.Separator)) {
			http.NotFound(w, r)
			return
		}
		st, err := os.Stat(real)
		if err != nil || !st.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// the page has inline CSS and no script at all
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		if strings.HasSuffix(real, ".csv") {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", parts[0]+".csv"))
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		http.ServeFile(w, r, real)
	})
}

func validRunDir(s string) bool {
	n, ok := strings.CutPrefix(s, "run-")
	if !ok || n == "" || len(n) > 12 {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
