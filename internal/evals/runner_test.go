package evals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	parleyllm "github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

const testKey = "sk-test-0123456789abcdefSECRET"

// toyCases is the size of the toy dataset.
const toyCases = 40

// writeToy writes an evals folder with a suite "toy" over 40 cases whose
// variants are told apart by their system prompt: "good" and "same"
// answer every case right, "worse" answers cases with n % 5 < 2 wrong
// (16 of 40, 40%).
func writeToy(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"prompts/good.tmpl":  "# version: good-1\n---\nVARIANT=good case {{.Case.ID}}",
		"prompts/same.tmpl":  "# version: same-1\n---\nVARIANT=same case {{.Case.ID}}",
		"prompts/worse.tmpl": "# version: worse-1\n---\nVARIANT=worse case {{.Case.ID}}",
		"prompts/judge.tmpl": "# version: judge-1\n---\nJUDGE scale={{.Scale}}. Answer JSON only.",
		"suites/toy.yaml": `name: toy
description: a toy suite for tests
dataset: datasets/toy.jsonl
target: {prompt: prompts/good.tmpl, provider: openai, model: toy-model, max_tokens: 50}
variants:
  baseline: {}
  same: {prompt: prompts/same.tmpl}
  worse: {prompt: prompts/worse.tmpl}
metrics:
  - {type: contains, name: mentions}
  - {type: similarity}
  - {type: llm_judge, name: judge, prompt: prompts/judge.tmpl}
  - {type: cost}
gates:
  - {metric: mentions, min: 0.5}
  - {metric: mentions, max_regression: 0.05}
` + extra,
	}
	var ds strings.Builder
	for i := range toyCases {
		tag := "even"
		if i%2 == 1 {
			tag = "odd"
		}
		fmt.Fprintf(&ds, `{"id":"c%02d","input":"case-%d","reference":"the answer is right answer-%d","expected":["answer-%d"],"tags":[%q]}`+"\n", i, i, i, i, tag)
	}
	files["datasets/toy.jsonl"] = ds.String()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// toyHandler answers like the variants above, and judges "right" answers
// 5 and others 2.
func toyHandler(r llmtest.Request) llmtest.Response {
	var body struct {
		Messages []struct{ Role, Content string }
	}
	_ = json.Unmarshal(r.Body, &body)
	system, user := "", ""
	for _, m := range body.Messages {
		switch m.Role {
		case "system":
			system = m.Content
		case "user":
			user = m.Content
		}
	}
	if strings.HasPrefix(system, "JUDGE") {
		var in struct{ Answer string }
		_ = json.Unmarshal([]byte(user), &in)
		if strings.Contains(in.Answer, "right") {
			return llmtest.OpenAIText(r, `{"score": 5, "reason": "grounded"}`)
		}
		return llmtest.OpenAIText(r, `{"score": 2, "reason": "wrong <b>answer</b>"}`)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(user, "case-"))
	if strings.HasPrefix(system, "VARIANT=worse") && n%5 < 2 {
		return llmtest.OpenAIText(r, "no idea <script>alert(1)</script>")
	}
	return llmtest.OpenAIText(r, fmt.Sprintf("the answer is right answer-%d", n))
}

type env struct {
	dir    string
	db     *store.DB
	st     *Store
	runner *Runner
	srv    *llmtest.Server
}

