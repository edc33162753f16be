package loki

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
)

// entry is one log line.
type entry struct {
	ts     int64 // unix ns
	labels map[string]string
	line   string
}

// render turns Loki's answer into the reply.
func (q *Query) render(pl plan, r *response) action.Result {
	var res action.Result
	var notes []string
	switch r.Data.ResultType {
	case "streams":
		res, notes = q.renderStreams(pl, r.Data.Result)
	case "matrix", "vector":
		res, notes = renderSeries(pl, r.Data.ResultType, r.Data.Result)
	default:
		res.Text = fmt.Sprintf("Loki answered with a %q result, which I cannot show.", r.Data.ResultType)
	}
	for _, w := range append(slices.Clone(r.Warnings), r.Data.Warnings...) {
		notes = append(notes, "Loki warns: "+snippet(w)+" (the result may be partial).")
	}
	if len(notes) > 0 {
		res.Text += "\n" + strings.Join(notes, "\n")
	}
	res.Code = pl.LogQL
	if link := q.exploreLink(pl); link != "" {
		res.Fields = append(res.Fields, chat.Field{Label: "Grafana Explore", Value: link})
	} else {
		res.Text += "\nPaste this LogQL into Grafana Explore to see more."
	}
	if res.Outcome == nil {
		res.Outcome = map[string]string{}
	}
	res.Outcome["result_type"] = r.Data.ResultType
	return res
}

func (q *Query) renderStreams(pl plan, raw json.RawMessage) (action.Result, []string) {
	var streams []stream
	var notes []string
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &streams); err != nil {
			return action.Result{Text: "Loki's answer could not be read: " + snippet(err.Error())}, nil
		}
	}
	var entries []entry
	skipped := 0
	for _, s := range streams {
		for _, v := range s.Values {
			e, ok := parseEntry(s.Stream, v)
			if !ok {
				skipped++
				continue
			}
			entries = append(entries, e)
		}
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d malformed entries were skipped.", skipped))
	}
	// Newest first across streams; ties in a stable order.
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(b.ts, a.ts) })
	if len(entries) > pl.Limit {
		entries = entries[:pl.Limit]
	}

	what := "Logs"
	if !pl.Raw {
		what = pl.Service + " logs"
		if pl.Level != "" {
			what = pl.Service + " " + pl.Level + " logs"
		}
	}
	window := action.FormatDuration(pl.Window)
	if len(entries) == 0 {
		return action.Result{
			Text:    fmt.Sprintf("No %s matched in the last %s.", lowerFirst(what), window),
			Outcome: map[string]string{"lines": "0"},
		}, notes
	}

	counts := map[string]int{}
	for _, e := range entries {
		counts[levelOf(e)]++
	}
	text := fmt.Sprintf("%s, last %s, newest first: %d %s (%s).", what, window, len(entries),
		plural(len(entries), "line", "lines"), formatCounts(counts))
	if len(entries) == pl.Limit {
		notes = append(notes, fmt.Sprintf("The limit of %d lines was reached; older matching lines may exist.", pl.Limit))
	}
	shown := entries
	if len(shown) > maxChatLines {
		notes = append(notes, fmt.Sprintf("Showing the newest %d; %d more not shown here.", maxChatLines, len(shown)-maxChatLines))
		shown = shown[:maxChatLines]
	}
	table := &chat.Table{Header: []string{"time (UTC)", "stream", "line"}}
	for _, e := range shown {
		table.Rows = append(table.Rows, []string{
			time.Unix(0, e.ts).UTC().Format("01-02 15:04:05"),
			redact.Redact(streamName(e.labels)),
			displayLine(e.line),
		})
	}
	return action.Result{
		Text:    text,
		Table:   table,
		Outcome: map[string]string{"lines": strconv.Itoa(len(entries))},
	}, notes
}

// parseEntry reads ["<ns>", "<line>", ...].
func parseEntry(labels map[string]string, v []json.RawMessage) (entry, bool) {
	if len(v) < 2 {
		return entry{}, false
	}
	var tsText, line string
	if json.Unmarshal(v[0], &tsText) != nil || json.Unmarshal(v[1], &line) != nil {
		return entry{}, false
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return entry{}, false
	}
	return entry{ts: ts, labels: labels, line: line}, true
}

// displayLine makes a log line safe and short for chat: secrets redacted
// first (so a cut cannot split a secret past the patterns), then one line
// with runs of white space collapsed, then cut.
func displayLine(s string) string {
	s = redact.Redact(strings.ToValidUTF8(s, "?"))
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029:
			return -1
		}
		return r
	}, s)
	return cut(strings.Join(strings.Fields(s), " "), maxLineLen)
}

