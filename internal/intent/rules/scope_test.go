package rules

import (
	"context"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// TestOutOfScope: a message that points at no action is marked so (a
// model would not be asked about it); one that names a thing, or uses a
// word of an action, is not, even when it is read as no action.
func TestOutOfScope(t *testing.T) {
	r := New(builtin.Specs())
	inv := intent.Inventory{Namespaces: []string{"prod", "staging"}, Deployments: map[string][]string{"prod": {"checkout"}}, Services: []string{"checkout"}}
	route := func(text string) intent.Intent {
		in, err := r.Route(context.Background(), intent.Query{Text: text, Catalog: builtin.Specs(), Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	for _, text := range []string{"thanks parley!", "hi", "ok thanks", "lol", "tell me a joke", "what's the weather in Berlin", "asdfghjkl", "👍"} {
		if in := route(text); in.Action != action.None || !in.OutOfScope {
			t.Errorf("%q: %s, out of scope %v; want none, out of scope", text, in.Action, in.OutOfScope)
		}
	}
	for _, text := range []string{"and in staging?", "hmm checkout prod thing", "logs pls", "status of checkout in prod", "scale checkout to 5 in prod", "/parley help"} {
		if in := route(text); in.OutOfScope {
			t.Errorf("%q: %s marked out of scope", text, in.Action)
		}
	}
}
