package policy_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/policy"
)

const testPolicy = `
groups:
  sre: [console:alice, console:bob, slack:U024BE7LH, slack-group:S0614TZR7]
  ml: [console:carol, discord-role:42]
  auditors: [console:dave]
rules:
  - name: auditors read only
    subjects: [group:auditors]
    actions: [kubernetes.scale, kubernetes.rollback, kubernetes.restart, evaluation.run]
    effect: deny
    reason: auditors have read-only access
  - name: reads
    actions: [help, "prometheus.*", loki.query, kubernetes.status, incident.diagnose, evaluation.status]
    effect: allow
  - name: slack restarts from ops
    subjects: ["slack:*"]
    channels: [slack:C0OPS]
    actions: [kubernetes.restart]
    effect: allow
  - name: prod is capped
    actions: [kubernetes.scale]
    when: params.namespace == "prod" && params.replicas > 50
    effect: deny
    reason: prod is capped at 50 replicas
  - name: prod needs a second sre
    subjects: [group:sre]
    actions: ["kubernetes.*"]
    when: params.namespace == "prod"
    effect: confirm
    approvers: [group:sre]
    distinct_approver: true
    ttl: 30m
  - name: ml evaluations
    subjects: [group:ml]
    channels: [console:ml, "discord:*"]
    actions: [evaluation.run]
    effect: confirm
    approvers: [requester, console:erin]
  - name: sre staging
    actions: [kubernetes.restart, kubernetes.rollback]
    when: '"sre" in groups && has(params.namespace) && params.namespace == "staging"'
    effect: allow
default: deny
`

func scale(ns string, replicas any) action.Params {
	return action.Params{"deployment": "checkout", "namespace": ns, "replicas": replicas}
}

