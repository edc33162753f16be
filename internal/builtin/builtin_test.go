package builtin

import (
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// TestSpecs: every built-in spec is well formed, named once, described,
// has examples whose parameters validate against it, and keeps its kind
// (a public contract: policies are written against it).
func TestSpecs(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Specs() {
		if err := s.Check(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if seen[s.Name] {
			t.Errorf("%s twice", s.Name)
		}
		seen[s.Name] = true
		if s.Description == "" || len(s.Examples) == 0 {
			t.Errorf("%s: needs a description and examples (help and the LLM tools show them)", s.Name)
		}
		for _, ex := range s.Examples {
			if ex.Text == "" {
				t.Errorf("%s: an example without text", s.Name)
			}
			if _, err := s.Validate(withNamespace(s, ex.Params)); err != nil && len(ex.Params) > 0 {
				t.Errorf("%s: example %q: %v", s.Name, ex.Text, err)
			}
		}
	}
	kinds := map[string]action.Kind{
		action.Help: action.Read, action.PrometheusQuery: action.Read, action.LokiQuery: action.Read,
		action.KubernetesStatus: action.Read, action.KubernetesScale: action.Mutating, action.KubernetesRollback: action.Mutating,
		action.KubernetesRestart: action.Mutating, action.EvaluationRun: action.Mutating, action.EvaluationStatus: action.Read,
		action.IncidentDiagnose: action.Read,
	}
	for name, kind := range kinds {
		if !seen[name] {
			t.Errorf("no built-in %s", name)
			continue
		}
		for _, s := range Specs() {
			if s.Name == name && s.Kind != kind {
				t.Errorf("%s kind = %s, want %s", name, s.Kind, kind)
			}
		}
	}
}

// withNamespace adds the namespace a channel binding would give, so an
// example that leaves it out still validates.
func withNamespace(s action.Spec, p map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		out[k] = v
	}
	if _, ok := s.Param("namespace"); ok && out["namespace"] == nil {
		out["namespace"] = "prod"
	}
	return out
}
