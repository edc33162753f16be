package evals_test

import (
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/evals"
)

// TestProjectDataset holds evals/routing.yaml to its own bar: large,
// covering every action and parameter, plenty of refusals, no repeats.
func TestProjectDataset(t *testing.T) {
	ds, err := evals.LoadRoutingDataset("../../evals/routing.yaml", builtin.Specs())
	if err != nil {
		t.Fatalf("LoadDataset: %v", err)
	}
	if n := len(ds.Cases); n < 300 {
		t.Errorf("%d cases, want at least 300", n)
	}

	expected := map[string]int{}          // action -> cases listing it
	params := map[string]map[string]int{} // action -> param -> cases listing it
	onlyNone := 0
	seen := map[string]int{} // normalised text -> line
	for _, c := range ds.Cases {
		for _, a := range c.Actions {
			expected[a]++
			if params[a] == nil {
				params[a] = map[string]int{}
			}
			for p := range c.Params {
				params[a][p]++
			}
		}
		if len(c.Actions) == 1 && c.Actions[0] == action.None {
			onlyNone++
		}
		key := strings.Join(strings.Fields(strings.ToLower(c.Text)), " ")
		if first, dup := seen[key]; dup {
			t.Errorf("line %d: text %q repeats line %d", c.Line, c.Text, first)
		}
		seen[key] = c.Line
	}
	for _, s := range builtin.Specs() {
		if expected[s.Name] < 5 {
			t.Errorf("action %s is expected in %d cases, want at least 5", s.Name, expected[s.Name])
		}
		for _, p := range s.Params {
			if params[s.Name][p.Name] == 0 {
				t.Errorf("parameter %s of %s appears in no case", p.Name, s.Name)
			}
		}
	}
	if onlyNone < 50 {
		t.Errorf("%d cases expect only none, want at least 50", onlyNone)
	}

	inv := ds.Inventory
	if len(inv.Namespaces) != 3 || len(inv.Deployments["prod"]) != 7 || len(inv.Deployments["dev"]) != 2 ||
		len(inv.Services) != 7 || len(inv.EvalSuites) != 3 || len(inv.EvalVariants) != 4 {
		t.Errorf("inventory = %+v, want the documented one", inv)
	}
}
