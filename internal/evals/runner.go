package evals

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// RateLimit is a token bucket: requests per second and burst.
type RateLimit struct {
	RPS   float64
	Burst int
}

// DefaultRateLimit applies to a provider without its own limit.
var DefaultRateLimit = RateLimit{RPS: 5, Burst: 5}

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Store *Store // required
	Dir   string // the evals folder (suites/, datasets/, prompts/); required
	// LLM answers prompt targets and judges; nil makes such suites
	// answer "not configured". The runner adds rate limits; retries and
	// timeouts are the model client's (llm.Client), the same as routing's.
	LLM Completer
	// Router answers router targets, routing each case with Catalog (the
	// specs of the configuration's actions, which also check the routing
	// datasets); a nil Router makes such suites answer "not configured".
	Router  intent.Router
	Catalog []action.Spec
	Prices  llmcost.Prices
	// RateLimits per provider (openai, azure, anthropic); missing ones
	// get DefaultRateLimit. Shared by every run of this runner.
	RateLimits map[string]RateLimit
	// ReportsDir receives run-ID/report.csv and run-ID/report.html; ""
	// writes none. ReportsURL, when set, is the public URL of
	// ReportsHandler(ReportsDir) (e.g. https://parley.example.com/reports/),
	// used for links instead of file paths.
	ReportsDir string
	ReportsURL string
	// Kube runs suites with runner: kubernetes as Indexed Jobs; nil makes
	// them answer "not configured".
	Kube   *KubeOptions
	Logger *slog.Logger
	Now    func() time.Time
}

// RunRequest asks for one run.
type RunRequest struct {
	Suite       string
	Variant     string // "" runs the baseline alone
	Baseline    string // "" is the suite's
	RequestedBy string // "platform:user", or "cli"
	Channel     string
	Runner      string // "" is the suite's (local by default)
}

// Progress is how far a run is.
type Progress struct {
	RunID  int
	Suite  string
	Done   int // answers produced (case × variant)
	Total  int
	Metric string             // the suite's first metric
	Scores map[string]float64 // its running mean per variant
	Binary bool
	Cost   float64 // spend so far, US dollars
	Tokens int
	// Finished is set on the last call, after the run ended: Summary (nil
	// when the run failed before any summary) and Err say how.
	Finished bool
	Summary  *Summary
	Err      error
}

// String is e.g. "run 42 summarizer-golden: 31/60 answers; mentions
// baseline 90.0%, prompt-v2 86.7%; $0.0123 so far".
func (p Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Eval run %d (%s): %d/%d answers", p.RunID, p.Suite, p.Done, p.Total)
	if len(p.Scores) > 0 {
		var parts []string
		for _, v := range sortedKeys(p.Scores) {
			s := num(p.Scores[v])
			if p.Binary {
				s = fmt.Sprintf("%.1f%%", p.Scores[v]*100)
			}
			parts = append(parts, v+" "+s)
		}
		fmt.Fprintf(&b, "; %s so far: %s", p.Metric, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "; spent $%.4f (%d tokens)", p.Cost, p.Tokens)
	return b.String()
}

// Errors of a run's end.
var (
	// ErrCancelled: someone cancelled the run.
	ErrCancelled = errors.New("evaluation cancelled")
	// errShutdown: the runner is closing; the run stays "running" and is
	// resumed at the next start.
	errShutdown = errors.New("parley is stopping")
)

// Runner runs evaluation suites, one goroutine pool per run, and owns
// every goroutine it starts (Close waits for them).
type Runner struct {
	o   RunnerOptions
	log *slog.Logger
	eng *engine

	base context.Context
	stop context.CancelCauseFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	active  map[int]*activeRun
	buckets map[string]*bucket
}

type activeRun struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
	sum    *Summary
	err    error
}

