package policy_test

import (
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/policies"
)

// FuzzParse checks that no input makes Parse panic, and that a policy that
// parses can decide, explain and approve without panicking and never
// allows a mutating action.
func FuzzParse(f *testing.F) {
	f.Add(policies.Default())
	for _, b := range policies.Examples() {
		f.Add(b)
	}
	f.Add([]byte(testPolicy))
	f.Add([]byte(minimal))
	f.Add([]byte("rules:\n  - name: r\n    when: params.replicas / 0 == 1\n    effect: allow\n"))
	f.Add([]byte("groups: {a: &x [console:a]}\nrules:\n  - {name: r, subjects: [group:a], effect: confirm, approvers: [group:a], distinct_approver: true, ttl: 1h}\n"))
	f.Add([]byte("rules: [\n"))
	f.Add([]byte("a: &a [*a]\n"))

	inputs := []policy.Input{
		{Subject: "console:alice", Channel: "console:ops", Action: "kubernetes.scale", Params: action.Params{"namespace": "prod", "replicas": 40}},
		{Subject: "slack:U1", Groups: []string{"slack-group:S0614TZR7"}, Channel: "slack:C1", Action: "help"},
		{Subject: "", Action: "", Params: action.Params{"replicas": "x", "namespace": 3}},
		{Subject: "discord:1", Groups: []string{"discord-role:1"}, Action: "evaluation.run", Kind: action.Mutating},
	}
	specs := builtin.Specs()
	kinds := map[string]action.Kind{}
	for _, s := range specs {
		kinds[s.Name] = s.Kind
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data, "fuzz.yaml", specs, testPlatforms)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy and an error")
			}
			return
		}
		for _, in := range inputs {
			d := p.Decide(in)
			kind := in.Kind
			if k, ok := kinds[in.Action]; kind == "" && ok {
				kind = k
			}
			if kind != action.Read && d.Effect == policy.Allow {
				t.Fatalf("mutating %q allowed: %+v", in.Action, d)
			}
			if d.Effect == policy.Confirm && (len(d.Approvers) == 0 || d.TTL <= 0 || d.TTL > policy.MaxTTL) {
				t.Fatalf("bad confirmation %+v", d)
			}
			_ = p.Explain(in).String()
			_ = p.Permitted(in.Subject, in.Groups, in.Channel, in.Action)
			_ = p.CanApprove(d, in.Subject, "console:bob", in.Groups)
		}
	})
}
