// Diagnosis: the incident.diagnose action gathers a service's metrics,
// error logs and Kubernetes state in parallel, each under its own
// deadline, and writes a short deterministic summary with the evidence. A
// source that is down or not configured makes its part say so; the rest
// still answers. With a Summarizer, a model writes the text from the same
// evidence, citing the ids of the numbers and log lines it used; when it
// fails or is late the deterministic summary stands and the reply says so.
// The incident channels (manager.go) gather the same way.

package incident

import (
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
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/llm"
)

// Source is one read action the diagnosis consults, with the parameters to
// call it with for a service.
type Source struct {
	Title  string // "Error rate", "Kubernetes state"
	Action action.Action
	// Params builds the call for a service, a namespace (may be empty) and
	// a window; ok=false skips the source.
	Params func(service, namespace, window string) (p action.Params, ok bool)
}

// Diagnose is the incident.diagnose action.
type Diagnose struct {
	Sources   []Source
	Inventory intent.InventorySource // to find the namespaces a service runs in; may be nil
	Timeout   time.Duration          // per source (default 8s)

	// Summarizer, when set, writes the reply's text from the gathered
	// evidence; the deterministic headlines stay as the fields. nil: the
	// deterministic summary.
	Summarizer     Summarizer
	SummaryTimeout time.Duration       // the model's summary (default 15s)
	Redact         func(string) string // cleans evidence and model text (default redact.Redact)
	Logger         *slog.Logger        // may be nil
}

// DefaultDiagnoseSummaryTimeout is how long incident.diagnose waits for the
// model's summary before it answers with the deterministic one.
const DefaultDiagnoseSummaryTimeout = 15 * time.Second

// Spec implements action.Action.
func (d *Diagnose) Spec() action.Spec { return diagnoseSpec() }

// finding is what one source said.
type finding struct {
	title  string
	action string        // the action consulted
	params action.Params // what it was asked
	res    action.Result
	err    error
}

// Run implements action.Action.
func (d *Diagnose) Run(ctx context.Context, req action.Request) (action.Result, error) {
	service := req.Params.String("service")
	if service == "" {
		return action.Result{}, fmt.Errorf("%w: which service? say for example \"what's wrong with checkout\"", action.ErrInvalid)
	}
	window := req.Params.String("window")
	if window == "" {
		window = "1h"
	}
	found := runJobs(ctx, planJobs(d.Sources, service, d.namespaces(ctx, service), window), d.timeout(), req, nil)
	res := summarise(service, window, found)
	if d.Summarizer != nil {
		d.summarizeWithModel(ctx, &res, service, window, req.Channel, found)
	}
	return res, nil
}

// summarizeWithModel replaces res's text with the model's summary of the
// evidence, listed with the ids it cites as res.Code, and records the
// model's use in res.Outcome. When the model fails, res keeps the
// deterministic text with a note saying so.
func (d *Diagnose) summarizeWithModel(ctx context.Context, res *action.Result, service, window, channel string, found []finding) {
	red := d.Redact
	if red == nil {
		red = redactText
	}
	e := &evidence{Service: service}
	for _, f := range found {
		e.add(f, red)
	}
	ev := e.forModel("diagnosis of "+service, window, channel)
	if len(ev.Metrics)+len(ev.Logs)+len(ev.Kube) == 0 {
		res.Outcome["summary"] = "deterministic" // nothing for a model to read
		return
	}
	timeout := d.SummaryTimeout
	if timeout <= 0 {
		timeout = DefaultDiagnoseSummaryTimeout
	}
	text, usage, err := modelSummary(ctx, d.Summarizer, timeout, ev, red)
	if usage.Attempts > 0 || usage.TotalTokens() > 0 {
		res.Outcome["llm_tokens"] = fmt.Sprintf("%d+%d", usage.PromptTokens, usage.CompletionTokens)
		if usage.Estimated {
			res.Outcome["llm_tokens_estimated"] = "true"
		}
		res.Outcome["llm_cost_usd"] = fmt.Sprintf("%.6f", usage.Cost)
	}
	if usage.Model != "" {
		res.Outcome["llm_model"] = usage.Model
	}
	if err != nil {
		why := "the model failed"
		res.Outcome["llm_error"] = "error"
		if errors.Is(err, context.DeadlineExceeded) {
			why = "the model did not answer in time"
			res.Outcome["llm_error"] = "timeout"
		}
		if d.Logger != nil {
			d.Logger.Warn("model summary failed; using the deterministic one", "action", action.IncidentDiagnose, "service", service, "err", err)
		}
		res.Outcome["summary"] = "deterministic"
		res.Text += "\nModel summary unavailable (" + why + "); this is the deterministic summary."
		return
	}
	model := "a model"
	if usage.Model != "" {
		model = "the model " + usage.Model
	}
	res.Outcome["summary"] = "model"
	res.Text = fmt.Sprintf("Diagnosis of %s (last %s): %s\nWritten by %s from the evidence below; the ids in brackets refer to it.", service, window, text, model)
	res.Code = evidenceList(ev)
}