func TestDecide(t *testing.T) {
	p := mustParse(t, testPolicy)
	tests := []struct {
		name      string
		in        policy.Input
		effect    policy.Effect
		rule      string
		approvers []string
		distinct  bool
		ttl       time.Duration
		reason    string // substring
		warning   string // substring of a warning, if any
	}{
		{name: "anyone reads help", in: policy.Input{Subject: "console:eve", Channel: "console:ops", Action: "help"},
			effect: policy.Allow, rule: "reads", reason: `allowed by rule "reads"`},
		{name: "action pattern", in: policy.Input{Subject: "console:eve", Channel: "console:ops", Action: "prometheus.query"},
			effect: policy.Allow, rule: "reads"},
		{name: "deny before allow", in: policy.Input{Subject: "console:dave", Action: "kubernetes.scale", Params: scale("staging", 1)},
			effect: policy.Deny, rule: "auditors read only", reason: "auditors have read-only access"},
		{name: "denied subject still reads", in: policy.Input{Subject: "console:dave", Action: "kubernetes.status"},
			effect: policy.Allow, rule: "reads"},
		{name: "allow on mutating becomes confirm", in: policy.Input{Subject: "slack:U999", Channel: "slack:C0OPS", Action: "kubernetes.restart",
			Params: action.Params{"deployment": "checkout", "namespace": "dev"}},
			effect: policy.Confirm, rule: "slack restarts from ops", approvers: []string{"requester"}, ttl: policy.DefaultTTL,
			reason: "mutating action, so the requester must confirm"},
		{name: "channel mismatch", in: policy.Input{Subject: "slack:U999", Channel: "slack:C0OTHER", Action: "kubernetes.restart",
			Params: action.Params{"deployment": "checkout", "namespace": "dev"}},
			effect: policy.Deny, rule: "default", reason: "no rule allows slack:U999 to run kubernetes.restart in slack:C0OTHER (default deny)"},
		{name: "platform wildcard subject", in: policy.Input{Subject: "console:U999", Channel: "slack:C0OPS", Action: "kubernetes.restart"},
			effect: policy.Deny, rule: "default"},
		{name: "prod scale confirm by second sre", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", 40)},
			effect: policy.Confirm, rule: "prod needs a second sre", approvers: []string{"group:sre"}, distinct: true, ttl: 30 * time.Minute,
			reason: "a second member of group sre must confirm"},
		{name: "prod cap with int", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", 60)},
			effect: policy.Deny, rule: "prod is capped", reason: "prod is capped at 50 replicas"},
		{name: "prod cap with int64", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", int64(60))},
			effect: policy.Deny, rule: "prod is capped"},
		{name: "prod cap with int32", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", int32(60))},
			effect: policy.Deny, rule: "prod is capped"},
		{name: "prod cap with uint8", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", uint8(60))},
			effect: policy.Deny, rule: "prod is capped"},
		{name: "prod cap boundary", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", 50)},
			effect: policy.Confirm, rule: "prod needs a second sre", distinct: true},
		{name: "absent param does not crash, deny rule fails closed", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale",
			Params: action.Params{"deployment": "checkout", "namespace": "prod"}},
			effect: policy.Deny, rule: "prod is capped", warning: `rule "prod is capped": condition params.namespace == "prod" && params.replicas > 50: no such key: replicas; a deny rule fails closed, so it applies`},
		{name: "wrong param type does not crash, deny rule fails closed", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", "60")},
			effect: policy.Deny, rule: "prod is capped", warning: "no such overload"},
		{name: "nil params", in: policy.Input{Subject: "console:alice", Action: "kubernetes.scale"},
			effect: policy.Deny, rule: "prod is capped", warning: "no such key"},
		{name: "group via platform group", in: policy.Input{Subject: "slack:U777", Groups: []string{"slack-group:S0614TZR7"}, Action: "kubernetes.scale", Params: scale("prod", 3)},
			effect: policy.Confirm, rule: "prod needs a second sre", distinct: true},
		{name: "platform group of someone else's platform does not count", in: policy.Input{Subject: "slack:U777", Groups: []string{"slack-group:S999"}, Action: "kubernetes.scale", Params: scale("prod", 3)},
			effect: policy.Deny, rule: "default"},
		{name: "ml in their channel", in: policy.Input{Subject: "console:carol", Channel: "console:ml", Action: "evaluation.run", Params: action.Params{"suite": "intent-routing"}},
			effect: policy.Confirm, rule: "ml evaluations", approvers: []string{"requester", "console:erin"}, ttl: policy.DefaultTTL},
		{name: "ml elsewhere", in: policy.Input{Subject: "console:carol", Channel: "console:ops", Action: "evaluation.run"},
			effect: policy.Deny, rule: "default"},
		{name: "ml via discord role, channel wildcard", in: policy.Input{Subject: "discord:5", Groups: []string{"discord-role:42"}, Channel: "discord:123", Action: "evaluation.run"},
			effect: policy.Confirm, rule: "ml evaluations"},
		{name: "groups variable in condition, mutating allow", in: policy.Input{Subject: "console:bob", Action: "kubernetes.restart",
			Params: action.Params{"deployment": "checkout", "namespace": "staging"}},
			effect: policy.Confirm, rule: "sre staging", approvers: []string{"requester"}, ttl: policy.DefaultTTL},
		{name: "condition false for non-member", in: policy.Input{Subject: "console:eve", Action: "kubernetes.restart",
			Params: action.Params{"deployment": "checkout", "namespace": "staging"}},
			effect: policy.Deny, rule: "default"},
		{name: "explicit kind wins over the catalog", in: policy.Input{Subject: "console:eve", Action: "kubernetes.status", Kind: action.Mutating},
			effect: policy.Confirm, rule: "reads", approvers: []string{"requester"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.in)
			if d.Effect != tt.effect || d.Rule != tt.rule {
				t.Fatalf("Decide = %s by %q (%s), want %s by %q", d.Effect, d.Rule, d.Reason, tt.effect, tt.rule)
			}
			if tt.approvers != nil && !slices.Equal(d.Approvers, tt.approvers) {
				t.Errorf("approvers = %v, want %v", d.Approvers, tt.approvers)
			}
			if d.DistinctApprover != tt.distinct {
				t.Errorf("distinct = %v, want %v", d.DistinctApprover, tt.distinct)
			}
			if tt.ttl != 0 && d.TTL != tt.ttl {
				t.Errorf("ttl = %v, want %v", d.TTL, tt.ttl)
			}
			if d.Effect != policy.Confirm && (d.TTL != 0 || d.Approvers != nil) {
				t.Errorf("%s decision carries confirmation settings: %+v", d.Effect, d)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if tt.warning == "" && len(d.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", d.Warnings)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), tt.warning) {
				t.Errorf("warnings = %q, want one containing %q", d.Warnings, tt.warning)
			}
		})
	}
}

