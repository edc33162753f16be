package useraction

import (
	"bytes"
	"crypto/sha256"
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
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
)

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
		spec.Name = l.parseName(n, taken)
	}
	if n := nodes["summary"]; n != nil {
		spec.Description = l.parseSummary(n)
	}
	if n := nodes["kind"]; n != nil {
		spec.Kind = l.parseKind(n)
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
		tmplData = l.parseRun(n, a, path, dir, names, o)
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

func (l *loader) parseName(n *yaml.Node, taken map[string]string) string {
	name, ok := l.text(n, "name")
	if !ok {
		return ""
	}
	switch file, clash := taken[name]; {
	case len(name) > maxNameLen || !nameRE.MatchString(name):
		l.errorf(n, "name: %q is not a lowercase dotted name such as cdn.purge (letters, digits, _ and -; at most %d characters)", name, maxNameLen)
	case clash && file == "":
		l.errorf(n, "name: %s is a built-in action; choose another name", name)
	case clash:
		l.errorf(n, "name: %s is already defined in %s", name, file)
	default:
		return name
	}
	return ""
}

func (l *loader) parseSummary(n *yaml.Node) string {
	s, ok := l.text(n, "summary")
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		l.errorf(n, "summary: empty; say in one line what the action does")
	case strings.ContainsAny(s, "\r\n"):
		l.errorf(n, "summary: one line, please")
	case len(s) > 300:
		l.errorf(n, "summary: longer than 300 bytes")
	default:
		return s
	}
	return ""
}

func (l *loader) parseKind(n *yaml.Node) action.Kind {
	k, ok := l.text(n, "kind")
	if !ok {
		return ""
	}
	switch action.Kind(k) {
	case action.Read, action.Mutating:
		return action.Kind(k)
	}
	l.errorf(n, "kind: %q is not read or mutating", k)
	return ""
}

// parseRun reads the one runner into a; it returns the Job template's
// bytes (part of the action's fingerprint).
func (l *loader) parseRun(n *yaml.Node, a *Action, path, dir string, params []string, o *Options) []byte {
	var runners []string
	var tmplData []byte
	l.mapping(n, "run", runKeys, func(key string, k, v *yaml.Node) {
		runners = append(runners, key)
		switch key {
		case "http":
			if h, ok := l.parseHTTP(v, a.spec.Kind, params, o); ok {
				a.http = h
			}
		case "kubernetes_job":
			if j, data, ok := l.parseJob(v, a.spec.Name, path, dir, o); ok {
				a.job, tmplData = j, data
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
	return tmplData
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