// evidenceList lists the evidence with the ids the Summarizer gives it
// (M, L, K and R, each numbered from 1 in order), so a reader can check
// every citation. Diagnose gathers far fewer items than the Summarizer's
// bounds, so every id listed is one the model saw.
func evidenceList(ev llm.Evidence) string {
	var lines []string
	for i, m := range ev.Metrics {
		lines = append(lines, fmt.Sprintf("M%d %s = %s", i+1, m.Name, metricText(m)))
	}
	for i, l := range ev.Logs {
		lines = append(lines, fmt.Sprintf("L%d %s", i+1, l.Text))
	}
	for i, k := range ev.Kube {
		lines = append(lines, fmt.Sprintf("K%d %s: %s", i+1, k.Subject, k.Text))
	}
	for i, r := range ev.Rollouts {
		lines = append(lines, fmt.Sprintf("R%d %s: %s", i+1, r.Subject, r.Text))
	}
	return strings.Join(lines, "\n")
}

// metricText is a metric as people read it: 5.0%, 475 ms, 12.5 req/s.
func metricText(m llm.Metric) string {
	switch m.Unit {
	case "ratio":
		return strconv.FormatFloat(m.Value*100, 'f', 1, 64) + "%"
	case "seconds":
		return formatSeconds(m.Value)
	case "":
		return strconv.FormatFloat(m.Value, 'g', -1, 64)
	}
	return strconv.FormatFloat(m.Value, 'g', -1, 64) + " " + m.Unit
}

// namespaces are the namespaces the inventory knows service in, or [""]
// when it knows none (or there is no inventory).
func (d *Diagnose) namespaces(ctx context.Context, service string) []string {
	if d.Inventory == nil {
		return []string{""}
	}
	inv, err := d.Inventory.Inventory(ctx)
	if err != nil {
		return []string{""}
	}
	var out []string
	for _, ns := range inv.Namespaces {
		for _, dep := range inv.Deployments[ns] {
			if dep == service {
				out = append(out, ns)
			}
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

func (d *Diagnose) timeout() time.Duration {
	if d.Timeout <= 0 {
		return 8 * time.Second
	}
	return d.Timeout
}

// job is one source call for one service (and namespace).
type job struct {
	title  string
	act    action.Action
	params action.Params
}

// planJobs lists the source calls for a service: one per namespace for a
// source that takes one, one in all for a source that does not.
func planJobs(sources []Source, service string, namespaces []string, window string) []job {
	var jobs []job
	for _, s := range sources {
		if s.Action == nil || s.Params == nil {
			continue
		}
		for _, ns := range namespaces {
			p, ok := s.Params(service, ns, window)
			if !ok {
				continue
			}
			_, usesNS := p["namespace"]
			title := s.Title
			if usesNS && len(namespaces) > 1 {
				title += " (" + ns + ")"
			}
			jobs = append(jobs, job{title, s.Action, p})
			if !usesNS {
				break // one call covers every namespace
			}
		}
	}
	return jobs
}

// runJobs runs the calls in parallel, each under its own timeout, and
// returns what each said, in order. done, when set, is called as each one
// answers (from that call's goroutine), so a caller can show evidence as
// it arrives.
func runJobs(ctx context.Context, jobs []job, timeout time.Duration, req action.Request, done func(finding)) []finding {
	found := make([]finding, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			jctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res, err := safeRun(jctx, j.act, action.Request{Action: j.act.Spec().Name, Params: j.params, Subject: req.Subject, Groups: req.Groups, Channel: req.Channel, RequestID: req.RequestID})
			if err == nil && jctx.Err() != nil {
				err = jctx.Err()
			}
			found[i] = finding{title: j.title, action: j.act.Spec().Name, params: j.params, res: res, err: err}
			if done != nil {
				done(found[i])
			}
		})
	}
	wg.Wait()
	return found
}

func safeRun(ctx context.Context, a action.Action, r action.Request) (res action.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s panicked: %v", a.Spec().Name, v)
		}
	}()
	return a.Run(ctx, r)
}