// TestMutatingNeverAllowed checks the invariant over the whole catalog: a
// policy that allows everything still gets each mutating action confirmed
// by its requester, whether a rule or the default allows it.
func TestMutatingNeverAllowed(t *testing.T) {
	for _, src := range []string{
		"rules:\n  - name: everything\n    effect: allow\n",
		"rules:\n  - name: nobody\n    subjects: [console:nobody]\n    effect: deny\ndefault: allow\n",
	} {
		p := mustParse(t, src)
		for _, spec := range builtin.Specs() {
			d := p.Decide(policy.Input{Subject: "console:eve", Channel: "console:ops", Action: spec.Name})
			if spec.Kind == action.Mutating {
				if d.Effect != policy.Confirm || !slices.Equal(d.Approvers, []string{policy.Requester}) || d.TTL != policy.DefaultTTL {
					t.Errorf("%s (mutating) = %+v, want confirm by the requester", spec.Name, d)
				}
			} else if d.Effect != policy.Allow {
				t.Errorf("%s (read) = %s, want allow", spec.Name, d.Effect)
			}
		}
		// An action the catalog does not know is treated as mutating.
		if d := p.Decide(policy.Input{Subject: "console:eve", Action: "shell.exec"}); d.Effect != policy.Confirm {
			t.Errorf("unknown action = %s, want confirm", d.Effect)
		}
	}
}

func TestConfirmOnReadStaysConfirm(t *testing.T) {
	p := mustParse(t, `
groups: {sre: [console:bob]}
rules:
  - name: raw queries need a look
    actions: [prometheus.query]
    when: has(params.query)
    effect: confirm
    approvers: [group:sre]
  - name: reads
    actions: [prometheus.query]
    effect: allow
`)
	d := p.Decide(policy.Input{Subject: "console:eve", Action: "prometheus.query", Params: action.Params{"query": "up"}})
	if d.Effect != policy.Confirm || !slices.Equal(d.Approvers, []string{"group:sre"}) {
		t.Errorf("raw query = %+v, want confirm by group:sre", d)
	}
	d = p.Decide(policy.Input{Subject: "console:eve", Action: "prometheus.query", Params: action.Params{"service": "checkout"}})
	if d.Effect != policy.Allow || len(d.Warnings) != 0 {
		t.Errorf("named query = %+v, want a plain allow with has() avoiding warnings", d)
	}
}

