package evals

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMcNemarExact(t *testing.T) {
	for _, c := range []struct {
		b, c int
		want float64
	}{
		{0, 0, 1},
		{5, 5, 1},
		{16, 0, math.Pow(2, -15)},
		{10, 2, 0.03857421875}, // 2·(1+12+66)/4096
		{3, 1, 0.625},
	} {
		if got := McNemarExact(c.b, c.c); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("McNemarExact(%d, %d) = %v, want %v", c.b, c.c, got, c.want)
		}
	}
}

func TestPairedBootstrap(t *testing.T) {
	zero := make([]float64, 30)
	if m, lo, hi := PairedBootstrap(zero, 2000, 1); m != 0 || lo != 0 || hi != 0 {
		t.Fatalf("equal variants: %v [%v, %v]", m, lo, hi)
	}
	d := make([]float64, 50)
	for i := range d {
		d[i] = 0.1 + 0.01*float64(i%7) - 0.03
	}
	m1, lo1, hi1 := PairedBootstrap(d, 2000, 7)
	m2, lo2, hi2 := PairedBootstrap(d, 2000, 7)
	if m1 != m2 || lo1 != lo2 || hi1 != hi2 {
		t.Fatal("not reproducible with a fixed seed")
	}
	if !(lo1 > 0 && lo1 < m1 && m1 < hi1) {
		t.Fatalf("interval %v [%v, %v] should exclude 0 and hold the mean", m1, lo1, hi1)
	}
	// noise around 0 covers 0
	for i := range d {
		d[i] = float64(i%5) - 2
	}
	if _, lo, hi := PairedBootstrap(d, 2000, 7); lo > 0 || hi < 0 {
		t.Fatalf("noise around 0: [%v, %v]", lo, hi)
	}
}

func TestLocalMetrics(t *testing.T) {
	schema := map[string]any{"type": "object", "required": []any{"a"}, "additionalProperties": false,
		"properties": map[string]any{"a": map[string]any{"type": "integer", "minimum": 1}, "b": map[string]any{"enum": []any{"x", "y"}}}}
	cases := []struct {
		m        MetricSpec
		expected string
		ref      string
		out      string
		want     float64
	}{
		{MetricSpec{Type: ExactMatch}, `"Hello  World"`, "", " hello world ", 1},
		{MetricSpec{Type: ExactMatch, CaseSensitive: true}, `"Hello"`, "", "hello", 0},
		{MetricSpec{Type: ExactMatch}, `{"a":1}`, "", "```json\n{\"a\": 1}\n```", 1},
		{MetricSpec{Type: Contains}, `{"contains":["Foo","bar"]}`, "", "foo and BAR", 1},
		{MetricSpec{Type: Contains}, `["foo","baz"]`, "", "foo", 0},
		{MetricSpec{Type: Contains, Values: []string{"x"}}, ``, "", "xyz", 1},
		{MetricSpec{Type: Regex, Pattern: `^\d+ pods?$`}, ``, "", "3 pods", 1},
		{MetricSpec{Type: JSONValid}, ``, "", "{not json", 0},
		{MetricSpec{Type: JSONSchema, Schema: schema}, ``, "", `{"a": 2, "b": "x"}`, 1},
		{MetricSpec{Type: JSONSchema, Schema: schema}, ``, "", `{"a": 0}`, 0},
		{MetricSpec{Type: JSONSchema, Schema: schema}, ``, "", `{"a": 2, "c": 1}`, 0},
		{MetricSpec{Type: JSONSchema, Schema: schema}, ``, "", `{"a": 1.5}`, 0},
		{MetricSpec{Type: JSONFields}, `{"a":1,"b":"X","c":true,"d":null}`, "", `{"a":1,"b":" x ","c":false}`, 0.5},
		{MetricSpec{Type: Numeric, Tolerance: 0.5}, `42`, "", "about 42.4 ms", 1},
		{MetricSpec{Type: Numeric, Tolerance: 0.1, Relative: true}, `{"value":100}`, "", "111", 0},
		{MetricSpec{Type: Similarity, Method: "f1"}, ``, "the cat sat", "the cat sat", 1},
		{MetricSpec{Type: Similarity, Method: "f1"}, ``, "a b c d", "a b", 2 * 1 * 0.5 / 1.5},
		{MetricSpec{Type: Similarity, Method: "levenshtein"}, ``, "kitten", "sitting", 1 - 3.0/7},
	}
	s := &Suite{Target: Target{Type: TargetPrompt}}
	for i, c := range cases {
		m := c.m
		if err := m.check(s, nopHash{}); err != nil {
			t.Fatalf("case %d: check: %v", i, err)
		}
		cs := Case{ID: "x", Reference: c.ref}
		if c.expected != "" {
			cs.Expected = json.RawMessage(c.expected)
		}
		got := m.scoreLocal(cs, Output{Text: c.out, Latency: time.Millisecond})
		if !got.Valid() || math.Abs(got.Value-c.want) > 1e-9 {
			t.Errorf("case %d (%s %q): got %+v, want %v", i, m.Type, c.out, got, c.want)
		}
	}
}

