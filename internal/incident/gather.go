package incident

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/redact"
)

// Summarizer writes a diagnosis from gathered evidence; *llm.Summarizer
// implements it.
type Summarizer interface {
	Summarize(ctx context.Context, ev llm.Evidence) (string, llmcost.Usage, error)
}

// Rollout is one revision of a deployment (a ReplicaSet).
type Rollout struct {
	Revision int64
	Created  time.Time
	Image    string
}

// RolloutLister lists a deployment's revisions, newest first.
// KubeRollouts implements it with client-go.
type RolloutLister interface {
	Rollouts(ctx context.Context, namespace, deployment string) ([]Rollout, error)
}

// evidence is what the sources said about a group, in a form that renders
// the same after a restart.
type evidence struct {
	Service   string     `json:"service,omitempty"`
	Namespace string     `json:"namespace,omitempty"`
	Items     []item     `json:"items,omitempty"`   // one per source call, in plan order
	Logs      []string   `json:"logs,omitempty"`    // top error lines, redacted
	Metrics   []metric   `json:"metrics,omitempty"` // numbers, for the model
	Kube      []fact     `json:"kube,omitempty"`    // Kubernetes state, for the model
	Desired   int        `json:"desired,omitempty"` // replicas the deployment wants (0: unknown)
	Rollout   *rolloutEv `json:"rollout,omitempty"` // a rollout shortly before the alert
	Signals   string     `json:"signals,omitempty"` // what stands out, deterministic
	Diagnosis string     `json:"diagnosis,omitempty"`
	ByModel   bool       `json:"by_model,omitempty"` // Diagnosis was written by the model
	Done      bool       `json:"done,omitempty"`     // every source answered or gave up
	Note      string     `json:"note,omitempty"`     // why nothing was gathered
}

type item struct {
	Title  string `json:"title"`
	Value  string `json:"value"`
	Action string `json:"action,omitempty"`
	Done   bool   `json:"done,omitempty"`
}

type metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

type fact struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

type rolloutEv struct {
	Deployment string    `json:"deployment"`
	Namespace  string    `json:"namespace"`
	Revision   int64     `json:"revision"`
	Previous   int64     `json:"previous,omitempty"` // 0: no earlier revision kept
	Created    time.Time `json:"created"`
	Image      string    `json:"image,omitempty"`
	// PreviousImage is the image of the revision before ("" when none
	// is kept): the same image means the revision was a restart.
	PreviousImage string `json:"previous_image,omitempty"`
	Before        string `json:"before"` // "12m" before the alert
}

// restart reports whether the revision only restarted the pods: the
// image is the one of the revision before (kubectl rollout restart).
func (r *rolloutEv) restart() bool {
	return r.Previous > 0 && r.PreviousImage != "" && r.PreviousImage == r.Image
}

// describe is the change as evidence: what happened and when, relative
// to the alert ("a restart of checkout (revision 7, image unchanged) 4m
// before the alert started"), never a verdict on the cause.
func (r *rolloutEv) describe() string {
	if r.restart() {
		return fmt.Sprintf("a restart of %s (revision %d, image %s unchanged) %s before the alert started", r.Deployment, r.Revision, r.Image, r.Before)
	}
	s := fmt.Sprintf("a rollout of %s to revision %d", r.Deployment, r.Revision)
	switch {
	case r.Image != "" && r.PreviousImage != "" && r.PreviousImage != r.Image:
		s += fmt.Sprintf(" (image %s, was %s)", r.Image, r.PreviousImage)
	case r.Image != "":
		s += fmt.Sprintf(" (%s)", r.Image)
	}
	return s + " " + r.Before + " before the alert started"
}

func (e *evidence) clone() *evidence {
	if e == nil {
		return nil
	}
	c := *e
	c.Items = slices.Clone(e.Items)
	c.Logs = slices.Clone(e.Logs)
	c.Metrics = slices.Clone(e.Metrics)
	c.Kube = slices.Clone(e.Kube)
	if e.Rollout != nil {
		r := *e.Rollout
		c.Rollout = &r
	}
	return &c
}

// target is what a group is about, from its labels.
type target struct {
	service, namespace, alertname, summary string
	startsAt                               time.Time
}

// serviceLabels name the service, most specific first.
var serviceLabels = []string{"service", "app", "deployment", "job"}

