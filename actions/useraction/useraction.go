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
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

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

// nameRE: lowercase dotted names, as the built-ins are (cdn.purge).
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$`)

const maxNameLen = 64

var (
	topKeys     = []string{"name", "summary", "kind", "params", "examples", "run", "reply"}
	exampleKeys = []string{"text", "params"}
	runKeys     = []string{"http", "kubernetes_job"}
)

const maxExamples = 50

// LoadDir loads every action file in dir: the *.yaml and *.yml files
// directly in it, except those an action names as its Job template.
// Problems of all files are reported together, each naming file:line; if
// there is any, no action is returned.
func LoadDir(dir string, o Options) ([]*Action, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("actions folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("actions folder %s is not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("actions folder: %w", err)
	}
	type file struct {
		path string
		data []byte
		doc  *yaml.Node
	}
	var files []file
	var errs []*Error
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		if e.Type()&fs.ModeSymlink == 0 && !e.Type().IsRegular() {
			continue
		}
		data, err := readLimited(path)
		if err != nil {
			errs = append(errs, &Error{File: path, Msg: err.Error()})
			continue
		}
		files = append(files, file{path: path, data: data})
	}
	// A file some action names as its template is not an action file.
	templates := map[string]bool{}
	for i := range files {
		l := newLoader(files[i].path)
		files[i].doc = l.document(files[i].data)
		if files[i].doc != nil {
			if rel := jobTemplateRef(files[i].doc); rel != "" {
				if p, err := templatePath(rel, files[i].path, dir); err == nil {
					templates[p] = true
				}
			}
		}
	}
	var out []*Action
	taken := map[string]string{}
	for _, b := range o.Builtins {
		taken[b] = ""
	}
	for _, f := range files {
		if real, err := filepath.EvalSymlinks(f.path); err == nil {
			if abs, err := filepath.Abs(real); err == nil && templates[abs] {
				continue
			}
		}
		a, ferrs := parseFile(f.path, dir, f.data, taken, &o)
		errs = append(errs, ferrs...)
		if a != nil {
			taken[a.spec.Name] = f.path
			out = append(out, a)
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return out, nil
}

// document decodes one YAML document; nil (with an error recorded) if the
// data is not exactly one.
func (l *loader) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(nil, "empty file: want an action (name, summary, kind, params, examples, run, reply)")
			return nil
		}
		l.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			l.yamlError(err)
		} else {
			l.errorf(&extra, "one action a file: found a second YAML document")
		}
		return nil
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0]
	}
	return &doc
}

// jobTemplateRef returns run.kubernetes_job.template of an action file.
func jobTemplateRef(root *yaml.Node) string {
	run := valueAt(root, "run")
	if run == nil {
		return ""
	}
	job := valueAt(run, "kubernetes_job")
	if job == nil {
		return ""
	}
	if t := valueAt(job, "template"); t != nil && t.Kind == yaml.ScalarNode {
		return t.Value
	}
	return ""
}

func valueAt(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// parseFile parses one action file. taken maps the names already used to
// their file ("" for a built-in).
func parseFile(path, dir string, data []byte, taken map[string]string, o *Options) (*Action, []*Error) {
	l := newLoader(path)
	root := l.document(data)
	if root == nil {
		return nil, l.errs
	}
	if root.Kind != yaml.MappingNode {
		l.errorf(root, "want an action: a mapping with keys %s", strings.Join(topKeys, ", "))
		return nil, l.errs
	}
	if scalarAt(root, "apiVersion") != "" && scalarAt(root, "kind") != "" {
		l.errorf(root, "this is a Kubernetes manifest, not an action file, and no action names it as its run.kubernetes_job.template")
		return nil, l.errs
	}
	a := &Action{file: path, ua: o.UserAgent, log: o.Logger}
	if a.ua == "" {
		a.ua = "parley"
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	spec := &a.spec
	nodes := map[string]*yaml.Node{}
	l.mapping(root, "action", topKeys, func(key string, _, v *yaml.Node) { nodes[key] = v })
	for _, key := range []string{"name", "summary", "kind", "run"} {
		if nodes[key] == nil {
			l.errorf(root, "missing %s", key)
		}
	}
	if n := nodes["name"]; n != nil {
		if name, ok := l.text(n, "name"); ok {
			switch file, clash := taken[name]; {
			case len(name) > maxNameLen || !nameRE.MatchString(name):
				l.errorf(n, "name: %q is not a lowercase dotted name such as cdn.purge (letters, digits, _ and -; at most %d characters)", name, maxNameLen)
			case clash && file == "":
				l.errorf(n, "name: %s is a built-in action; choose another name", name)
			case clash:
				l.errorf(n, "name: %s is already defined in %s", name, file)
			default:
				spec.Name = name
			}
		}
	}
	if n := nodes["summary"]; n != nil {
		if s, ok := l.text(n, "summary"); ok {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				l.errorf(n, "summary: empty; say in one line what the action does")
			case strings.ContainsAny(s, "\r\n"):
				l.errorf(n, "summary: one line, please")
			case len(s) > 300:
				l.errorf(n, "summary: longer than 300 bytes")
			default:
				spec.Description = s
			}
		}
	}
	if n := nodes["kind"]; n != nil {
		if k, ok := l.text(n, "kind"); ok {
			switch action.Kind(k) {
			case action.Read, action.Mutating:
				spec.Kind = action.Kind(k)
			default:
				l.errorf(n, "kind: %q is not read or mutating", k)
			}
		}
	}
	paramsOK := true
	if n := nodes["params"]; n != nil {
		spec.Params, paramsOK = l.parseParams(n)
	}
	var names []string
	for _, p := range spec.Params {
		names = append(names, p.Name)
	}
	if paramsOK {
		if err := (action.Spec{Name: "x", Kind: action.Read, Params: spec.Params}).Check(); err != nil {
			l.errorf(nodes["params"], "params: %s", strings.TrimPrefix(err.Error(), "action x: "))
		}
	}
	if n := nodes["examples"]; n != nil && paramsOK {
		spec.Examples = l.parseExamples(n, spec.Params)
	} else if n == nil {
		l.errorf(root, "missing examples: give at least one request as people would type it (the offline router learns from them)")
	}
	var tmplData []byte
	if n := nodes["run"]; n != nil {
		var runners []string
		l.mapping(n, "run", runKeys, func(key string, k, v *yaml.Node) {
			runners = append(runners, key)
			switch key {
			case "http":
				if h, ok := l.parseHTTP(v, spec.Kind, names, o); ok {
					a.http = h
				}
			case "kubernetes_job":
				var ok bool
				var j *jobRunner
				if j, tmplData, ok = l.parseJob(v, spec.Name, path, dir, o); ok {
					a.job = j
				}
			}
		})
		switch {
		case n.Kind != yaml.MappingNode:
		case len(runners) == 0:
			l.errorf(n, "run: no runner; give exactly one of %s", strings.Join(runKeys, ", "))
		case len(runners) > 1:
			l.errorf(n, "run: %s: give exactly one runner", strings.Join(runners, " and "))
		}
	}
	if n := nodes["reply"]; n != nil {
		if s, ok := l.text(n, "reply"); ok {
			t, err := parseTemplate("reply", s, append(slices.Clone(names), "response"))
			if err != nil {
				l.errorf(n, "reply: %v", err)
			}
			a.reply = t
		}
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	sum := sha256.New()
	sum.Write(data)
	sum.Write(tmplData)
	a.digest = hex.EncodeToString(sum.Sum(nil))[:16]
	if err := spec.Check(); err != nil { // the checks above cover it; a safety net
		l.errorf(root, "%v", err)
		return nil, l.errs
	}
	return a, nil
}

func (l *loader) parseExamples(n *yaml.Node, params []action.Param) []action.Example {
	items, ok := l.list(n, "examples")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		l.errorf(n, "examples: empty; give at least one request as people would type it")
		return nil
	}
	if len(items) > maxExamples {
		l.errorf(n, "examples: more than %d", maxExamples)
		return nil
	}
	// Example parameters are checked like a request's, except that a
	// required one may be left to the channel's binding or a follow-up.
	relaxed := action.Spec{Name: "example", Kind: action.Read}
	for _, p := range params {
		p.Required = false
		p.Default = nil
		relaxed.Params = append(relaxed.Params, p)
	}
	var out []action.Example
	seen := map[string]bool{}
	for i, it := range items {
		what := fmt.Sprintf("examples[%d]", i)
		var ex action.Example
		var textNode *yaml.Node
		l.mapping(it, what, exampleKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "text":
				textNode = v
				s, ok := l.text(v, what+".text")
				if ok {
					ex.Text = strings.TrimSpace(s)
				}
			case "params":
				raw := map[string]any{}
				l.mapping(v, what+".params", nil, func(name string, k, pv *yaml.Node) {
					if _, ok := relaxed.Param(name); !ok {
						l.errorf(k, "%s.params: %q is not a parameter of this action", what, name)
						return
					}
					var val any
					if err := pv.Decode(&val); err != nil || pv.Kind != yaml.ScalarNode {
						l.errorf(pv, "%s.params.%s: want a single value", what, name)
						return
					}
					raw[name] = val
				})
				p, err := relaxed.Validate(raw)
				if err != nil {
					l.errorf(v, "%s.params: %s", what, strings.TrimPrefix(err.Error(), "invalid parameters: example: "))
					return
				}
				ex.Params = map[string]any(p)
			}
		})
		switch {
		case it.Kind != yaml.MappingNode:
		case textNode == nil:
			l.errorf(it, "%s: missing text", what)
		case ex.Text == "":
			l.errorf(textNode, "%s.text: empty", what)
		case len(ex.Text) > 500:
			l.errorf(textNode, "%s.text: longer than 500 bytes", what)
		case seen[strings.ToLower(ex.Text)]:
			l.errorf(textNode, "%s.text: %q given twice", what, ex.Text)
		default:
			seen[strings.ToLower(ex.Text)] = true
			out = append(out, ex)
		}
	}
	return out
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
		text = a.replyText(data)
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
		data["response"] = logValue(res.logs)
		text = a.replyText(data)
	} else {
		text = fmt.Sprintf("Job %s succeeded in %s", res.name, res.took)
		if res.logs != "" {
			text += ". Last log lines:"
			code = res.logs
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