// streamName picks the most telling label of a stream for a narrow column.
func streamName(labels map[string]string) string {
	for _, k := range []string{"pod", "container", "app", "service_name", "service", "job", "filename"} {
		if v := labels[k]; v != "" {
			return cut(v, 40)
		}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return cut(strings.Join(parts, ","), 40)
}

var (
	levelFieldRE = regexp.MustCompile(`(?i)(?:\b(?:level|lvl|severity)\s*[=:]\s*"?|"(?:level|lvl|severity)"\s*:\s*")([a-z]+)`)
	levelWordRE  = regexp.MustCompile(`(?i)\b(fatal|panic|critical|error|warning|warn|info|debug|trace)\b`)
)

// levelOf classifies a line: the stream's level label, a level field in
// the line, or the first level word; "other" when nothing says.
func levelOf(e entry) string {
	for _, k := range []string{"level", "detected_level", "severity", "lvl"} {
		if v := e.labels[k]; v != "" {
			return normLevel(v)
		}
	}
	if m := levelFieldRE.FindStringSubmatch(e.line); m != nil {
		return normLevel(m[1])
	}
	if m := levelWordRE.FindStringSubmatch(e.line); m != nil {
		return normLevel(m[1])
	}
	return "other"
}

func normLevel(s string) string {
	switch strings.ToLower(s) {
	case "error", "err", "fatal", "critical", "crit", "panic", "emerg", "alert":
		return "error"
	case "warn", "warning":
		return "warn"
	case "info", "information", "notice":
		return "info"
	case "debug", "trace":
		return "debug"
	}
	return "other"
}

// formatCounts lists level counts in a fixed order: "error 8, warn 3".
func formatCounts(c map[string]int) string {
	var parts []string
	for _, l := range []string{"error", "warn", "info", "debug", "other"} {
		if c[l] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", l, c[l]))
		}
	}
	return strings.Join(parts, ", ")
}

// maxSeries is how many series a metric answer shows.
const maxSeries = 20

// renderSeries shows a metric query's series as a small table: the last
// value, the minimum and maximum over the window, and the sample count.
func renderSeries(pl plan, kind string, raw json.RawMessage) (action.Result, []string) {
	var ss []series
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ss); err != nil {
			return action.Result{Text: "Loki's answer could not be read: " + snippet(err.Error())}, nil
		}
	}
	type row struct {
		name         string
		last, lo, hi float64
		points       int
	}
	var rows []row
	for _, s := range ss {
		samples := s.Values
		if kind == "vector" {
			samples = [][2]json.RawMessage{s.Value}
		}
		r := row{name: seriesName(s.Metric), lo: math.Inf(1), hi: math.Inf(-1)}
		for _, smp := range samples {
			var vs string
			if json.Unmarshal(smp[1], &vs) != nil {
				continue
			}
			f, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				continue
			}
			r.points++
			r.last, r.lo, r.hi = f, min(r.lo, f), max(r.hi, f)
		}
		if r.points > 0 {
			rows = append(rows, r)
		}
	}
	window := action.FormatDuration(pl.Window)
	if len(rows) == 0 {
		return action.Result{Text: fmt.Sprintf("The query returned no series in the last %s.", window),
			Outcome: map[string]string{"series": "0"}}, nil
	}
	// Highest last value first; NaN sorts last.
	key := func(f float64) float64 {
		if math.IsNaN(f) {
			return math.Inf(-1)
		}
		return f
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if c := cmp.Compare(key(b.last), key(a.last)); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var notes []string
	total := len(rows)
	if len(rows) > maxSeries {
		notes = append(notes, fmt.Sprintf("Showing the %d series with the highest last value; %d more not shown.", maxSeries, len(rows)-maxSeries))
		rows = rows[:maxSeries]
	}
	table := &chat.Table{Header: []string{"series", "last", "min", "max", "points"}}
	for _, r := range rows {
		table.Rows = append(table.Rows, []string{r.name, formatValue(r.last), formatValue(r.lo), formatValue(r.hi), strconv.Itoa(r.points)})
	}
	return action.Result{
		Text:    fmt.Sprintf("%d %s over the last %s.", total, plural(total, "series", "series"), window),
		Table:   table,
		Outcome: map[string]string{"series": strconv.Itoa(total)},
	}, notes
}

func seriesName(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Quote(m[k]))
	}
	return cut(redact.Redact("{"+strings.Join(parts, ", ")+"}"), 80)
}

func formatValue(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'g', -1, 64)
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.FormatFloat(f, 'f', 0, 64)
	default:
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
}

// exploreState is Grafana Explore's left-pane state.
type exploreState struct {
	Datasource string         `json:"datasource"`
	Queries    []exploreQuery `json:"queries"`
	Range      exploreRange   `json:"range"`
}

type exploreQuery struct {
	RefID      string            `json:"refId"`
	Datasource map[string]string `json:"datasource"`
	Expr       string            `json:"expr"`
	QueryType  string            `json:"queryType"`
}

type exploreRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// exploreLink returns a Grafana Explore URL showing the same query over the
// same range, or "" when Grafana is not configured.
func (q *Query) exploreLink(pl plan) string {
	if q.o.GrafanaURL == "" {
		return ""
	}
	st := exploreState{
		Datasource: q.o.GrafanaDatasource,
		Queries: []exploreQuery{{
			RefID:      "A",
			Datasource: map[string]string{"type": "loki", "uid": q.o.GrafanaDatasource},
			Expr:       pl.LogQL,
			QueryType:  "range",
		}},
		Range: exploreRange{
			From: strconv.FormatInt(pl.Start.UnixMilli(), 10),
			To:   strconv.FormatInt(pl.End.UnixMilli(), 10),
		},
	}
	b, _ := json.Marshal(st) // plain strings always marshal
	return q.o.GrafanaURL + "/explore?orgId=1&left=" + url.QueryEscape(string(b))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