func targetOf(s snapshot) target {
	var t target
	pick := func(labels map[string]string) {
		if t.service == "" {
			for _, l := range serviceLabels {
				if v := labels[l]; v != "" {
					t.service = v
					break
				}
			}
		}
		if t.namespace == "" {
			t.namespace = labels["namespace"]
		}
	}
	pick(s.CommonLabels)
	pick(s.GroupLabels)
	for _, a := range s.Alerts {
		if a.Status == Firing {
			pick(a.Labels)
		}
	}
	for _, a := range s.Alerts {
		pick(a.Labels)
		if t.startsAt.IsZero() || a.StartsAt.Before(t.startsAt) {
			t.startsAt = a.StartsAt
		}
	}
	t.alertname = s.CommonLabels["alertname"]
	if t.alertname == "" && len(s.Alerts) > 0 {
		t.alertname = s.Alerts[0].name()
	}
	t.summary = s.CommonAnnotations["summary"]
	if t.summary == "" && len(s.Alerts) > 0 {
		t.summary = s.Alerts[0].Annotations["summary"]
	}
	return t
}

// validName is what a service or namespace taken from a label may be
// before it is handed to an action.
var validName = regexp.MustCompile(`^[a-zA-Z0-9_.:-]{1,100}$`)

// gather consults the sources for a group and reports each piece of
// evidence through update as it arrives; it returns when every source has
// answered or given up and the diagnosis is written.
func (m *Manager) gather(ctx context.Context, t target, channel, requestID string, update func(func(*evidence)), images func([]chat.Image)) {
	if t.service == "" || !validName.MatchString(t.service) {
		update(func(e *evidence) {
			e.Done, e.Note = true, "No service label (service, app, deployment or job) on the alerts, so nothing was gathered."
		})
		return
	}
	if t.namespace != "" && !validName.MatchString(t.namespace) {
		t.namespace = ""
	}
	namespaces := []string{t.namespace}
	if t.namespace == "" {
		namespaces = (&Diagnose{Inventory: m.o.Inventory}).namespaces(ctx, t.service)
	}
	jobs := planJobs(m.o.Sources, t.service, namespaces, m.o.Window)
	update(func(e *evidence) {
		e.Service, e.Namespace = t.service, t.namespace
		if e.Namespace == "" && len(namespaces) == 1 {
			e.Namespace = namespaces[0]
		}
		for _, j := range jobs {
			e.Items = append(e.Items, item{Title: j.title, Value: "…", Action: j.act.Spec().Name})
		}
	})
	req := action.Request{Subject: "parley", Channel: channel, RequestID: requestID}
	var wg sync.WaitGroup
	var (
		mu    sync.Mutex
		found []finding
	)
	wg.Go(func() {
		runJobs(ctx, jobs, m.o.SourceTimeout, req, func(f finding) {
			mu.Lock()
			found = append(found, f)
			mu.Unlock()
			update(func(e *evidence) { e.add(f, m.redact) })
			if f.err == nil && len(f.res.Images) > 0 && f.action == action.PrometheusQuery && f.params.String("metric") == "error_rate" {
				images(f.res.Images[:1])
			}
		})
	})
	if m.o.Rollouts != nil {
		for _, ns := range namespaces {
			if ns == "" {
				continue
			}
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, m.o.SourceTimeout)
				defer cancel()
				r, err := m.recentRollout(rctx, ns, t)
				if err != nil {
					m.log.Debug("rollout history unavailable", "service", t.service, "namespace", ns, "err", err)
					return
				}
				if r != nil {
					update(func(e *evidence) {
						if e.Rollout == nil || r.Created.After(e.Rollout.Created) {
							e.Rollout = r
						}
					})
				}
			})
		}
	}
	wg.Wait()

	var ev *evidence
	update(func(e *evidence) {
		e.Signals = signals(found)
		ev = e.clone()
	})
	text, byModel := m.diagnose(ctx, t, channel, ev)
	update(func(e *evidence) { e.Diagnosis, e.ByModel, e.Done = text, byModel, true })
}

// recentRollout finds the newest revision created within RolloutWindow
// before the alert started (or shortly after: clocks differ).
func (m *Manager) recentRollout(ctx context.Context, ns string, t target) (*rolloutEv, error) {
	revs, err := m.o.Rollouts.Rollouts(ctx, ns, t.service)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(revs, func(a, b Rollout) int { return int(b.Revision - a.Revision) })
	for i, r := range revs {
		if r.Created.After(t.startsAt.Add(2*time.Minute)) || r.Created.Before(t.startsAt.Add(-m.o.RolloutWindow)) {
			continue
		}
		ev := &rolloutEv{Deployment: t.service, Namespace: ns, Revision: r.Revision, Created: r.Created.UTC(), Image: r.Image,
			Before: action.FormatDuration(max(t.startsAt.Sub(r.Created), 0).Round(time.Minute))}
		if i+1 < len(revs) {
			ev.Previous, ev.PreviousImage = revs[i+1].Revision, revs[i+1].Image
		}
		return ev, nil
	}
	return nil, nil
}

