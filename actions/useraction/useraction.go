// Package useraction loads the actions operators define themselves: YAML
// files, one action a file, in the folder named by actions_dir in the
// configuration (or --actions DIR). Each file gives the action's name,
// summary, kind, typed parameters and examples, exactly one runner (http
// or kubernetes_job) and an optional reply template. A loaded action is an
// ordinary action.Action: it passes the same typed validation, policy,
// confirmation and audit path as a built-in, and help, the LLM tools, the
// routers and the evaluations see its spec.
//
// Loading is strict: unknown keys, wrong types, a clash with a built-in
// or another file, a bad name, an unknown parameter type, inconsistent
// constraints, a template that does not parse, no runner or two, a Job
// template that is not a Job, a path leaving the folder or a missing
// secret are errors naming file:line, and nothing loads. Parameter values
// never become code: in a URL they are escaped for where they stand, in a
// JSON body they are JSON-encoded strings, and a Job gets them only as
// environment variables PARLEY_PARAM_<NAME>.
package useraction

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// Options configure loading.
type Options struct {
	// Builtins are the names of the built-in actions: a file may not take
	// one of them.
	Builtins []string
	// Getenv resolves {secret: {env: VAR}} when the files load; nil means
	// os.Getenv.
	Getenv func(string) string
	// NoSecrets loads without reading any secret, for commands that never
	// run an action (classify, eval routing, policy check): references are
	// checked for shape only, and the HTTP actions refuse to run.
	NoSecrets bool
	// Kube gives the Kubernetes client per requester for kubernetes_job
	// actions; nil loads them but they answer "not configured" when run.
	Kube KubeClients
	// RootCAs are the roots trusted for https; nil means the system's
	// (SSL_CERT_FILE and SSL_CERT_DIR apply). Verification is never off.
	RootCAs *x509.CertPool
	// UserAgent of HTTP requests; empty means "parley".
	UserAgent string
	// PollInterval between checks of a running Job; zero means 1s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

func (o *Options) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// Action is one user-defined action. It implements action.Action,
// action.Planner (the confirmation prompt shows exactly what will be sent
// or started) and action.LongRunning.
type Action struct {
	spec   action.Spec
	file   string
	digest string // of the action file and its Job template
	http   *httpRunner
	job    *jobRunner
	reply  *template.Template // nil: a default reply
	ua     string
	log    *slog.Logger
}

// Spec implements action.Action.
func (a *Action) Spec() action.Spec { return a.spec }

// File is the action file the action was loaded from.
func (a *Action) File() string { return a.file }

// Runner is "http" or "kubernetes_job".
func (a *Action) Runner() string {
	if a.job != nil {
		return "kubernetes_job"
	}
	return "http"
}

// RunTimeout implements action.LongRunning: the runner's timeout and
// time for the calls around it.
func (a *Action) RunTimeout() time.Duration {
	if a.job != nil {
		return a.job.timeout + 3*jobCleanup
	}
	return a.http.timeout + 5*time.Second
}

// templateData is what URL, body and reply templates see: every declared
// parameter (absent ones as ""), so {{ if .path }} works for an optional one.
func (a *Action) templateData(p action.Params) map[string]any {
	data := make(map[string]any, len(a.spec.Params)+1)
	for _, sp := range a.spec.Params {
		if v, ok := p[sp.Name]; ok {
			data[sp.Name] = v
		} else {
			data[sp.Name] = ""
		}
	}
	return data
}

// Plan implements action.Planner: the exact request that will be sent
// (secrets as <secret>), or the Job that will be started, checked with a
// server-side dry run. The state is a fingerprint of the action file and
// of what would be sent: if the file changes between the request and the
// confirmation, the confirmation is refused.
func (a *Action) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	var summary, target string
	var changes []action.Change
	if a.http != nil {
		r, err := a.http.render(req.Params, a.templateData(req.Params))
		if err != nil {
			return action.Plan{}, fmt.Errorf("%w: %v", action.ErrInvalid, err)
		}
		summary, target = "send "+r.String(), a.http.url.base.Host
		changes = append(changes, action.Change{Field: "request", After: r.String()})
	} else {
		s, err := a.job.plan(ctx, a.spec, req.Params, req)
		if err != nil {
			return action.Plan{}, err
		}
		summary, target = s, a.job.namespace
		changes = append(changes, action.Change{Field: "job", After: s})
	}
	sum := sha256.Sum256([]byte(a.digest + "\x00" + summary + "\x00" + req.Params.Canonical()))
	return action.Plan{Target: target, Summary: summary, Changes: changes, State: hex.EncodeToString(sum[:8])}, nil
}

// Run implements action.Action.
func (a *Action) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if a.http != nil {
		return a.runHTTP(ctx, req)
	}
	return a.runJob(ctx, req)
}

func (a *Action) runHTTP(ctx context.Context, req action.Request) (action.Result, error) {
	data := a.templateData(req.Params)
	r, err := a.http.render(req.Params, data)
	if err != nil {
		return action.Result{}, fmt.Errorf("%w: %v", action.ErrInvalid, err)
	}
	resp, err := a.http.send(ctx, r, req.RequestID, a.ua)
	if err != nil {
		return action.Result{}, err
	}
	outcome := map[string]string{"request": r.method + " " + r.url, "status": strconv.Itoa(resp.status)}
	if !a.http.expected(resp.status) {
		return action.Result{Outcome: outcome}, a.http.failure(r, resp)
	}
	var text string
	if a.reply != nil {
		data["response"] = resp.value()
		// A server that echoes the request puts the secret within reach of
		// the template: it never reaches the chat.
		text = scrub(a.replyText(data), resp.secrets)
	} else {
		text = fmt.Sprintf("%s: %s %s answered %s.", a.spec.Name, r.method, r.url, resp.statusText)
	}
	if resp.truncated {
		text += fmt.Sprintf(" (The answer was longer than %d bytes; only its start was read.)", MaxResponse)
	}
	return action.Result{Text: text, Outcome: outcome}, nil
}

func (a *Action) runJob(ctx context.Context, req action.Request) (action.Result, error) {
	res, err := a.job.run(ctx, a.spec, req.Params, req)
	outcome := map[string]string{"job": res.name}
	if err != nil {
		return action.Result{Outcome: outcome}, err
	}
	outcome["status"], outcome["took"] = "succeeded", res.took.String()
	var text string
	var code string
	if a.reply != nil {
		data := a.templateData(req.Params)
		data["response"] = logValue(res.log.text())
		text = a.replyText(data)
	} else {
		text = fmt.Sprintf("Job %s succeeded in %s", res.name, res.took)
		if len(res.log.lines) > 0 {
			text += ". " + logsHeading(res.log) + ":"
			code = res.log.text()
		} else {
			text += logsSuffix(res) + "."
		}
	}
	return action.Result{Text: text, Code: code, Outcome: outcome}, nil
}

// logValue is a Job's log tail as the reply sees it: parsed JSON when the
// whole tail is JSON (a runbook that prints one JSON summary), else text.
func logValue(logs string) any {
	r := &httpResponse{body: []byte(logs)}
	return r.value()
}

// replyText renders the reply template. The action already ran: a reply
// that fails to render says so instead of hiding the success.
func (a *Action) replyText(data map[string]any) string {
	s, err := execute(a.reply, data)
	if err != nil {
		a.log.Warn("reply template failed", "action", a.spec.Name, "err", err)
		return fmt.Sprintf("%s succeeded, but its reply template failed: %s", a.spec.Name, redact.Redact(err.Error()))
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return a.spec.Name + " succeeded."
	}
	return s
}