type nopHash struct{}

func (nopHash) Write(b []byte) (int, error) { return len(b), nil }

func TestJudgeVerdict(t *testing.T) {
	for _, c := range []struct {
		scale, answer string
		want          float64
		valid         bool
	}{
		{ScaleScore, `{"score": 4, "reason": "ok"}`, 4, true},
		{ScaleScore, "```json\n{\"score\": 5}\n```", 5, true},
		{ScaleScore, `Sure! {"score": 9}`, 0, false},
		{ScalePassFail, `{"pass": false}`, 0, true},
		{ScalePassFail, `{"pass": true}`, 1, true},
		{ScalePassFail, `yes`, 0, false},
	} {
		got := judgeVerdict(c.scale, c.answer)
		if got.Valid() != c.valid || c.valid && got.Value != c.want {
			t.Errorf("%s %q: %+v", c.scale, c.answer, got)
		}
	}
}

func TestSuiteIsStrict(t *testing.T) {
	dir := writeToy(t, "")
	for name, body := range map[string]string{
		"unknown key":    "name: bad\ndataset: datasets/toy.jsonl\ntarget: router\nmetrics: [{type: routing}]\nbogus: 1\n",
		"unknown metric": "name: bad\ndataset: datasets/toy.jsonl\ntarget: router\nmetrics: [{type: bleu}]\n",
		"gate on nothing": "name: bad\ndataset: datasets/toy.jsonl\ntarget: {prompt: prompts/good.tmpl, provider: openai, model: m}\n" +
			"metrics: [{type: contains}]\ngates: [{metric: judge, min: 1}]\n",
		"missing prompt":   "name: bad\ndataset: datasets/toy.jsonl\ntarget: {prompt: prompts/nope.tmpl, provider: openai, model: m}\nmetrics: [{type: contains}]\n",
		"routing on model": "name: bad\ndataset: datasets/toy.jsonl\ntarget: {prompt: prompts/good.tmpl, provider: openai, model: m}\nmetrics: [{type: routing}]\n",
		"two gate bounds":  "name: bad\ndataset: datasets/toy.jsonl\ntarget: {prompt: prompts/good.tmpl, provider: openai, model: m}\nmetrics: [{type: contains}]\ngates: [{metric: contains, min: 1, max: 2}]\n",
	} {
		p := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSuite(dir, p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestReportsHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "run-7"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "run-7", "report.html"), []byte("<p>ok</p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "run-7", "report.csv"), []byte("a,b\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("nope"), 0o644)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "report.html"), []byte("outside"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "run-8"))
	srv := httptest.NewServer(http.StripPrefix("/reports", ReportsHandler(dir)))
	defer srv.Close()
	for path, want := range map[string]int{
		"/reports/run-7/report.html":          200,
		"/reports/run-7/report.csv":           200,
		"/reports/secret.txt":                 404,
		"/reports/run-7/../secret.txt":        404,
		"/reports/run-7/..%2f..%2fetc/passwd": 404,
		"/reports/run-8/report.html":          404, // symlink out of the folder
		"/reports/":                           404,
		"/reports/run-7/":                     404,
		"/reports/run-x/report.html":          404,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if want == 200 && resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", path)
		}
	}
	resp, err := http.Post(srv.URL+"/reports/run-7/report.html", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}
