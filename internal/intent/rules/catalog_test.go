package rules

import (
	"context"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// TestNoActionNames: the router's code names no action and no parameter
// of one; everything it knows of them comes from the specs.
func TestNoActionNames(t *testing.T) {
	banned := map[string]bool{} // dotted names: "help" is also an English word
	for _, s := range builtin.Specs() {
		if strings.Contains(s.Name, ".") {
			banned[s.Name] = true
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(x.Value); err == nil && x.Kind == gotoken.STRING {
					for _, w := range strings.Fields(s) {
						if banned[strings.Trim(w, "`\"',.")] {
							t.Errorf("%s: the literal %q names an action", fset.Position(x.Pos()), w)
						}
					}
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "action" {
					switch x.Sel.Name {
					case "Help", "PrometheusQuery", "LokiQuery", "KubernetesStatus", "KubernetesScale", "KubernetesRollback",
						"KubernetesRestart", "EvaluationRun", "EvaluationStatus", "IncidentDiagnose":
						t.Errorf("%s: action.%s names an action", fset.Position(x.Pos()), x.Sel.Name)
					}
				}
			}
			return true
		})
	}
}

// TestDerivedVocabulary: a spec with no vocabulary gets verbs from its name,
// summary and examples (and their groups, in context only), cues weighted
// by how many actions share them, and words for its booleans.
func TestDerivedVocabulary(t *testing.T) {
	specs := append(builtin.Specs(), userSpecs()...)
	r := New(specs)
	verbs := func(w string) []string {
		var out []string
		for _, v := range r.lex[w].verbs {
			if v.form == formBase {
				out = append(out, v.act.name+map[bool]string{true: "(open)"}[v.open])
			}
		}
		return out
	}
	for w, want := range map[string]string{
		"purge": "cdn.purge", "flush": "cdn.purge", "invalidate": "cdn.purge(open)",
		"drain": "queue.drain", "empty": "queue.drain",
		"enable": "flags.toggle", "disable": "flags.toggle", "toggle": "flags.toggle",
		"renew": "certs.renew", "refresh": "certs.renew(open)",
	} {
		if got := strings.Join(verbs(w), ","); !strings.Contains(got, want) {
			t.Errorf("verbs of %q = %s, want %s", w, got, want)
		}
	}
	if got := verbs("who"); len(got) != 0 {
		t.Errorf("a read action got verbs: %v", got)
	}
	cue := func(w, act string) float32 { return r.lex[w].cueFor(r.cat.act(act)) }
	if c := cue("cdn", "cdn.purge"); c < 2.5 {
		t.Errorf("cue cdn for cdn.purge = %.2f, want a strong one (its name)", c)
	}
	if c := cue("the", "cdn.purge"); c != 0 {
		t.Errorf("a function word is a cue: %.2f", c)
	}
	if c, strong := cue("team", "oncall.who"), cue("call", "oncall.who"); c != 0 && c >= strong {
		t.Errorf("team (a word of three actions) weighs %.2f, call (of one) %.2f", c, strong)
	}
	flags := r.cat.act("flags.toggle").param("enabled")
	var words []string
	for _, v := range paramValues(flags) {
		words = append(words, v.text+"="+v.value)
	}
	for _, want := range []string{"enable=true", "disable=false", "activate=true", "turn off=false"} {
		if !strings.Contains(strings.Join(words, " "), want) {
			t.Errorf("words for enabled %v lack %s", words, want)
		}
	}
	// the caller's spec is not changed by deriving
	for _, s := range userSpecs() {
		if s.Name == "flags.toggle" {
			if p, _ := s.Param("enabled"); p.Synonyms != nil {
				t.Errorf("deriving wrote into the spec: %v", p.Synonyms)
			}
		}
	}
}

// TestDeclaredShapes: a read action's verbs point at it, and a phrase of
// Words introduces a value like a word does.
func TestDeclaredShapes(t *testing.T) {
	specs := append(builtin.Specs(), action.Spec{
		Name: "jobs.tail", Kind: action.Read, Description: "Follow a batch job's output.",
		Params: []action.Param{
			{Name: "job", Type: action.Int, Words: []string{"job number", "job #"}},
		},
		Examples:   []action.Example{{Text: "follow job number 12", Params: map[string]any{"job": 12}}},
		Vocabulary: action.Vocabulary{Verbs: []string{"follow", "stream"}, Cues: map[string]float64{"<job>": 2}},
	})
	r := New(specs)
	got, _ := r.Route(context.Background(), intent.Query{Text: "please stream job number 31", Catalog: specs})
	if got.Action != "jobs.tail" || got.Params.String("job") != "31" {
		t.Errorf("got %s %v (%s), want jobs.tail job=31", got.Action, got.Params, got.Note)
	}
}
