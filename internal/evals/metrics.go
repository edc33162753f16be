package evals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/prompts"
)

// Metric types.
const (
	ExactMatch  = "exact_match"  // pass: output equals expected (text, or JSON when expected is not a string)
	Contains    = "contains"     // pass: output contains every expected string
	Regex       = "regex"        // pass: output matches pattern
	JSONValid   = "json_valid"   // pass: output is JSON (a ``` fence around it is allowed)
	JSONSchema  = "json_schema"  // pass: output is JSON valid against schema
	JSONFields  = "json_fields"  // mean: share of expected top-level fields the output JSON has right
	Numeric     = "numeric"      // pass: first number in output within tolerance of expected
	Similarity  = "similarity"   // mean: token F1 or normalised Levenshtein similarity to the reference, 0..1
	LLMJudge    = "llm_judge"    // mean score 1..5, or pass/fail, from a model-graded rubric
	Latency     = "latency"      // mean: milliseconds of the target's answer (lower is better)
	Tokens      = "tokens"       // mean: prompt + completion tokens (lower is better)
	Cost        = "cost"         // mean: US dollars of the target's answer (lower is better)
	RouteMatch  = "routing"      // pass: action and listed parameters right (internal/eval scoring)
	RoutingSafe = "routing_safe" // pass: not unsafe (no mutating action where only reading was asked)
)

var metricTypes = []string{ExactMatch, Contains, Regex, JSONValid, JSONSchema, JSONFields, Numeric, Similarity, LLMJudge, Latency, Tokens, Cost, RouteMatch, RoutingSafe}

// Judge scales.
const (
	ScaleScore    = "score"     // 1..5
	ScalePassFail = "pass_fail" // {"pass": true|false}
)

// MetricSpec is one metric of a suite.
type MetricSpec struct {
	Type string `yaml:"type"`
	Name string `yaml:"name"` // default: the type

	// contains: fixed strings; default the case's expected (a string, a
	// list of strings, or an object's "contains" list).
	Values        []string `yaml:"values"`
	CaseSensitive bool     `yaml:"case_sensitive"` // contains, exact_match
	Pattern       string   `yaml:"pattern"`        // regex
	// json_schema: an inline schema or a file relative to the evals folder.
	Schema     map[string]any `yaml:"schema"`
	SchemaFile string         `yaml:"schema_file"`
	Tolerance  float64        `yaml:"tolerance"` // numeric: absolute, or relative with relative: true
	Relative   bool           `yaml:"relative"`
	Method     string         `yaml:"method"` // similarity: f1 (default) or levenshtein
	// llm_judge: the judge prompt (evals/prompts/judge/*.tmpl), model and
	// scale. Provider and model default to the target's.
	Prompt   string `yaml:"prompt"`
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	Scale    string `yaml:"scale"`

	re     *regexp.Regexp
	schema *schemaNode
	judge  *prompts.Prompt
}

// Binary reports whether the metric is pass/fail (scored 0 or 1 per case).
func (m *MetricSpec) Binary() bool {
	switch m.Type {
	case ExactMatch, Contains, Regex, JSONValid, JSONSchema, Numeric, RouteMatch, RoutingSafe:
		return true
	case LLMJudge:
		return m.Scale == ScalePassFail
	}
	return false
}

// HigherIsBetter is false for latency, tokens and cost.
func (m *MetricSpec) HigherIsBetter() bool {
	return m.Type != Latency && m.Type != Tokens && m.Type != Cost
}

// JudgeVersion is the judge prompt's version ("" for other metrics).
func (m *MetricSpec) JudgeVersion() string {
	if m.judge == nil {
		return ""
	}
	return m.judge.Version
}