func openDB(t *testing.T, path string) (*store.DB, *Store) {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(context.Background(), db.SQL(), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return db, st
}

func newRunner(t *testing.T, dir string, st *Store, srv *llmtest.Server, mod func(*RunnerOptions)) *Runner {
	t.Helper()
	return newRunnerRetrying(t, dir, st, srv, 0, mod)
}

// newRunnerRetrying is newRunner whose model client retries maxRetries
// times (0: the default; negative: never).
func newRunnerRetrying(t *testing.T, dir string, st *Store, srv *llmtest.Server, maxRetries int, mod func(*RunnerOptions)) *Runner {
	t.Helper()
	var llm Completer
	if srv != nil {
		c, err := parleyllm.NewClient(parleyllm.Options{Provider: OpenAI, BaseURL: srv.BaseURL(), Model: "toy-model", APIKey: testKey,
			Timeout: 10 * time.Second, MaxRetries: maxRetries})
		if err != nil {
			t.Fatal(err)
		}
		if llm, err = NewLLM(map[string]*parleyllm.Client{OpenAI: c}); err != nil {
			t.Fatal(err)
		}
	}
	o := RunnerOptions{Store: st, Dir: dir, LLM: llm, ReportsDir: filepath.Join(t.TempDir(), "reports"),
		Prices:     llmcost.Prices{"toy-model": {InputPer1M: 1, OutputPer1M: 2}},
		RateLimits: map[string]RateLimit{OpenAI: {RPS: 1000, Burst: 50}}}
	if mod != nil {
		mod(&o)
	}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func newEnv(t *testing.T, h llmtest.Handler) *env {
	t.Helper()
	e := &env{dir: writeToy(t, "")}
	e.db, e.st = openDB(t, filepath.Join(t.TempDir(), "parley.db"))
	t.Cleanup(func() { e.db.Close() })
	e.srv = llmtest.NewOpenAI(t, h)
	e.runner = newRunner(t, e.dir, e.st, e.srv, nil)
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func metric(t *testing.T, s *Summary, name string) MetricSummary {
	t.Helper()
	for _, m := range s.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no metric %s", name)
	return MetricSummary{}
}

func TestWorseVariantIsASignificantRegression(t *testing.T) {
	e := newEnv(t, toyHandler)
	var mu sync.Mutex
	var seen []Progress
	run, sum, err := e.runner.Run(ctxT(t), RunRequest{Suite: "toy", Variant: "worse"}, func(p Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != 1 || run.Total != 2*toyCases {
		t.Fatalf("run %+v", run)
	}
	m := metric(t, sum, "mentions")
	if m.Baseline.Mean != 1 || m.Variant.Mean != 0.6 || m.Baseline.N != toyCases {
		t.Fatalf("mentions: baseline %+v variant %+v", m.Baseline, m.Variant)
	}
	c := m.Comparison
	if c.Method != "mcnemar" || c.B != 16 || c.C != 0 || math.Abs(c.P-math.Pow(2, -15)) > 1e-15 || !c.Significant || c.Verdict != "worse" {
		t.Fatalf("mentions comparison %+v", c)
	}
	if c.P >= 0.05 {
		t.Fatalf("p = %v", c.P)
	}
	sim := metric(t, sum, "similarity")
	if sim.Comparison.Method != "bootstrap" || sim.Comparison.Verdict != "worse" || sim.Comparison.High >= 0 {
		t.Fatalf("similarity comparison %+v", sim.Comparison)
	}
	j := metric(t, sum, "judge")
	if j.Baseline.Mean != 5 || math.Abs(j.Variant.Mean-(24*5+16*2)/40.0) > 1e-9 || j.Comparison.Verdict != "worse" || j.Judge != "judge-1" {
		t.Fatalf("judge %+v", j)
	}
	if sum.GatesPassed || sum.Gates[0].Passed != true || sum.Gates[1].Passed {
		t.Fatalf("gates %+v", sum.Gates)
	}
	if !strings.Contains(sum.Gates[1].Reason, "0.400 worse than baseline") {
		t.Fatalf("gate reason %q", sum.Gates[1].Reason)
	}
	if len(sum.Worst) != maxWorst || sum.Worst[0].Metric != "mentions" || sum.Worst[0].Delta != -1 {
		t.Fatalf("worst %+v", sum.Worst)
	}
	if sum.PromptTokens == 0 || sum.JudgeTokens == 0 || sum.Cost <= 0 {
		t.Fatalf("spend %+v", sum)
	}
	// 80 answers and 80 judgements, nothing more
	if n := e.srv.Count(); n != 160 {
		t.Fatalf("%d model calls, want 160", n)
	}
	if len(sum.Tags) != 2 || sum.Tags[0].Tag != "even" || sum.Tags[0].Variant.N != 20 {
		t.Fatalf("tags %+v", sum.Tags)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	if len(seen) != 2*toyCases+1 || !last.Finished || last.Summary == nil || seen[len(seen)-2].Done != 2*toyCases {
		t.Fatalf("progress: %d calls, last %+v", len(seen), last)
	}
	if !strings.Contains(seen[len(seen)-2].String(), "80/80 answers") {
		t.Fatalf("progress text %q", seen[len(seen)-2].String())
	}
	mu.Unlock()
	stored, err := e.st.GetRun(ctxT(t), run.ID)
	if err != nil || stored.Status != StatusDone || stored.Done != 80 || stored.Summary.GatesPassed {
		t.Fatalf("stored run %+v, %v", stored, err)
	}
	for _, f := range []string{sum.CSV, sum.HTML} {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Fatalf("report %s: %v", f, err)
		}
	}
}

func TestEqualVariantIsNotSignificant(t *testing.T) {
	e := newEnv(t, toyHandler)
	_, sum, err := e.runner.Run(ctxT(t), RunRequest{Suite: "toy", Variant: "same"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mentions", "similarity", "judge"} {
		c := metric(t, sum, name).Comparison
		if c.Significant || c.Verdict != "no significant difference" || c.Diff != 0 || c.Low > 0 || c.High < 0 || c.P != 1 {
			t.Fatalf("%s: %+v", name, c)
		}
	}
	if !sum.GatesPassed || len(sum.Worst) != 0 {
		t.Fatalf("gates %+v worst %+v", sum.Gates, sum.Worst)
	}
}

func TestRetriesRateLimitedCalls(t *testing.T) {
	// Every third distinct call is refused once with 429, and answered
	// when it is retried (keyed by body, so a retry is never refused
	// again whatever order concurrent calls arrive in).
	var (
		mu      sync.Mutex
		n       int
		refused = map[string]bool{}
	)
	e := newEnv(t, func(r llmtest.Request) llmtest.Response {
		mu.Lock()
		key := string(r.Body)
		_, seen := refused[key]
		refuse := false
		if !seen {
			n++
			refuse = n%3 == 1
			refused[key] = refuse
		}
		mu.Unlock()
		if refuse {
			return llmtest.WithRetryAfter(llmtest.OpenAIError(429, "rate_limit_exceeded", "rate_limit_exceeded", "slow down"), "0.01")
		}
		return toyHandler(r)
	})
	_, sum, err := e.runner.Run(ctxT(t), RunRequest{Suite: "toy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors["baseline"] != 0 || metric(t, sum, "mentions").Baseline.Mean != 1 || sum.Compared() {
		t.Fatalf("summary %+v", sum)
	}
	if got := e.srv.Count(); got <= 80 {
		t.Fatalf("%d requests: the refusals were not retried", got)
	}
}

func TestFailedCallsAreRecordedWithoutSecrets(t *testing.T) {
	e := newEnv(t, func(r llmtest.Request) llmtest.Response {
		return llmtest.OpenAIError(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: "+testKey)
	})
	run, sum, err := e.runner.Run(ctxT(t), RunRequest{Suite: "toy"}, nil)
	if err == nil || !strings.Contains(err.Error(), "every answer failed") {
		t.Fatalf("err = %v", err)
	}
	if sum == nil || sum.GatesPassed || sum.Errors["baseline"] != toyCases {
		t.Fatalf("summary %+v", sum)
	}
	if e.srv.Count() != toyCases { // 401 is not retried
		t.Fatalf("%d requests", e.srv.Count())
	}
	got, _ := e.st.GetRun(ctxT(t), run.ID)
	cases, _ := e.st.Cases(ctxT(t), run.ID)
	for _, s := range []string{err.Error(), got.Error, cases[0].Err} {
		if strings.Contains(s, testKey) || strings.Contains(s, "SECRET") {
			t.Fatalf("secret leaked: %q", s)
		}
	}
	if got.Status != StatusFailed || !strings.Contains(cases[0].Err, "answered 401 Unauthorized") || !strings.Contains(cases[0].Err, "it refused Parley's credentials") {
		t.Fatalf("run %+v case %+v", got, cases[0])
	}
}

// TestRestartResumesRun interrupts a run half-way (the runner closes as
// Parley does on shutdown, the database closes), then a new runner on the
// reopened database resumes it: the answers stored before are kept and
// not asked again, and the run finishes with every case.
func TestRestartResumesRun(t *testing.T) {
	dir := writeToy(t, "")
	dbPath := filepath.Join(t.TempDir(), "parley.db")
	var hold atomic.Bool
	hold.Store(true)
	var asked sync.Map // case input -> requests
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		var body struct {
			Messages []struct{ Role, Content string }
		}
		_ = json.Unmarshal(r.Body, &body)
		user := body.Messages[len(body.Messages)-1].Content
		if !strings.HasPrefix(user, "{") { // not a judge call
			v, _ := asked.LoadOrStore(user, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			n, _ := strconv.Atoi(strings.TrimPrefix(user, "case-"))
			if hold.Load() && n >= 10 {
				return llmtest.Hang()
			}
		}
		return toyHandler(r)
	})
	db1, st1 := openDB(t, dbPath)
	r1 := newRunnerRetrying(t, dir, st1, srv, -1, nil)
	stored := make(chan struct{})
	var once sync.Once
	run, err := r1.Start(ctxT(t), RunRequest{Suite: "toy", Variant: "same"}, func(p Progress) {
		if p.Done >= 20 {
			once.Do(func() { close(stored) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stored:
	case <-time.After(30 * time.Second):
		t.Fatal("the first 20 answers never came")
	}
	if err := r1.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Wait(ctxT(t), run.ID); err == nil || !strings.Contains(err.Error(), "resumes at the next start") {
		t.Fatalf("wait after close: %v", err)
	}
	db1.Close()

	hold.Store(false)
	db2, st2 := openDB(t, dbPath)
	defer db2.Close()
	before, _ := st2.GetRun(ctxT(t), run.ID)
	if before.Status != StatusRunning || before.Done != 20 {
		t.Fatalf("after restart: %+v", before)
	}
	r2 := newRunner(t, dir, st2, srv, nil)
	ids, err := r2.Resume(ctxT(t))
	if err != nil || len(ids) != 1 || ids[0] != run.ID {
		t.Fatalf("resume: %v %v", ids, err)
	}
	sum, err := r2.Wait(ctxT(t), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := st2.GetRun(ctxT(t), run.ID)
	if after.Status != StatusDone || after.Done != 80 || metric(t, sum, "mentions").Variant.N != toyCases {
		t.Fatalf("resumed run %+v", after)
	}
	for i := range 10 { // answered before the restart: never asked again
		v, _ := asked.Load(fmt.Sprintf("case-%d", i))
		if n := v.(*atomic.Int32).Load(); n != 2 { // baseline and "same"
			t.Fatalf("case-%d asked %d times", i, n)
		}
	}
}

func TestResumeRefusesAChangedSuite(t *testing.T) {
	e := newEnv(t, toyHandler)
	run, err := e.st.CreateRun(ctxT(t), Run{Suite: "toy", Variant: "same", Baseline: "baseline", Runner: RunnerLocal, SuiteHash: "old", DatasetHash: "old", Total: 80})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := e.runner.Resume(ctxT(t))
	if err != nil || len(ids) != 0 {
		t.Fatalf("resume: %v %v", ids, err)
	}
	got, _ := e.st.GetRun(ctxT(t), run.ID)
	if got.Status != StatusInterrupted || !strings.Contains(got.Error, "suite changed") {
		t.Fatalf("run %+v", got)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, func(r llmtest.Request) llmtest.Response { return llmtest.Hang() })
	run, err := e.runner.Start(ctxT(t), RunRequest{Suite: "toy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !e.runner.Cancel(run.ID) {
		t.Fatal("cancel found no run")
	}
	if _, err := e.runner.Wait(ctxT(t), run.ID); !errors.Is(err, ErrCancelled) {
		t.Fatalf("wait: %v", err)
	}
	got, _ := e.st.GetRun(ctxT(t), run.ID)
	if got.Status != StatusCancelled {
		t.Fatalf("status %s", got.Status)
	}
	if e.runner.Cancel(run.ID) {
		t.Fatal("cancelled twice")
	}
}

func TestRunIDsAreSmallIntegers(t *testing.T) {
	_, st := openDB(t, store.Memory)
	for want := 1; want <= 3; want++ {
		r, err := st.CreateRun(ctxT(t), Run{Suite: "s", Variant: "v", Baseline: "v"})
		if err != nil || r.ID != want {
			t.Fatalf("run id %d, want %d (%v)", r.ID, want, err)
		}
	}
}