// headline is the one-line field a finding contributes to a summary, and
// whether the source answered.
func (f finding) headline() (chat.Field, bool) {
	switch {
	case f.err == nil:
		first, _, _ := strings.Cut(strings.TrimSpace(f.res.Text), "\n")
		return chat.Field{Label: f.title, Value: first}, true
	case errors.Is(f.err, action.ErrNotConfigured):
		return chat.Field{Label: f.title, Value: "not configured"}, false
	case errors.Is(f.err, context.DeadlineExceeded):
		return chat.Field{Label: f.title, Value: "no answer in time"}, false
	default:
		return chat.Field{Label: f.title, Value: "unavailable: " + firstLine(f.err.Error())}, false
	}
}

// summarise writes the deterministic diagnosis.
func summarise(service, window string, found []finding) action.Result {
	var ok, missing []string
	var fields []chat.Field
	for _, f := range found {
		fl, answered := f.headline()
		fields = append(fields, fl)
		if answered {
			ok = append(ok, f.title)
		} else {
			missing = append(missing, f.title)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Diagnosis of %s (last %s): ", service, window)
	if len(ok) == 0 {
		b.WriteString("no source answered, so I cannot say anything about it yet.")
	} else {
		b.WriteString(signals(found))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, " Not available: %s.", strings.Join(missing, ", "))
	}
	return action.Result{Text: b.String(), Fields: fields, Outcome: map[string]string{"sources_ok": fmt.Sprint(len(ok)), "sources_missing": fmt.Sprint(len(missing))}}
}

// signals points at what looks wrong in the evidence: unready replicas,
// restarts, warning events.
func signals(found []finding) string {
	var out []string
	for _, f := range found {
		if f.err != nil {
			continue
		}
		for _, fl := range f.res.Fields {
			v := strings.ToLower(fl.Value)
			l := strings.ToLower(fl.Label)
			switch {
			case strings.Contains(l, "restart") && !strings.HasPrefix(v, "0"):
				out = append(out, f.title+": restarts "+fl.Value)
			case strings.Contains(l, "warning") && v != "" && v != "none":
				out = append(out, f.title+": "+firstLine(fl.Value))
			}
		}
		first := strings.ToLower(firstLine(f.res.Text))
		if strings.Contains(first, "ready") {
			var ready, want int
			if i := strings.Index(first, "/"); i > 0 {
				fmt.Sscanf(lastWord(first[:i]), "%d", &ready)
				fmt.Sscanf(first[i+1:], "%d", &want)
				if want > 0 && ready < want {
					out = append(out, fmt.Sprintf("%s: only %d of %d replicas ready", f.title, ready, want))
				}
			}
		}
	}
	if len(out) == 0 {
		return "Nothing in the gathered evidence stands out."
	}
	return "Worth a look: " + strings.Join(out, "; ") + "."
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
