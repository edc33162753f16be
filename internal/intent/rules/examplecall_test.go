package rules

import (
	"context"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// The example call help and the router show for an action (ExampleCall)
// is itself an explicit call that selects that action with the example's
// parameters.
func TestExampleCallsRouteToThemselves(t *testing.T) {
	specs := append(builtin.Specs(), action.Spec{Name: "cdn.purge", Kind: action.Mutating,
		Params:   []action.Param{{Name: "path", Type: action.String, Required: true}},
		Examples: []action.Example{{Text: "purge /img", Params: map[string]any{"path": "/img/a b's \"x\""}}}})
	r := New(specs)
	n := 0
	for _, s := range specs {
		call := s.ExampleCall()
		if call == "" {
			continue
		}
		n++
		got, err := r.Route(context.Background(), intent.Query{Text: call, Catalog: specs})
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		for _, ex := range s.Examples {
			if len(ex.Params) > 0 {
				want = ex.Params
				break
			}
		}
		wp, err := s.Validate(want)
		if err != nil {
			t.Fatalf("%s: example params: %v", s.Name, err)
		}
		gp, err := s.Validate(map[string]any(got.Params)) // defaults filled as the pipeline fills them
		if err != nil || got.Source != ExplicitSource || got.Action != s.Name || gp.Canonical() != wp.Canonical() {
			t.Errorf("%q: %s %s %s (%v), want an explicit %s %s", call, got.Source, got.Action, gp.Canonical(), err, s.Name, wp.Canonical())
		}
	}
	if n < 10 {
		t.Fatalf("only %d actions have an example call", n)
	}
}