func (m *MetricSpec) check(s *Suite, h interface{ Write([]byte) (int, error) }) error {
	if !slices.Contains(metricTypes, m.Type) {
		return fmt.Errorf("unknown type (want one of %s)", strings.Join(metricTypes, ", "))
	}
	if m.Name == "" {
		m.Name = m.Type
	}
	if !nameRE.MatchString(m.Name) {
		return fmt.Errorf("bad name %q", m.Name)
	}
	router := s.Target.Type == TargetRouter
	if (m.Type == RouteMatch || m.Type == RoutingSafe) != router && m.Type != Latency {
		if router {
			return errors.New("the router target is scored by routing, routing_safe and latency")
		}
		return errors.New("routing metrics need the router target")
	}
	switch m.Type {
	case Regex:
		re, err := regexp.Compile(m.Pattern)
		if err != nil || m.Pattern == "" {
			return fmt.Errorf("pattern: %v", err)
		}
		m.re = re
	case JSONSchema:
		raw := m.Schema
		if (raw == nil) == (m.SchemaFile == "") {
			return errors.New("give schema or schema_file")
		}
		if m.SchemaFile != "" {
			b, err := os.ReadFile(s.file(m.SchemaFile))
			if err != nil {
				return err
			}
			h.Write(b)
			if err := yaml.Unmarshal(b, &raw); err != nil { // JSON is YAML
				return fmt.Errorf("schema_file: %v", err)
			}
		}
		sn, err := compileSchema(raw)
		if err != nil {
			return fmt.Errorf("schema: %v", err)
		}
		m.schema = sn
	case Numeric:
		if m.Tolerance < 0 {
			return errors.New("negative tolerance")
		}
	case Similarity:
		switch m.Method {
		case "":
			m.Method = "f1"
		case "f1", "levenshtein":
		default:
			return fmt.Errorf("method %q: want f1 or levenshtein", m.Method)
		}
	case LLMJudge:
		switch m.Scale {
		case "":
			m.Scale = ScaleScore
		case ScaleScore, ScalePassFail:
		default:
			return fmt.Errorf("scale %q: want score or pass_fail", m.Scale)
		}
		if m.Prompt == "" {
			return errors.New("a judge needs a prompt (evals/prompts/judge/NAME.tmpl)")
		}
		p, err := s.loadPrompt("judge", m.Prompt, h)
		if err != nil {
			return err
		}
		m.judge = p
		if m.Provider == "" {
			m.Provider = s.Target.Provider
		}
		if m.Model == "" {
			m.Model = s.Target.Model
		}
		if m.Provider == "" || m.Model == "" {
			return errors.New("a judge needs a provider and model (or the target's)")
		}
	}
	return nil
}

// Score is one metric's verdict on one answer.
type Score struct {
	Value float64 `json:"v"`              // 0 or 1 for pass/fail metrics
	Err   string  `json:"err,omitempty"`  // the metric could not score (the value does not count)
	Note  string  `json:"note,omitempty"` // why: missing strings, the judge's reason
}

// Valid reports whether the score counts.
func (s Score) Valid() bool { return s.Err == "" && !math.IsNaN(s.Value) }

func pass(ok bool, note string) Score {
	if ok {
		return Score{Value: 1}
	}
	return Score{Value: 0, Note: note}
}

// scoreLocal scores every metric that needs no model call.
func (m *MetricSpec) scoreLocal(c Case, out Output) Score {
	text := out.Text
	switch m.Type {
	case ExactMatch:
		var want string
		if json.Unmarshal(c.Expected, &want) == nil {
			if m.CaseSensitive {
				return pass(collapse(text) == collapse(want), "differs")
			}
			return pass(strings.EqualFold(collapse(text), collapse(want)), "differs")
		}
		var wantJ, gotJ any
		if err := json.Unmarshal(c.Expected, &wantJ); err != nil {
			return Score{Err: "case has no expected value"}
		}
		if err := json.Unmarshal([]byte(unfence(text)), &gotJ); err != nil {
			return pass(false, "not JSON")
		}
		return pass(reflect.DeepEqual(wantJ, gotJ), "differs")
	case Contains:
		want := m.Values
		if len(want) == 0 {
			want = expectedStrings(c.Expected)
		}
		if len(want) == 0 {
			return Score{Err: "no expected strings"}
		}
		var missing []string
		for _, w := range want {
			if m.CaseSensitive && !strings.Contains(text, w) || !m.CaseSensitive && !strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
				missing = append(missing, w)
			}
		}
		return pass(len(missing) == 0, "missing: "+strings.Join(missing, ", "))
	case Regex:
		return pass(m.re.MatchString(text), "no match for "+m.Pattern)
	case JSONValid:
		return pass(json.Valid([]byte(unfence(text))), "not JSON")
	case JSONSchema:
		var v any
		dec := json.NewDecoder(strings.NewReader(unfence(text)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return pass(false, "not JSON")
		}
		if err := m.schema.validate(v, "$"); err != nil {
			return pass(false, err.Error())
		}
		return pass(true, "")
	case JSONFields:
		return jsonFields(c.Expected, text)
	case Numeric:
		var want float64
		if err := json.Unmarshal(c.Expected, &want); err != nil {
			var o struct{ Value *float64 }
			if json.Unmarshal(c.Expected, &o) != nil || o.Value == nil {
				return Score{Err: "case has no expected number"}
			}
			want = *o.Value
		}
		got, ok := firstNumber(text)
		if !ok {
			return pass(false, "no number in the answer")
		}
		tol := m.Tolerance
		if m.Relative {
			tol *= math.Abs(want)
		}
		return pass(math.Abs(got-want) <= tol+1e-12, fmt.Sprintf("got %s, want %s", num(got), num(want)))
	case Similarity:
		ref := c.Reference
		if ref == "" {
			_ = json.Unmarshal(c.Expected, &ref)
		}
		if ref == "" {
			return Score{Err: "case has no reference"}
		}
		if m.Method == "levenshtein" {
			return Score{Value: levenshteinSimilarity(text, ref)}
		}
		return Score{Value: tokenF1(text, ref)}
	case Latency:
		return Score{Value: float64(out.Latency.Microseconds()) / 1000}
	case Tokens:
		return Score{Value: float64(out.PromptTokens + out.CompletionTokens)}
	case Cost:
		return Score{Value: out.Cost}
	case RouteMatch, RoutingSafe:
		if c.routing == nil || out.Intent == nil {
			return Score{Err: "no routing case or intent"}
		}
		r := ScoreRouting(*c.routing, *out.Intent, c.catalog)
		if m.Type == RoutingSafe {
			return pass(!r.Unsafe, "unsafe: "+out.Intent.Action)
		}
		return pass(r.OK, strings.Join(r.Problems(), "; "))
	}
	return Score{Err: "scored elsewhere"}
}

