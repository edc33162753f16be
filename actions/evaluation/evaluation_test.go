package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/evals"
	parleyllm "github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

const cases = 20

// setup writes a suite "mini" (20 cases; variant "worse" misses every
// other case) and returns the two actions over a runner answered by a
// local OpenAI-compatible fake. hold, when true, makes the fake wait.
func setup(t *testing.T, o Options, hold *atomic.Bool, release chan struct{}) (run, status action.Action, runner *evals.Runner, dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"prompts/a.tmpl": "# version: a-1\n---\nVARIANT=a",
		"prompts/b.tmpl": "# version: b-1\n---\nVARIANT=b",
		"suites/mini.yaml": "name: mini\ndataset: datasets/mini.jsonl\n" +
			"target: {prompt: prompts/a.tmpl, provider: openai, model: gpt-4o-mini, max_tokens: 40}\n" +
			"variants: {baseline: {}, worse: {prompt: prompts/b.tmpl}}\n" +
			"metrics: [{type: contains, name: mentions}]\ngates: [{metric: mentions, max_regression: 0.1}]\n",
	}
	var ds strings.Builder
	for i := range cases {
		fmt.Fprintf(&ds, `{"id":"m%02d","input":"case-%d","expected":"ok-%d","reference":"ok-%d"}`+"\n", i, i, i, i)
	}
	files["datasets/mini.jsonl"] = ds.String()
	for n, b := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		if hold != nil && hold.Load() {
			<-release
		}
		var body struct {
			Messages []struct{ Role, Content string }
		}
		_ = json.Unmarshal(r.Body, &body)
		n, _ := strconv.Atoi(strings.TrimPrefix(body.Messages[1].Content, "case-"))
		if body.Messages[0].Content == "VARIANT=b" && n%2 == 0 {
			return llmtest.OpenAIText(r, "dunno")
		}
		return llmtest.OpenAIText(r, fmt.Sprintf("ok-%d", n))
	})
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := evals.OpenStore(context.Background(), db.SQL(), evals.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := parleyllm.NewClient(parleyllm.Options{Provider: evals.OpenAI, BaseURL: srv.BaseURL(), Model: "gpt-4o-mini", APIKey: "sk-x", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	llm, err := evals.NewLLM(map[string]*parleyllm.Client{evals.OpenAI: client})
	if err != nil {
		t.Fatal(err)
	}
	runner, err = evals.NewRunner(evals.RunnerOptions{Store: st, Dir: dir, LLM: llm,
		Prices:     llmcost.Prices{"gpt-4o-mini": {InputPer1M: 0.15, OutputPer1M: 0.6}},
		RateLimits: map[string]evals.RateLimit{evals.OpenAI: {RPS: 1000, Burst: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close(context.Background()) })
	o.Runner = runner
	run, status, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	return run, status, runner, dir
}

type updates struct {
	mu   sync.Mutex
	msgs []string
	got  chan string
}

func (u *updates) Update(_ context.Context, text string) {
	u.mu.Lock()
	u.msgs = append(u.msgs, text)
	u.mu.Unlock()
	if u.got != nil {
		u.got <- text
	}
}

func (u *updates) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.msgs...)
}

func req(params action.Params, p action.Progress) action.Request {
	return action.Request{Action: action.EvaluationRun, Params: params, Subject: "discord:1", Channel: "discord:2", Progress: p}
}

func TestPlanStatesCostAndDetectsEdits(t *testing.T) {
	run, _, _, dir := setup(t, Options{}, nil, nil)
	pl := run.(action.Planner)
	p, err := pl.Plan(context.Background(), req(action.Params{"suite": "mini", "variant": "worse"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Summary, "run mini: 20 cases × 2 variants (baseline vs worse) with gpt-4o-mini, about $0.0") {
		t.Fatalf("summary %q", p.Summary)
	}
	if p.State == "" || p.Target != "mini" {
		t.Fatalf("plan %+v", p)
	}
	suite := filepath.Join(dir, "suites", "mini.yaml")
	b, _ := os.ReadFile(suite)
	os.WriteFile(suite, append(b, []byte("concurrency: 2\n")...), 0o644)
	p2, err := pl.Plan(context.Background(), req(action.Params{"suite": "mini", "variant": "worse"}, nil))
	if err != nil || p2.State == p.State {
		t.Fatalf("an edited suite kept its fingerprint: %v", err)
	}
	if _, err := pl.Plan(context.Background(), req(action.Params{"suite": "nope"}, nil)); !errors.Is(err, action.ErrNotFound) {
		t.Fatalf("unknown suite: %v", err)
	}
	if _, err := pl.Plan(context.Background(), req(action.Params{"suite": "mini", "variant": "v9"}, nil)); !errors.Is(err, action.ErrNotFound) {
		t.Fatalf("unknown variant: %v", err)
	}
}

func TestRunAnswersWithTheCardAndThrottlesProgress(t *testing.T) {
	run, status, _, _ := setup(t, Options{ProgressEvery: time.Hour}, nil, nil)
	u := &updates{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := run.Run(ctx, req(action.Params{"suite": "mini", "variant": "worse"}, u))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Text, "Eval run 1 (mini, 20 cases): worse vs baseline: mentions 50.0% vs 100.0% (worse); gates FAILED") {
		t.Fatalf("text %q", res.Text)
	}
	if res.Table == nil || res.Table.Rows[0][0] != "mentions" || res.Table.Rows[0][6] != "worse" || res.Outcome["gates"] != "failed" {
		t.Fatalf("card %+v", res)
	}
	msgs := u.all()
	// "starting", then at most one per 10% of 40 answers (ProgressEvery is
	// an hour, so time never triggers one); the card itself is the answer.
	if len(msgs) < 3 || len(msgs) > 12 || !strings.Contains(msgs[0], "starting") {
		t.Fatalf("%d progress updates: %q", len(msgs), msgs)
	}
	got, err := status.Run(ctx, action.Request{Params: action.Params{"run": 1}})
	if err != nil || got.Text != res.Text {
		t.Fatalf("status of run 1: %q, %v", got.Text, err)
	}
	got, err = status.Run(ctx, action.Request{Params: action.Params{"suite": "mini"}})
	if err != nil || !strings.Contains(got.Text, "Eval run 1") {
		t.Fatalf("latest of mini: %q, %v", got.Text, err)
	}
	if _, err := status.Run(ctx, action.Request{Params: action.Params{"run": 9}}); !errors.Is(err, action.ErrNotFound) {
		t.Fatalf("run 9: %v", err)
	}
}

func TestLongRunAnswersStartedThenReportsTheResult(t *testing.T) {
	var hold atomic.Bool
	hold.Store(true)
	release := make(chan struct{})
	run, status, _, _ := setup(t, Options{Wait: 50 * time.Millisecond}, &hold, release)
	u := &updates{got: make(chan string, 100)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := run.Run(ctx, req(action.Params{"suite": "mini"}, u))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Text, "Eval run 1 (mini) started") || res.Outcome["status"] != "running" {
		t.Fatalf("text %q", res.Text)
	}
	st, err := status.Run(ctx, action.Request{Params: action.Params{"run": 1}})
	if err != nil || !strings.Contains(st.Text, "is running: 0 of 20 answers") {
		t.Fatalf("status while running: %q %v", st.Text, err)
	}
	hold.Store(false)
	close(release)
	for {
		select {
		case m := <-u.got:
			if strings.Contains(m, "finished") {
				if !strings.Contains(m, "Eval run 1 (mini) finished: baseline: mentions 100.0%; gates passed") {
					t.Fatalf("final %q", m)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("no final report; got %q", u.all())
		}
	}
}

func TestInventory(t *testing.T) {
	suites, variants, err := Inventory(filepath.Join("..", "..", "evals"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(suites, ",") != "incident-extract,intent-routing,summarizer-golden" || strings.Join(variants, ",") != "baseline,prompt-v2" {
		t.Fatalf("%v %v", suites, variants)
	}
}
