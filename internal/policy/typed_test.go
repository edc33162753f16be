package policy_test

import (
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/policy"
)

// TestConditionsAreTypedFromSpecs: params in a condition carry the types
// of the action specs' parameters (integers int, strings, enums and
// durations string, booleans bool), so a comparison that could never be
// true fails at load with file:line, in either spelling (params.x and
// params["x"]); a rule without actions sees the union of every action's
// parameters.
func TestConditionsAreTypedFromSpecs(t *testing.T) {
	rule := func(actions, when string) string {
		src := "rules:\n  - name: r\n"
		if actions != "" {
			src += "    actions: [" + actions + "]\n"
		}
		return src + "    when: '" + when + "'\n    effect: deny\n"
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"int against text", rule("kubernetes.scale", `params.replicas > "x"`),
			`p.yaml:4: rule "r": when: found no matching overload for '_>_' applied to '(int, string)' (column 17); params.replicas is int (typed from the action specs)`},
		{"index form", rule("kubernetes.scale", `params["replicas"] == "5"`), `p.yaml:4: rule "r": when: found no matching overload for '_==_' applied to '(int, string)'`},
		{"text against int", rule("kubernetes.scale", `params.namespace == 1`), `params.namespace is string`},
		{"enum is text", rule("prometheus.query", `params.metric > 2`), `params.metric is string`},
		{"duration is text", rule("prometheus.query", `params.window == duration("1h")`), `applied to '(string, duration)' (column 15); params.window is string`},
		{"text method on int", rule("kubernetes.rollback", `params.revision.startsWith("1")`), `found no matching overload for 'startsWith' applied to 'int.(string)'`},
		{"union without actions", rule("", `params.replicas == "three"`), `p.yaml:3: rule "r": when: found no matching overload for '_==_' applied to '(int, string)'`},
		{"in a list of the wrong type", rule("kubernetes.scale", `params.replicas in ["1", "2"]`), `found no matching overload for '@in'`},
		{"unknown param", rule("kubernetes.scale", `params.revision == 3`), `params.revision is not a parameter of kubernetes.scale`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.src), "p.yaml", builtin.Specs(), testPlatforms)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v\nwant an error containing %q", tc.src, err, tc.want)
			}
		})
	}

	for _, when := range []string{
		`params.replicas <= 50`,
		`has(params.replicas) && params.replicas == 0`,
		`params.namespace in ["staging", "prod"]`,
		`params["namespace"] == "prod" && params["replicas"] > 3`,
		`params.namespace == "prod" && (action != "kubernetes.scale" || params.replicas <= 50)`,
		`has(params.namespace) && params.namespace.startsWith("prod")`,
		`kind == "mutating" && "sre" in groups`,
		// params as a whole map: checked when it runs, as before
		`"replicas" in params && params.replicas > 3`,
		`size(params) > 1`,
		`params[action == "kubernetes.scale" ? "replicas" : "namespace"] != 0`,
	} {
		src := rule("kubernetes.scale, kubernetes.restart", when)
		if _, err := policy.Parse([]byte(src), "p.yaml", builtin.Specs(), testPlatforms); err != nil {
			t.Errorf("a well-typed condition was refused: %q: %v", when, err)
		}
	}
}

// TestUserSpecsAreTyped: the types come from whatever specs the caller
// offers (user-defined actions included): a boolean is a bool; a name two
// actions type differently is checked only when it runs.
func TestUserSpecsAreTyped(t *testing.T) {
	specs := append(builtin.Specs(),
		action.Spec{Name: "cdn.purge", Kind: action.Mutating, Params: []action.Param{
			{Name: "site", Type: action.Enum, Enum: []string{"shop", "blog"}},
			{Name: "hard", Type: action.Bool},
			{Name: "count", Type: action.Int},
			{Name: "window", Type: action.Duration},
		}},
		action.Spec{Name: "cdn.warm", Kind: action.Mutating, Params: []action.Param{{Name: "count", Type: action.String}}},
	)
	ok := []string{
		"rules:\n  - name: r\n    actions: [cdn.purge]\n    when: params.hard && params.count > 2 && params.window == \"1h\" && params.site == \"shop\"\n    effect: deny\n",
		// count is int in cdn.purge and text in cdn.warm: dyn over both.
		"rules:\n  - name: r\n    actions: [\"cdn.*\"]\n    when: has(params.count) && params.count == \"a\"\n    effect: deny\n",
	}
	for _, src := range ok {
		if _, err := policy.Parse([]byte(src), "p.yaml", specs, testPlatforms); err != nil {
			t.Errorf("Parse(%q): %v", src, err)
		}
	}
	src := "rules:\n  - name: r\n    actions: [cdn.purge]\n    when: params.hard == \"yes\"\n    effect: deny\n"
	if _, err := policy.Parse([]byte(src), "p.yaml", specs, testPlatforms); err == nil || !strings.Contains(err.Error(), "p.yaml:4:") || !strings.Contains(err.Error(), "params.hard is bool") {
		t.Errorf("a bool compared with text: %v", err)
	}
}