// expectedStrings reads a case's expected strings: "s", ["a","b"] or
// {"contains": [...]}.
func expectedStrings(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return []string{s}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var obj struct {
		Contains []string `json:"contains"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Contains
	}
	return nil
}

func jsonFields(expected json.RawMessage, text string) Score {
	var want map[string]any
	if err := json.Unmarshal(expected, &want); err != nil || len(want) == 0 {
		return Score{Err: "case has no expected object"}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(unfence(text)), &got); err != nil {
		return Score{Value: 0, Note: "not a JSON object"}
	}
	right := 0
	var wrong []string
	for k, w := range want {
		if g, ok := got[k]; ok && equalJSON(w, g) {
			right++
		} else {
			wrong = append(wrong, k)
		}
	}
	slices.Sort(wrong)
	note := ""
	if len(wrong) > 0 {
		note = "wrong: " + strings.Join(wrong, ", ")
	}
	return Score{Value: float64(right) / float64(len(want)), Note: note}
}

// equalJSON compares decoded JSON values; strings case-insensitively
// after trimming.
func equalJSON(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(strings.TrimSpace(as), strings.TrimSpace(bs))
	}
	return reflect.DeepEqual(a, b)
}

// unfence removes a Markdown code fence around a JSON answer.
func unfence(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "```"); ok {
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		}
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "```"))
	}
	return s
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

var numberRE = regexp.MustCompile(`-?\d+(?:[.,]\d+)?`)

func firstNumber(s string) (float64, bool) {
	m := numberRE.FindString(s)
	if m == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(m, ",", "."), 64)
	return f, err == nil
}

// words splits text into lower-case tokens of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// tokenF1 is the harmonic mean of token precision and recall (bag of
// words, as SQuAD scores answers).
func tokenF1(got, ref string) float64 {
	g, r := words(got), words(ref)
	if len(g) == 0 || len(r) == 0 {
		if len(g) == len(r) {
			return 1
		}
		return 0
	}
	counts := map[string]int{}
	for _, w := range r {
		counts[w]++
	}
	common := 0
	for _, w := range g {
		if counts[w] > 0 {
			counts[w]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	p, rc := float64(common)/float64(len(g)), float64(common)/float64(len(r))
	return 2 * p * rc / (p + rc)
}

// maxLevenshtein bounds the runes compared (the cost is quadratic).
const maxLevenshtein = 4000

// levenshteinSimilarity is 1 - distance/max(len) over runes, after
// collapsing whitespace and lower-casing.
func levenshteinSimilarity(a, b string) float64 {
	ra, rb := []rune(strings.ToLower(collapse(a))), []rune(strings.ToLower(collapse(b)))
	ra, rb = ra[:min(len(ra), maxLevenshtein)], rb[:min(len(rb), maxLevenshtein)]
	n := max(len(ra), len(rb))
	if n == 0 {
		return 1
	}
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return 1 - float64(prev[len(rb)])/float64(n)
}

// judgeVerdict reads a judge's JSON answer: {"score": 1..5} or
// {"pass": bool}, with an optional "reason".
func judgeVerdict(scale, answer string) Score {
	s := unfence(answer)
	if i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); i >= 0 && j > i {
		s = s[i : j+1]
	}
	var v struct {
		Score  *float64 `json:"score"`
		Pass   *bool    `json:"pass"`
		Reason string   `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	if err := dec.Decode(&v); err != nil {
		return Score{Err: "judge answer is not JSON"}
	}
	note := clip(v.Reason, 300)
	switch scale {
	case ScalePassFail:
		if v.Pass == nil {
			return Score{Err: "judge gave no pass"}
		}
		if *v.Pass {
			return Score{Value: 1, Note: note}
		}
		return Score{Value: 0, Note: note}
	default:
		if v.Score == nil || *v.Score < 1 || *v.Score > 5 {
			return Score{Err: "judge gave no score 1..5"}
		}
		return Score{Value: *v.Score, Note: note}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// num formats a number briefly: 0.8, 12, 0.0031.
func num(f float64) string {
	switch {
	case math.IsNaN(f):
		return "–"
	case f == math.Trunc(f) && math.Abs(f) < 1e9:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case math.Abs(f) >= 100:
		return strconv.FormatFloat(f, 'f', 1, 64)
	case math.Abs(f) >= 0.01:
		return strconv.FormatFloat(f, 'f', 3, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}
