// Package incident turns a service name (and later, Alertmanager alerts)
// into a diagnosis: it gathers the service's metrics, error logs and
// Kubernetes state in parallel, each under its own deadline, and writes a
// short deterministic summary with the evidence. A source that is down or
// not configured makes its part say so; the rest still answers.
package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent"
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
}

// Spec implements action.Action.
func (d *Diagnose) Spec() action.Spec {
	s, _ := action.CatalogSpec(action.IncidentDiagnose)
	return s
}

// finding is what one source said.
type finding struct {
	title string
	res   action.Result
	err   error
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
	namespaces := []string{""}
	if d.Inventory != nil {
		if inv, err := d.Inventory.Inventory(ctx); err == nil {
			namespaces = namespaces[:0]
			for _, ns := range inv.Namespaces {
				for _, dep := range inv.Deployments[ns] {
					if dep == service {
						namespaces = append(namespaces, ns)
					}
				}
			}
			if len(namespaces) == 0 {
				namespaces = []string{""}
			}
		}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second
	}
	type job struct {
		title string
		act   action.Action
		p     action.Params
	}
	var jobs []job
	for _, s := range d.Sources {
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
	found := make([]finding, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			jctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res, err := safeRun(jctx, j.act, action.Request{Action: j.act.Spec().Name, Params: j.p, Subject: req.Subject, Groups: req.Groups, Channel: req.Channel, RequestID: req.RequestID})
			if err == nil && jctx.Err() != nil {
				err = jctx.Err()
			}
			found[i] = finding{title: j.title, res: res, err: err}
		})
	}
	wg.Wait()
	return summarise(service, window, found), nil
}

func safeRun(ctx context.Context, a action.Action, r action.Request) (res action.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s panicked: %v", a.Spec().Name, v)
		}
	}()
	return a.Run(ctx, r)
}

// summarise writes the deterministic diagnosis.
func summarise(service, window string, found []finding) action.Result {
	var ok, missing []string
	var fields []chat.Field
	for _, f := range found {
		switch {
		case f.err == nil:
			first, _, _ := strings.Cut(strings.TrimSpace(f.res.Text), "\n")
			fields = append(fields, chat.Field{Label: f.title, Value: first})
			ok = append(ok, f.title)
		case errors.Is(f.err, action.ErrNotConfigured):
			fields = append(fields, chat.Field{Label: f.title, Value: "not configured"})
			missing = append(missing, f.title)
		case errors.Is(f.err, context.DeadlineExceeded):
			fields = append(fields, chat.Field{Label: f.title, Value: "no answer in time"})
			missing = append(missing, f.title)
		default:
			fields = append(fields, chat.Field{Label: f.title, Value: "unavailable: " + firstLine(f.err.Error())})
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
