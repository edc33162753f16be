// Package evaluation implements the evaluation.run and evaluation.status
// actions over internal/evals.
//
// evaluation.run is mutating (it spends model tokens): its Plan names what
// will run and the estimated cost, so the confirmation prompt states it,
// and fingerprints the suite and dataset files, so a suite edited between
// the prompt and the confirmation is not run. Run starts the run in the
// runner (which owns it from then on), keeps one progress message in the
// thread up to date (at most one update every ProgressEvery, plus one per
// 10% of the answers), and waits for the result until shortly before the
// request's deadline: a quick run answers with its result card, a long one
// answers "started" and posts the result into the progress message when it
// ends. evaluation.status shows a run, or the latest run of a suite.
package evaluation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/evals"
)

// Options configure the actions.
type Options struct {
	Runner *evals.Runner // required
	// Wait bounds how long evaluation.run waits for the result before
	// answering "started"; default: until 3s before the request's deadline.
	Wait time.Duration
	// ProgressEvery is the least time between two progress updates
	// (default 2s): the chat adapters pace edits.
	ProgressEvery time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// New returns evaluation.run and evaluation.status.
func New(o Options) (run, status action.Action, err error) {
	if o.Runner == nil {
		return nil, nil, errors.New("evaluation: no runner")
	}
	if o.Wait < 0 || o.ProgressEvery < 0 {
		return nil, nil, errors.New("evaluation: negative wait or progress interval")
	}
	o.ProgressEvery = cmp.Or(o.ProgressEvery, 2*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &runAction{o: o, spec: runSpec()}, &statusAction{o: o, spec: statusSpec()}, nil
}

// Inventory lists the suites and every variant name of an evals folder,
// for the router's inventory (intent.Inventory.EvalSuites, EvalVariants).
func Inventory(dir string) (suites, variants []string, err error) {
	cat, err := evals.LoadCatalog(dir)
	if cat == nil {
		return nil, nil, err
	}
	suites, variants = cat.Names()
	return suites, variants, err
}

type runAction struct {
	o    Options
	spec action.Spec
}

func (a *runAction) Spec() action.Spec { return a.spec }

func request(req action.Request) evals.RunRequest {
	return evals.RunRequest{Suite: req.Params.String("suite"), Variant: req.Params.String("variant"),
		Baseline: req.Params.String("baseline"), RequestedBy: req.Subject, Channel: req.Channel}
}

// Plan says what will run and what it should cost.
func (a *runAction) Plan(_ context.Context, req action.Request) (action.Plan, error) {
	rr := request(req)
	s, ds, v, b, err := a.o.Runner.Prepare(rr)
	if err != nil {
		return action.Plan{}, err
	}
	est := evals.EstimateRun(s, ds, v, b, a.o.Runner.Prices())
	changes := []action.Change{{Field: "suite", After: s.Name}, {Field: "variant", After: v}}
	if v != b {
		changes = append(changes, action.Change{Field: "baseline", After: b})
	}
	changes = append(changes, action.Change{Field: "estimated cost", After: fmt.Sprintf("$%.4f", est.Cost)})
	return action.Plan{
		Target:  s.Name,
		Summary: est.String(),
		Changes: changes,
		State:   "suite:" + s.Hash + " dataset:" + ds.Hash,
	}, nil
}

func (a *runAction) Run(ctx context.Context, req action.Request) (action.Result, error) {
	rr := request(req)
	rep := &reporter{o: a.o, req: req, ctx: context.WithoutCancel(ctx)}
	run, err := a.o.Runner.Start(ctx, rr, rep.progress)
	if err != nil {
		return action.Result{}, fmt.Errorf("start %s: %w", rr.Suite, err)
	}
	rep.start(run)
	wctx, cancel := a.waitContext(ctx)
	defer cancel()
	sum, err := a.o.Runner.Wait(wctx, run.ID)
	if sum == nil && wctx.Err() != nil { // still running: the runner owns it
		rep.handOver(true)
		return action.Result{
			Text: fmt.Sprintf("Eval run %d (%s) started: %d answers to produce. I keep the progress message in this thread up to date and put the result there when it ends. Ask \"status of eval run %d\" any time, or \"cancel eval %d\".",
				run.ID, run.Suite, run.Total, run.ID, run.ID),
			Outcome: map[string]string{"run": strconv.Itoa(run.ID), "status": evals.StatusRunning},
		}, nil
	}
	rep.handOver(false) // the answer is the result itself
	if sum == nil {
		return action.Result{}, fmt.Errorf("eval run %d: %w", run.ID, err)
	}
	res := Card(sum)
	if err != nil {
		res.Text = fmt.Sprintf("Eval run %d ended early (%v). ", run.ID, err) + res.Text
		res.Outcome["status"] = "cancelled"
	}
	return res, nil
}

// waitContext ends shortly before the request's deadline (or after Wait).
func (a *runAction) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.o.Wait > 0 {
		return context.WithTimeout(ctx, a.o.Wait)
	}
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-3*time.Second))
	}
	return context.WithCancel(ctx)
}

// reporter turns runner progress into throttled req.Report updates of
// one message, and the final result once Run has answered "started".
type reporter struct {
	o   Options
	req action.Request
	ctx context.Context // without the request's cancellation: reports outlive Run

	mu       sync.Mutex
	last     time.Time
	lastStep int
	handed   bool // Run returned; the final result goes to the progress message
	final    *evals.Progress
}

func (r *reporter) start(run evals.Run) {
	r.mu.Lock()
	r.last = r.o.Now()
	r.mu.Unlock()
	r.send(fmt.Sprintf("Eval run %d (%s): starting, %d answers to produce.", run.ID, run.Suite, run.Total))
}

