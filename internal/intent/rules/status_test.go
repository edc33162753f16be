package rules

import (
	"context"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// An unknown name asked about is passed on as the deployment, so the
// status action answers "no deployment foo in prod (did you mean …)"
// instead of the router dropping it and a listing answering instead.
func TestStatusKeepsUnknownNames(t *testing.T) {
	inv := intent.Inventory{
		Namespaces:  []string{"prod", "staging"},
		Deployments: map[string][]string{"prod": {"checkout", "payments"}, "staging": {"checkout"}},
		Services:    []string{"checkout", "payments"},
	}
	for text, want := range map[string]action.Params{
		"status of foo in prod":      {"deployment": "foo", "namespace": "prod"},
		"describe foo":               {"deployment": "foo"},
		"status of prod":             {"namespace": "prod"},
		"status of checkout in prod": {"deployment": "checkout", "namespace": "prod"},
	} {
		got, err := New(builtin.Specs()).Route(context.Background(), intent.Query{Text: text, Catalog: builtin.Specs(), Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		if got.Action != action.KubernetesStatus || got.Params.Canonical() != want.Canonical() {
			t.Errorf("%q: %s %s, want kubernetes.status %s", text, got.Action, got.Params.Canonical(), want.Canonical())
		}
	}
}