// add records what one source said.
func (e *evidence) add(f finding, red func(string) string) {
	fl, _ := f.headline()
	for i := range e.Items {
		if e.Items[i].Title == f.title && !e.Items[i].Done {
			e.Items[i].Value, e.Items[i].Done = red(clip(fl.Value, 300)), true
			break
		}
	}
	if f.err != nil {
		return
	}
	switch f.action {
	case action.PrometheusQuery:
		name := f.params.String("metric")
		if v, unit, ok := parseValue(f.res.Outcome["value"]); ok {
			e.Metrics = append(e.Metrics, metric{Name: name, Value: v, Unit: unit})
		}
	case action.LokiQuery:
		if f.res.Table == nil {
			return
		}
		for _, row := range f.res.Table.Rows {
			if len(e.Logs) == maxLogLines {
				break
			}
			e.Logs = append(e.Logs, red(clip(strings.Join(row, "  "), 300)))
		}
	case action.KubernetesStatus:
		first := firstLine(strings.TrimSpace(f.res.Text))
		subject := "deployment/" + f.params.String("deployment") + " (" + f.params.String("namespace") + ")"
		e.Kube = append(e.Kube, fact{Subject: subject, Text: red(clip(first, 300))})
		for _, fl := range f.res.Fields {
			switch fl.Label {
			case "Desired":
				if n, err := strconv.Atoi(fl.Value); err == nil && e.Desired == 0 {
					e.Desired = n
				}
			case "Pod restarts":
				e.Kube = append(e.Kube, fact{Subject: subject + " restarts", Text: red(clip(fl.Value, 200))})
			}
		}
	}
}

// maxLogLines is how many error log lines the message shows.
const maxLogLines = 3

// parseValue reads a value as prometheus.query formats it ("5.0%",
// "475 ms", "1.20 s", "12.5 req/s", "0.25 cores") back into a number.
func parseValue(s string) (v float64, unit string, ok bool) {
	s = strings.TrimSpace(s)
	num, suffix := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == '-' || r == 'e' || r == '+') }); i >= 0 {
		num, suffix = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) {
		return 0, "", false
	}
	switch suffix {
	case "%":
		return f / 100, "ratio", true
	case "ms":
		return f / 1000, "seconds", true
	case "s":
		return f, "seconds", true
	case "req/s":
		return f, "req/s", true
	case "cores":
		return f, "cores", true
	case "":
		return f, "", true
	}
	return f, suffix, true
}

// diagnose writes the diagnosis: the model's, grounded in the evidence,
// when a Summarizer is configured and answers; the deterministic one
// otherwise.
func (m *Manager) diagnose(ctx context.Context, t target, channel string, e *evidence) (string, bool) {
	if m.o.Summarizer != nil {
		ev := e.forModel(strings.TrimSpace(t.alertname+" "+t.service+": "+t.summary), m.o.Window, channel)
		text, _, err := modelSummary(ctx, m.o.Summarizer, m.o.SummaryTimeout, ev, m.redact)
		if err == nil {
			return text, true
		}
		m.log.Warn("model summary failed; using the deterministic one", "service", t.service, "err", err)
	}
	return deterministic(t, e), false
}

// forModel is the evidence as a Summarizer takes it. Its text was redacted
// as it was added; the Summarizer numbers the items (M1, L1, K1, R1 in
// this order) for the model to cite.
func (e *evidence) forModel(title, window, channel string) llm.Evidence {
	ev := llm.Evidence{Title: title, Service: e.Service, Window: window, Channel: channel}
	for _, x := range e.Metrics {
		ev.Metrics = append(ev.Metrics, llm.Metric{Name: x.Name, Value: x.Value, Unit: x.Unit})
	}
	for _, l := range e.Logs {
		ev.Logs = append(ev.Logs, llm.LogLine{Text: l})
	}
	for _, k := range e.Kube {
		ev.Kube = append(ev.Kube, llm.Fact{Subject: k.Subject, Text: k.Text})
	}
	if r := e.Rollout; r != nil {
		ev.Rollouts = append(ev.Rollouts, llm.Fact{Subject: fmt.Sprintf("%s rev %d", r.Deployment, r.Revision),
			Text: fmt.Sprintf("image %s at %s, %s before the alert", r.Image, r.Created.Format("15:04 UTC"), r.Before)})
	}
	return ev
}