func (r *reporter) send(text string) {
	c, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	r.req.Report(c, text)
}

func (r *reporter) progress(p evals.Progress) {
	r.mu.Lock()
	if p.Finished {
		if !r.handed {
			r.final = &p // Run is still deciding; handOver reports it if needed
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.send(finalText(p))
		return
	}
	now := r.o.Now()
	step := p.Done * 10 / max(1, p.Total)
	if now.Sub(r.last) < r.o.ProgressEvery && step == r.lastStep {
		r.mu.Unlock()
		return
	}
	r.last, r.lastStep = now, step
	r.mu.Unlock()
	r.send(p.String())
}

// handOver marks that Run has answered. With report set, a run that
// finished while Run was deciding gets its final text now, and a later
// end is reported when it comes.
func (r *reporter) handOver(report bool) {
	r.mu.Lock()
	r.handed = report
	f := r.final
	r.final = nil
	r.mu.Unlock()
	if report && f != nil {
		r.send(finalText(*f))
	}
}

func finalText(p evals.Progress) string {
	if p.Summary == nil {
		return fmt.Sprintf("Eval run %d (%s) ended: %v", p.RunID, p.Suite, p.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Eval run %d (%s) finished: %s.", p.RunID, p.Suite, p.Summary.Headline())
	if p.Err != nil {
		fmt.Fprintf(&b, " It ended early: %v.", p.Err)
	}
	fmt.Fprintf(&b, " Spend: %s.", p.Summary.SpendLine())
	if p.Summary.HTML != "" {
		fmt.Fprintf(&b, " Report: %s", p.Summary.HTML)
	}
	return b.String()
}

// Card is a finished run's result for the chat: the headline, a table of
// metrics (variant vs baseline, difference, interval, significance), the
// gates, the worst regressions, spend and report links.
func Card(s *evals.Summary) action.Result {
	head, rows := s.MetricRows()
	res := action.Result{
		Text:  fmt.Sprintf("Eval run %d (%s, %d cases): %s.", s.RunID, s.Suite, s.Cases, s.Headline()),
		Table: &chat.Table{Header: head, Rows: rows},
		Outcome: map[string]string{"run": strconv.Itoa(s.RunID), "status": evals.StatusDone,
			"gates": map[bool]string{true: "passed", false: "failed"}[s.GatesPassed], "cost_usd": fmt.Sprintf("%.4f", s.Cost)},
	}
	if g := s.GateLines(); len(g) > 0 {
		res.Fields = append(res.Fields, chat.Field{Label: "Gates", Value: strings.Join(g, "\n")})
	}
	if len(s.Worst) > 0 {
		var lines []string
		for _, w := range s.Worst {
			lines = append(lines, fmt.Sprintf("%s: %s %.3g → %.3g", w.CaseID, w.Metric, w.Baseline, w.Variant))
		}
		res.Fields = append(res.Fields, chat.Field{Label: "Worst regressions", Value: strings.Join(lines, "\n")})
	}
	for v, n := range s.Errors {
		if n > 0 {
			res.Fields = append(res.Fields, chat.Field{Label: "Failed answers (" + v + ")", Value: strconv.Itoa(n)})
		}
	}
	res.Fields = append(res.Fields, chat.Field{Label: "Spend", Value: s.SpendLine()})
	if s.HTML != "" {
		res.Fields = append(res.Fields, chat.Field{Label: "Reports", Value: s.HTML + "\n" + s.CSV})
	}
	return res
}

type statusAction struct {
	o    Options
	spec action.Spec
}

func (a *statusAction) Spec() action.Spec { return a.spec }

func (a *statusAction) Run(ctx context.Context, req action.Request) (action.Result, error) {
	st := a.o.Runner.Store()
	var run evals.Run
	if id, ok := req.Params.Int("run"); ok {
		r, err := st.GetRun(ctx, id)
		if err != nil {
			return action.Result{}, err
		}
		run = r
	} else {
		suite := req.Params.String("suite")
		runs, err := st.ListRuns(ctx, suite, 1)
		if err != nil {
			return action.Result{}, fmt.Errorf("%w: %w", action.ErrUnavailable, err)
		}
		if len(runs) == 0 {
			if suite != "" {
				return action.Result{}, fmt.Errorf("%w: suite %s has no evaluation runs yet", action.ErrNotFound, suite)
			}
			return action.Result{}, fmt.Errorf("%w: there are no evaluation runs yet", action.ErrNotFound)
		}
		run = runs[0]
	}
	out := map[string]string{"run": strconv.Itoa(run.ID), "status": run.Status}
	switch run.Status {
	case evals.StatusDone:
		return Card(run.Summary), nil
	case evals.StatusRunning:
		return action.Result{Text: fmt.Sprintf("Eval run %d (%s, %s vs %s) is running: %d of %d answers so far, started %s by %s.",
			run.ID, run.Suite, run.Variant, run.Baseline, run.Done, run.Total, run.Created.Format("15:04 MST"), run.RequestedBy), Outcome: out}, nil
	default:
		text := fmt.Sprintf("Eval run %d (%s) is %s", run.ID, run.Suite, run.Status)
		if run.Error != "" {
			text += ": " + run.Error
		}
		res := action.Result{Text: text + ".", Outcome: out}
		if run.Summary != nil {
			card := Card(run.Summary)
			res.Table, res.Fields = card.Table, card.Fields
			res.Text += " Results of the answers it had: " + run.Summary.Headline() + "."
		}
		return res, nil
	}
}