// NewRunner checks the options and returns a runner.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Store == nil {
		return nil, errors.New("evals: runner needs a store")
	}
	if o.Dir == "" {
		return nil, errors.New("evals: runner needs the evals folder")
	}
	if err := o.Prices.Check(); err != nil {
		return nil, fmt.Errorf("evals: %w", err)
	}
	for p, l := range o.RateLimits {
		if l.RPS <= 0 || l.Burst < 1 {
			return nil, fmt.Errorf("evals: rate limit of %s: want rps > 0 and burst >= 1", p)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReportsURL != "" {
		if _, err := url.Parse(o.ReportsURL); err != nil {
			return nil, fmt.Errorf("evals: reports URL: %w", err)
		}
	}
	if o.Kube != nil {
		if err := o.Kube.check(); err != nil {
			return nil, err
		}
	}
	r := &Runner{o: o, log: o.Logger, active: map[int]*activeRun{}, buckets: map[string]*bucket{}}
	r.base, r.stop = context.WithCancelCause(context.Background())
	r.eng = &engine{router: o.Router, catalog: o.Catalog, prices: o.Prices}
	if o.LLM != nil {
		r.eng.llm = &limited{r: r, inner: o.LLM}
	}
	return r, nil
}

// Catalog loads the evals folder's suites.
func (r *Runner) Catalog() (*Catalog, error) { return LoadCatalog(r.o.Dir) }

// Prices is the runner's price table.
func (r *Runner) Prices() llmcost.Prices { return r.o.Prices }

// Store is the runner's store.
func (r *Runner) Store() *Store { return r.o.Store }

// Prepare loads what a request would run, without running it: the suite,
// its dataset, and the resolved variant and baseline.
func (r *Runner) Prepare(req RunRequest) (*Suite, *Dataset, string, string, error) {
	cat, cerr := r.Catalog()
	if cat == nil {
		return nil, nil, "", "", cerr
	}
	s, err := cat.Suite(req.Suite)
	if err != nil {
		if cerr != nil { // the suite may be the broken one
			return nil, nil, "", "", fmt.Errorf("%w: %w", action.ErrInvalid, cerr)
		}
		return nil, nil, "", "", err
	}
	ds, err := s.LoadDataset(r.o.Catalog)
	if err != nil {
		return nil, nil, "", "", fmt.Errorf("%w: %w", action.ErrInvalid, err)
	}
	v, b, err := s.Pair(req.Variant, req.Baseline)
	if err != nil {
		return nil, nil, "", "", err
	}
	if s.Target.Type == TargetPrompt && r.eng.llm == nil {
		return nil, nil, "", "", fmt.Errorf("%w: suite %s needs a language model and none is configured (router.llm)", action.ErrNotConfigured, s.Name)
	}
	kind := cmp.Or(req.Runner, s.Runner)
	if kind == RunnerKubernetes && r.o.Kube == nil {
		return nil, nil, "", "", fmt.Errorf("%w: suite %s runs as Kubernetes Jobs and no Job namespace or image is configured", action.ErrNotConfigured, s.Name)
	}
	if kind != RunnerLocal && kind != RunnerKubernetes {
		return nil, nil, "", "", fmt.Errorf("%w: runner %q is not local or kubernetes", action.ErrInvalid, kind)
	}
	return s, ds, v, b, nil
}

func variantsOf(variant, baseline string) []string {
	if variant == baseline {
		return []string{baseline}
	}
	return []string{baseline, variant}
}

// Start creates a run and starts it in the background; progress (may be
// nil) is called after every answer from the run's goroutines, one call
// at a time. The run outlives ctx: it ends by itself, by Cancel, or by
// Close (which leaves it to be resumed).
func (r *Runner) Start(ctx context.Context, req RunRequest, progress func(Progress)) (Run, error) {
	s, ds, v, b, err := r.Prepare(req)
	if err != nil {
		return Run{}, err
	}
	if r.base.Err() != nil {
		return Run{}, fmt.Errorf("%w: the evaluation runner is stopping", action.ErrUnavailable)
	}
	run, err := r.o.Store.CreateRun(ctx, Run{
		Suite: s.Name, Variant: v, Baseline: b, Runner: cmp.Or(req.Runner, s.Runner),
		RequestedBy: req.RequestedBy, Channel: req.Channel, SuiteHash: s.Hash, DatasetHash: ds.Hash,
		Total: len(ds.Cases) * len(variantsOf(v, b)),
	})
	if err != nil {
		return Run{}, fmt.Errorf("%w: %w", action.ErrUnavailable, err)
	}
	r.launch(run, s, ds, progress)
	return run, nil
}

func (r *Runner) launch(run Run, s *Suite, ds *Dataset, progress func(Progress)) {
	ctx, cancel := context.WithCancelCause(r.base)
	a := &activeRun{cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	r.active[run.ID] = a
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel(nil)
		a.sum, a.err = r.exec(ctx, run, s, ds, progress)
		if progress != nil && !errors.Is(a.err, errShutdown) {
			p := Progress{RunID: run.ID, Suite: s.Name, Total: run.Total, Finished: true, Summary: a.sum, Err: a.err}
			if a.sum != nil {
				p.Cost, p.Tokens = a.sum.Cost, a.sum.PromptTokens+a.sum.CompletionTokens+a.sum.JudgeTokens
			}
			progress(p)
		}
		r.mu.Lock()
		delete(r.active, run.ID)
		r.mu.Unlock()
		close(a.done)
	}()
}

// Wait waits for a run to end and returns its summary.
func (r *Runner) Wait(ctx context.Context, id int) (*Summary, error) {
	r.mu.Lock()
	a := r.active[id]
	r.mu.Unlock()
	if a != nil {
		select {
		case <-a.done:
			return a.sum, a.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	run, err := r.o.Store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	switch run.Status {
	case StatusDone:
		return run.Summary, nil
	case StatusCancelled:
		return run.Summary, ErrCancelled
	case StatusRunning:
		if r.base.Err() != nil {
			return nil, fmt.Errorf("run %d: %w: it resumes at the next start", id, errShutdown)
		}
		return nil, fmt.Errorf("%w: run %d is running in another Parley process", action.ErrConflict, id)
	}
	return run.Summary, fmt.Errorf("run %d %s: %s", id, run.Status, run.Error)
}

// Run starts a run and waits for it; when ctx ends first the run is
// cancelled.
func (r *Runner) Run(ctx context.Context, req RunRequest, progress func(Progress)) (Run, *Summary, error) {
	run, err := r.Start(ctx, req, progress)
	if err != nil {
		return run, nil, err
	}
	sum, err := r.Wait(ctx, run.ID)
	if ctx.Err() != nil {
		r.Cancel(run.ID)
		sum, err = r.Wait(context.WithoutCancel(ctx), run.ID)
	}
	return run, sum, err
}

// Cancel stops a running run of this process; it reports whether there
// was one. Answers already produced are kept; the run is marked cancelled.
func (r *Runner) Cancel(id int) bool {
	r.mu.Lock()
	a := r.active[id]
	r.mu.Unlock()
	if a == nil {
		return false
	}
	a.cancel(ErrCancelled)
	return true
}

// Active lists the ids of runs in progress in this process.
func (r *Runner) Active() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int
	for id := range r.active {
		ids = append(ids, id)
	}
	return ids
}

// Close stops every run, leaving them "running" in the store so that
// Resume continues them at the next start, and waits for the goroutines
// until ctx ends.
func (r *Runner) Close(ctx context.Context) error {
	r.stop(errShutdown)
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("evals: runs still stopping: %w", ctx.Err())
	}
}

// Resume continues the runs a previous process left "running": each one
// goes on from the answers it had stored, so nothing confirmed is lost and
// nothing is paid for twice. A run whose suite or dataset changed since
// it started (hashes differ), or whose suite is gone, is marked
// interrupted instead: its remaining answers would not be comparable.
// Resumed runs report progress to the log only (the chat thread that
// asked is gone); their results are read with evaluation.status.
func (r *Runner) Resume(ctx context.Context) (resumed []int, err error) {
	runs, err := r.o.Store.RunsWithStatus(ctx, StatusRunning)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, run := range runs {
		r.mu.Lock()
		_, busy := r.active[run.ID]
		r.mu.Unlock()
		if busy {
			continue
		}
		s, ds, _, _, perr := r.Prepare(RunRequest{Suite: run.Suite, Variant: run.Variant, Baseline: run.Baseline, Runner: run.Runner})
		reason := ""
		switch {
		case perr != nil:
			reason = "cannot resume: " + perr.Error()
		case s.Hash != run.SuiteHash:
			reason = "cannot resume: the suite changed since the run started"
		case ds.Hash != run.DatasetHash:
			reason = "cannot resume: the dataset changed since the run started"
		}
		if reason != "" {
			r.log.Warn("evaluation run interrupted", "run", run.ID, "suite", run.Suite, "reason", reason)
			errs = append(errs, r.o.Store.Finish(ctx, run.ID, StatusInterrupted, nil, reason))
			continue
		}
		r.log.Info("resuming evaluation run", "run", run.ID, "suite", run.Suite, "done", run.Done, "total", run.Total)
		id := run.ID
		r.launch(run, s, ds, func(p Progress) {
			if p.Done == p.Total {
				r.log.Info("resumed evaluation run finished", "run", id)
			}
		})
		resumed = append(resumed, run.ID)
	}
	return resumed, errors.Join(errs...)
}

type unit struct {
	idx     int
	variant string
}

// exec produces the missing answers of a run, then summarises it.
func (r *Runner) exec(ctx context.Context, run Run, s *Suite, ds *Dataset, progress func(Progress)) (*Summary, error) {
	log := r.log.With("run", run.ID, "suite", s.Name)
	// Bookkeeping writes must land even when the run's context ends.
	bg := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	}
	fail := func(err error) (*Summary, error) {
		c, cancel := bg()
		defer cancel()
		if ferr := r.o.Store.Finish(c, run.ID, StatusFailed, nil, err.Error()); ferr != nil {
			log.Error("recording a failed run failed", "err", ferr)
		}
		return nil, err
	}
	rc, rcancel := bg()
	have, err := r.o.Store.Cases(rc, run.ID)
	rcancel()
	if err != nil {
		return fail(err)
	}
	tr := newTracker(run, s, progress)
	done := map[[2]string]bool{}
	for _, c := range have {
		done[[2]string{c.Variant, c.CaseID}] = true
		tr.add(c)
	}
	var todo []unit
	for i, c := range ds.Cases {
		for _, v := range variantsOf(run.Variant, run.Baseline) {
			if !done[[2]string{v, c.ID}] {
				todo = append(todo, unit{idx: i, variant: v})
			}
		}
	}
	save := func(res CaseResult) error {
		res.RunID = run.ID
		c, cancel := bg()
		defer cancel()
		if err := r.o.Store.SaveCase(c, res); err != nil {
			return err
		}
		tr.add(res)
		return nil
	}
	if run.Runner == RunnerKubernetes {
		err = r.execKube(ctx, run, s, todo, save)
	} else {
		err = r.execLocal(ctx, s, ds, todo, save)
	}
	if cause := context.Cause(ctx); ctx.Err() != nil {
		if errors.Is(cause, errShutdown) {
			log.Info("evaluation run left to resume", "err", cause)
			return nil, fmt.Errorf("run %d: %w: it resumes at the next start", run.ID, cause)
		}
		c, cancel := bg()
		defer cancel()
		sum, _ := r.finish(c, run, s, ds, StatusCancelled)
		return sum, fmt.Errorf("run %d: %w", run.ID, ErrCancelled)
	}
	if err != nil {
		return fail(err)
	}
	c, cancel := bg()
	defer cancel()
	return r.finish(c, run, s, ds, StatusDone)
}