// modelSummary asks s to summarise ev under its own deadline. The text is
// trimmed, clipped and redacted; an empty answer is an error. Usage is
// what the Summarizer reported, failed calls included.
func modelSummary(ctx context.Context, s Summarizer, timeout time.Duration, ev llm.Evidence, red func(string) string) (string, llmcost.Usage, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	text, usage, err := s.Summarize(sctx, ev)
	if err != nil {
		if cerr := sctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err) // so a caller can tell a timeout
		}
		return "", usage, err
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", usage, errors.New("the model returned an empty summary")
	}
	return red(clip(text, maxSummaryBytes)), usage, nil
}

// maxSummaryBytes bounds a model-written diagnosis.
const maxSummaryBytes = 1500

// deterministic is the template diagnosis.
func deterministic(t target, e *evidence) string {
	var parts []string
	value := func(name string) float64 {
		for _, x := range e.Metrics {
			if x.Name == name {
				return x.Value
			}
		}
		return 0
	}
	if v := value("error_rate"); v > 0 {
		parts = append(parts, fmt.Sprintf("%s is failing %s of requests", t.service, strconv.FormatFloat(v*100, 'f', 1, 64)+"%"))
	}
	if v := value("latency_p99"); v > 0 {
		parts = append(parts, fmt.Sprintf("p99 latency is %s", formatSeconds(v)))
	}
	var b strings.Builder
	if len(parts) > 0 {
		b.WriteString(upperFirst(strings.Join(parts, "; ")) + ". ")
	}
	if r := e.Rollout; r != nil {
		b.WriteString("Changed shortly before: " + r.describe())
		if r.Previous > 0 && !r.restart() {
			fmt.Fprintf(&b, "; rolling back to revision %d is offered below", r.Previous)
		}
		b.WriteString(". ")
	}
	if e.Signals != "" {
		b.WriteString(e.Signals)
		b.WriteString(" ")
	}
	if len(e.Logs) > 0 {
		b.WriteString("Newest error log line: " + e.Logs[0] + ".")
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "No source gave evidence beyond the alert itself."
	}
	return out
}

func formatSeconds(v float64) string {
	if v >= 1 {
		return strconv.FormatFloat(v, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(v*1000, 'f', 0, 64) + " ms"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// saturation names alerts about load rather than failure.
var saturation = regexp.MustCompile(`(?i)saturat|cpu|throttl|overload|memory|queue|latency|slow|load`)

// suggestion is one next step offered as a button.
type suggestion struct {
	Label  string
	Action string
	Params action.Params
}

// key identifies a suggestion for auditing it once.
func (s suggestion) key() string { return s.Action + " " + s.Params.Canonical() }

// suggestions are the next steps the evidence supports, each offered only
// when its backend is configured: "Show error logs" with a log store
// (Loki), "Show pod logs" without one when the pods are known (podLogs,
// the kubernetes.logs spec), a rollback only of a rollout that changed
// the image (rolling back a restart would only restart again).
func suggestions(t target, e *evidence, hasLogs bool, window string, podLogs *action.Spec) []suggestion {
	if e == nil || e.Service == "" {
		return nil
	}
	var out []suggestion
	if r := e.Rollout; r != nil && r.Previous > 0 && !r.restart() {
		out = append(out, suggestion{
			Label:  fmt.Sprintf("Roll back %s to revision %d", r.Deployment, r.Previous),
			Action: action.KubernetesRollback,
			Params: action.Params{"deployment": r.Deployment, "namespace": r.Namespace, "revision": int(r.Previous)},
		})
	}
	if e.Desired > 0 && e.Namespace != "" && saturation.MatchString(t.alertname+" "+t.summary) {
		n := e.Desired + max(1, e.Desired/2)
		out = append(out, suggestion{
			Label:  fmt.Sprintf("Scale %s to %d", e.Service, n),
			Action: action.KubernetesScale,
			Params: action.Params{"deployment": e.Service, "namespace": e.Namespace, "replicas": n},
		})
	}
	switch {
	case hasLogs:
		out = append(out, suggestion{
			Label:  "Show error logs",
			Action: action.LokiQuery,
			Params: action.Params{"service": e.Service, "level": "error", "window": window},
		})
	case podLogs != nil && e.Namespace != "":
		if p, err := podLogs.Validate(action.Params{"deployment": e.Service, "namespace": e.Namespace}); err == nil {
			out = append(out, suggestion{Label: "Show pod logs", Action: podLogs.Name, Params: p})
		}
	}
	return out
}

// redactText is the default redaction of evidence text.
func redactText(s string) string { return redact.Redact(s) }