func TestConditionVariables(t *testing.T) {
	tests := []struct {
		when string
		in   policy.Input
		want bool
	}{
		{`action == "kubernetes.scale"`, policy.Input{Action: "kubernetes.scale"}, true},
		{`subject == "console:alice"`, policy.Input{Subject: "console:alice", Action: "help"}, true},
		{`subject.startsWith("slack:")`, policy.Input{Subject: "console:alice", Action: "help"}, false},
		{`channel == "console:ops"`, policy.Input{Channel: "console:ops", Action: "help"}, true},
		{`kind == "read"`, policy.Input{Action: "help"}, true},
		{`kind == "mutating"`, policy.Input{Action: "kubernetes.restart"}, true},
		{`kind == "mutating"`, policy.Input{Action: "not.in.catalog"}, true},
		{`"ops" in groups`, policy.Input{Subject: "console:alice", Action: "help"}, true},
		{`"slack-group:S1" in groups`, policy.Input{Subject: "slack:U1", Groups: []string{"slack-group:S1"}, Action: "help"}, true},
		{`size(groups) == 0`, policy.Input{Subject: "console:eve", Action: "help"}, true},
		{`params.replicas <= 50`, policy.Input{Action: "kubernetes.scale", Params: action.Params{"replicas": 50}}, true},
		{`params.replicas <= 50`, policy.Input{Action: "kubernetes.scale", Params: action.Params{"replicas": 51}}, false},
		// An error in a deny rule's condition fails closed: the rule applies.
		{`params.replicas <= 50`, policy.Input{Action: "kubernetes.scale"}, true},
		{`!has(params.replicas)`, policy.Input{Action: "kubernetes.scale"}, true},
		{`params["namespace"] == "prod"`, policy.Input{Action: "kubernetes.scale", Params: action.Params{"namespace": "prod"}}, true},
		{`params.window == "1h"`, policy.Input{Action: "prometheus.query", Params: action.Params{"window": "1h"}}, true},
		{`params.namespace in ["staging", "prod"]`, policy.Input{Action: "kubernetes.scale", Params: action.Params{"namespace": "dev"}}, false},
		// Error absorption: false && error is false, true || error is true.
		{`action == "x" && params.replicas > 1`, policy.Input{Action: "kubernetes.scale"}, false},
		{`action == "kubernetes.scale" || params.replicas > 1`, policy.Input{Action: "kubernetes.scale"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := mustParse(t, "groups: {ops: [console:alice]}\nrules:\n  - name: r\n    when: '"+strings.ReplaceAll(tt.when, "'", "''")+"'\n    effect: deny\ndefault: allow\n")
			got := p.Decide(tt.in).Rule == "r"
			if got != tt.want {
				t.Errorf("matched = %v, want %v (%+v)", got, tt.want, p.Decide(tt.in))
			}
		})
	}
}

func TestConditionCostLimit(t *testing.T) {
	digits := "[0,1,2,3,4,5,6,7,8,9]"
	when := digits + ".all(a, " + digits + ".all(b, " + digits + ".all(c, " + digits + ".all(d, a + b + c + d >= 0))))"
	p := mustParse(t, "rules:\n  - name: expensive\n    when: '"+when+"'\n    effect: allow\n")
	d := p.Decide(policy.Input{Subject: "console:eve", Action: "help"})
	if d.Effect != policy.Deny || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "cost limit") {
		t.Fatalf("Decide = %+v, want a deny with a cost-limit warning", d)
	}
}

func TestCanApprove(t *testing.T) {
	p := mustParse(t, testPolicy)
	second := policy.Decision{Effect: policy.Confirm, Rule: "r", Approvers: []string{"group:sre"}, DistinctApprover: true, TTL: time.Minute}
	own := policy.Decision{Effect: policy.Confirm, Rule: "r", Approvers: []string{"requester"}, TTL: time.Minute}
	mixed := policy.Decision{Effect: policy.Confirm, Rule: "r", Approvers: []string{"requester", "console:erin", "slack-group:S42"}, TTL: time.Minute}
	tests := []struct {
		name      string
		d         policy.Decision
		requester string
		approver  string
		groups    []string
		want      string // "" for allowed, else an error substring
	}{
		{"second sre", second, "console:alice", "console:bob", nil, ""},
		{"requester cannot be second", second, "console:alice", "console:alice", nil, "a second member of group sre must confirm; the requester cannot"},
		{"non-member", second, "console:alice", "console:eve", nil, "console:eve may not confirm this; a second member of group sre must"},
		{"member through platform group", second, "console:alice", "slack:U9", []string{"slack-group:S0614TZR7"}, ""},
		{"requester confirms own", own, "console:alice", "console:alice", nil, ""},
		{"someone else for own", own, "console:alice", "console:bob", nil, "console:bob may not confirm this; the requester (console:alice) must"},
		{"explicit id", mixed, "console:alice", "console:erin", nil, ""},
		{"explicit platform group", mixed, "console:alice", "slack:U5", []string{"slack-group:S42"}, ""},
		{"mixed requester", mixed, "console:alice", "console:alice", nil, ""},
		{"mixed refused", mixed, "console:alice", "console:zed", nil, "the requester (console:alice) or console:erin or a member of slack-group:S42 must"},
		{"not a confirmation", policy.Decision{Effect: policy.Allow}, "console:alice", "console:alice", nil, "nothing to confirm"},
		{"no approvers", policy.Decision{Effect: policy.Confirm}, "console:alice", "console:alice", nil, "names no approvers"},
		{"empty approver", own, "console:alice", "", nil, "unknown approver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CanApprove(tt.d, tt.requester, tt.approver, tt.groups)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CanApprove = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("CanApprove = nil, want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("CanApprove = %q, want it to contain %q", err, tt.want)
			case err != nil && !errors.Is(err, policy.ErrCannotApprove):
				t.Fatalf("error %v does not wrap ErrCannotApprove", err)
			}
		})
	}
}

