package llm

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

func specNames(specs []action.Spec) []string { return actionNames(specs) }

func TestShortlist(t *testing.T) {
	cat := offeredSpecs(testCatalog())
	cases := []struct {
		text    string
		hint    string
		history []intent.Turn
		want    []string // must be offered
		not     []string // must not be
	}{
		{text: "p99 latency of payments", want: []string{action.PrometheusQuery}, not: []string{action.KubernetesScale, action.EvaluationRun}},
		{text: "scale checkout to 5 in prod", want: []string{action.KubernetesScale}, not: []string{action.LokiQuery, action.EvaluationRun}},
		{text: "show error logs for payments", want: []string{action.LokiQuery}, not: []string{action.KubernetesScale}},
		{text: "run the intent-routing evals for prompt-v2", want: []string{action.EvaluationRun}, not: []string{action.KubernetesRollback}},
		{text: "roll back payments in prod", want: []string{action.KubernetesRollback}, not: []string{action.EvaluationStatus}},
		// the offline router's reading is offered, whatever the words say
		{text: "p99 latency of payments", hint: action.IncidentDiagnose, want: []string{action.PrometheusQuery, action.IncidentDiagnose}},
		// a follow-up keeps the last turn's action
		{text: "and in staging?", history: []intent.Turn{{Text: "status of checkout in prod", Action: action.KubernetesStatus}},
			want: []string{action.KubernetesStatus}, not: []string{action.EvaluationRun}},
	}
	for _, c := range cases {
		q := intent.Query{Text: c.text, Catalog: testCatalog(), Inventory: testInv, History: c.history}
		got := specNames(shortlist(q, cat, c.hint))
		if len(got) > maxShortlist+2 {
			t.Errorf("%q: %d offered: %v", c.text, len(got), got)
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q: %s not offered: %v", c.text, w, got)
			}
		}
		for _, n := range c.not {
			if slices.Contains(got, n) {
				t.Errorf("%q: %s offered: %v", c.text, n, got)
			}
		}
	}
	// words that point at nothing: everything is offered
	q := intent.Query{Text: "do the thing", Catalog: testCatalog(), Inventory: testInv}
	if got := shortlist(q, cat, ""); len(got) != len(cat) {
		t.Errorf("no evidence: %v offered of %d", specNames(got), len(cat))
	}
	// never an action outside the catalog, even as the hint or the last turn
	small := without(cat, action.KubernetesScale)
	q = intent.Query{Text: "scale checkout to 5", Catalog: small, Inventory: testInv,
		History: []intent.Turn{{Text: "x", Action: action.KubernetesScale}}}
	if got := specNames(shortlist(q, small, action.KubernetesScale)); slices.Contains(got, action.KubernetesScale) {
		t.Errorf("an action the user may not run was offered: %v", got)
	}
}

// TestOfferedSetAndNames: what the model may answer with, and what each
// refusal says really happened.
func TestOfferedSetAndNames(t *testing.T) {
	cases := []struct {
		name    string
		catalog []action.Spec
		call    func(r llmtest.Request) llmtest.Response
		action  string
		note    string
	}{
		{"the action's dotted name", testCatalog(), func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes.scale", `{"deployment":"checkout","namespace":"prod","replicas":4}`)
		}, action.KubernetesScale, "read as kubernetes.scale"},
		{"the none tool", testCatalog(), func(r llmtest.Request) llmtest.Response { return llmtest.OpenAIToolCall(r, "none", `{}`) },
			action.None, NoteNoAction},
		{"a permitted action not offered for this request", testCatalog(), func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "evaluation_run", `{"suite":"intent-routing"}`)
		}, action.None, NoteNotOffered + `: "evaluation_run"`},
		{"an action the user may not run", without(testCatalog(), action.KubernetesScale), func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "kubernetes.scale", `{}`)
		}, action.None, NoteNotAllowed + `: "kubernetes.scale"`},
		{"an unknown action", testCatalog(), func(r llmtest.Request) llmtest.Response {
			return llmtest.OpenAIToolCall(r, "drop_database", `{}`)
		}, action.None, NoteUnknownAction + `: "drop_database"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := llmtest.NewOpenAI(t, c.call)
			r, _ := newRouter(t, OpenAI, srv, nil)
			q := query("scale checkout to 4 in prod")
			q.Catalog = c.catalog
			in, err := r.Route(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if in.Action != c.action || !strings.HasPrefix(in.Note, c.note) {
				t.Errorf("intent %s %v %q, want %s with note %q", in.Action, in.Params, in.Note, c.action, c.note)
			}
		})
	}
}