// finish summarises the stored answers, writes the reports and records
// the end.
func (r *Runner) finish(ctx context.Context, run Run, s *Suite, ds *Dataset, status string) (*Summary, error) {
	results, err := r.o.Store.Cases(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	sum := Summarize(s, ds, run.ID, run.Variant, run.Baseline, results)
	errText := ""
	if status == StatusDone && len(results) > 0 && !slices.ContainsFunc(results, func(c CaseResult) bool { return c.Err == "" }) {
		status, errText = StatusFailed, "every answer failed: "+firstErr(results)
	}
	if r.o.ReportsDir != "" {
		dir := filepath.Join(r.o.ReportsDir, fmt.Sprintf("run-%d", run.ID))
		if err := WriteReports(dir, s, ds, sum, results); err != nil {
			r.log.Error("writing evaluation reports failed", "run", run.ID, "err", err)
		} else {
			sum.CSV, sum.HTML = r.reportLink(run.ID, "report.csv", dir), r.reportLink(run.ID, "report.html", dir)
		}
	}
	if err := r.o.Store.Finish(ctx, run.ID, status, sum, errText); err != nil {
		return sum, err
	}
	if status == StatusFailed {
		return sum, fmt.Errorf("run %d failed: %s", run.ID, errText)
	}
	return sum, nil
}

func firstErr(rs []CaseResult) string {
	for _, c := range rs {
		if c.Err != "" {
			return c.Err
		}
	}
	return ""
}

func (r *Runner) reportLink(id int, name, dir string) string {
	if r.o.ReportsURL == "" {
		return filepath.Join(dir, name)
	}
	u, _ := url.JoinPath(r.o.ReportsURL, fmt.Sprintf("run-%d", id), name)
	return u
}

// execLocal answers the units with the suite's concurrency.
func (r *Runner) execLocal(ctx context.Context, s *Suite, ds *Dataset, todo []unit, save func(CaseResult) error) error {
	units := make(chan unit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range min(s.Concurrency, max(1, len(todo))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				res, err := r.eng.answer(ctx, s, ds, u.idx, u.variant)
				if err == nil {
					err = save(res)
				}
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, u := range todo {
		select {
		case units <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(units)
	wg.Wait()
	return firstErr
}

// tracker counts answers and keeps running scores for progress reports.
type tracker struct {
	mu       sync.Mutex
	p        Progress
	sums     map[string]float64
	ns       map[string]int
	progress func(Progress)
}

func newTracker(run Run, s *Suite, progress func(Progress)) *tracker {
	t := &tracker{p: Progress{RunID: run.ID, Suite: s.Name, Total: run.Total}, sums: map[string]float64{}, ns: map[string]int{}, progress: progress}
	if len(s.Metrics) > 0 {
		t.p.Metric, t.p.Binary = s.Metrics[0].Name, s.Metrics[0].Binary()
	}
	return t
}

func (t *tracker) add(c CaseResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Done++
	t.p.Cost += c.Cost + c.JudgeCost
	t.p.Tokens += c.PromptTokens + c.CompletionTokens + c.JudgeTokens
	if sc, ok := c.Scores[t.p.Metric]; ok && sc.Valid() {
		t.sums[c.Variant] += sc.Value
		t.ns[c.Variant]++
	}
	scores := map[string]float64{}
	for v, n := range t.ns {
		scores[v] = t.sums[v] / float64(n)
	}
	t.p.Scores = scores
	if t.progress != nil {
		t.progress(t.p)
	}
}

// limited adds the provider's token bucket to a Completer.
type limited struct {
	r     *Runner
	inner Completer
}

func (l *limited) Complete(ctx context.Context, c Completion) (Answer, error) {
	if err := l.r.bucket(c.Provider).wait(ctx); err != nil {
		return Answer{}, err
	}
	return l.inner.Complete(ctx, c)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) bucket(provider string) *bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[provider]
	if b == nil {
		l, ok := r.o.RateLimits[provider]
		if !ok {
			l = DefaultRateLimit
		}
		b = &bucket{rate: l.RPS, burst: float64(l.Burst), tokens: float64(l.Burst), last: time.Now()}
		r.buckets[provider] = b
	}
	return b
}

// bucket is a token bucket: rate tokens a second up to burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (b *bucket) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if err := sleepCtx(ctx, need); err != nil {
			return err
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