func TestCanApproveDecisionFromDecide(t *testing.T) {
	p := mustParse(t, testPolicy)
	d := p.Decide(policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", 40)})
	if err := p.CanApprove(d, "console:alice", "console:alice", nil); err == nil {
		t.Error("the requester confirmed a distinct-approver decision")
	}
	if err := p.CanApprove(d, "console:alice", "console:bob", nil); err != nil {
		t.Errorf("a second sre may not confirm: %v", err)
	}
}

func TestPermitted(t *testing.T) {
	p := mustParse(t, testPolicy)
	tests := []struct {
		subject string
		groups  []string
		channel string
		action  string
		want    bool
	}{
		{"console:eve", nil, "console:ops", "help", true},
		{"console:eve", nil, "console:ops", "kubernetes.scale", false},
		{"console:alice", nil, "console:ops", "kubernetes.scale", true}, // conditional confirm counts
		{"console:dave", nil, "console:ops", "kubernetes.scale", false}, // unconditional deny first
		{"console:dave", nil, "console:ops", "kubernetes.status", true}, // deny does not cover reads
		{"slack:U1", nil, "slack:C0OPS", "kubernetes.restart", true},    // channel-bound allow
		{"slack:U1", nil, "slack:C0X", "kubernetes.restart", true},      // "sre staging" has only a condition on subjects: it may match
		{"slack:U1", nil, "slack:C0X", "kubernetes.scale", false},       // no rule for this
		{"console:carol", nil, "console:ml", "evaluation.run", true},    //
		{"console:carol", nil, "console:ops", "evaluation.run", false},  // channel-bound
		{"discord:5", []string{"discord-role:42"}, "discord:9", "evaluation.run", true},
		{"console:eve", nil, "console:ops", "kubernetes.restart", true}, // "sre staging" has only a condition: it may match
	}
	for _, tt := range tests {
		if got := p.Permitted(tt.subject, tt.groups, tt.channel, tt.action); got != tt.want {
			t.Errorf("Permitted(%s, %v, %s, %s) = %v, want %v", tt.subject, tt.groups, tt.channel, tt.action, got, tt.want)
		}
	}

	strict := mustParse(t, `
rules:
  - name: no scaling
    actions: [kubernetes.scale]
    effect: deny
  - name: maybe scale
    actions: [kubernetes.scale]
    when: params.replicas < 3
    effect: allow
default: allow
`)
	if strict.Permitted("console:eve", nil, "console:ops", "kubernetes.scale") {
		t.Error("an allow after an unconditional deny counted")
	}
	if !strict.Permitted("console:eve", nil, "console:ops", "kubernetes.restart") {
		t.Error("default allow did not count")
	}
}

func TestGroupsOf(t *testing.T) {
	p := mustParse(t, testPolicy)
	if got := p.GroupsOf("slack:U9", []string{"discord-role:42", "slack-group:S0614TZR7"}); !slices.Equal(got, []string{"sre", "ml"}) {
		t.Errorf("GroupsOf = %v, want [sre ml] in file order", got)
	}
	if got := p.GroupsOf("console:eve", nil); len(got) != 0 {
		t.Errorf("GroupsOf(eve) = %v, want none", got)
	}
}

func TestExplain(t *testing.T) {
	p := mustParse(t, testPolicy)
	in := policy.Input{Subject: "console:alice", Channel: "console:ops", Action: "kubernetes.scale",
		Params: action.Params{"deployment": "checkout", "namespace": "prod"}}
	ex := p.Explain(in)
	if d := p.Decide(in); ex.Decision.Effect != d.Effect || ex.Decision.Rule != d.Rule {
		t.Fatalf("Explain decided %s/%s, Decide %s/%s", ex.Decision.Effect, ex.Decision.Rule, d.Effect, d.Rule)
	}
	if len(ex.Rules) != 7 {
		t.Fatalf("explained %d rules, want all 7", len(ex.Rules))
	}
	if ex.Kind != action.Mutating || !slices.Equal(ex.Groups, []string{"sre"}) {
		t.Errorf("kind %s groups %v, want mutating [sre]", ex.Kind, ex.Groups)
	}
	byName := map[string]policy.RuleTrace{}
	for _, r := range ex.Rules {
		byName[r.Name] = r
	}
	if r := byName["auditors read only"]; r.Subjects.Matched || !r.Actions.Matched || r.Decided {
		t.Errorf("auditors rule trace = %+v", r)
	}
	if r := byName["reads"]; r.Actions.Matched || !strings.Contains(r.Actions.Detail, "kubernetes.scale is not one of") {
		t.Errorf("reads rule trace = %+v", r)
	}
	// replicas is absent: the deny rule's condition cannot be evaluated,
	// and a deny rule fails closed.
	if r := byName["prod is capped"]; r.When.Err == "" || !r.When.Matched || !r.Decided {
		t.Errorf("capped rule should record the evaluation error and decide: %+v", r)
	}
	if r := byName["prod needs a second sre"]; r.Decided || !r.When.Skipped || r.Line != 25 {
		t.Errorf("rule after the deciding one = %+v", r)
	}
	if r := byName["sre staging"]; r.Decided || !r.When.Skipped {
		t.Errorf("rule after the decision should not be evaluated: %+v", r)
	}

	out := ex.String()
	for _, want := range []string{
		"policy:  test.yaml",
		"request: console:alice runs kubernetes.scale (mutating) in console:ops",
		`params:  {"deployment":"checkout","namespace":"prod"}`,
		"groups:  sre",
		`rule 1 "auditors read only" (line 7, deny): no match`,
		"subjects  no    console:alice (group:sre) is not one of [group:auditors]",
		`rule 4 "prod is capped" (line 20, deny): MATCH, decides`,
		"deny rules fail closed",
		`rule 5 "prod needs a second sre" (line 25, confirm): not reached`,
		`rule 7 "sre staging" (line 39, allow): not reached`,
		`decision: deny (rule "prod is capped")`,
		`warning:   rule "prod is capped"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}

	def := p.Explain(policy.Input{Subject: "console:eve", Channel: "console:ops", Action: "kubernetes.scale", Params: scale("dev", 1)})
	if s := def.String(); !strings.Contains(s, "decision: deny (no rule matched: policy default)") ||
		!strings.Contains(s, "reason:    no rule allows console:eve to run kubernetes.scale in console:ops (default deny)") {
		t.Errorf("default explanation:\n%s", s)
	}
}

func TestDecideConcurrently(t *testing.T) {
	p := mustParse(t, testPolicy)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				d := p.Decide(policy.Input{Subject: "console:alice", Action: "kubernetes.scale", Params: scale("prod", i*10+j)})
				if d.Effect == policy.Allow {
					t.Errorf("mutating action allowed: %+v", d)
					return
				}
			}
		}()
	}
	wg.Wait()
}
