package policies_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/actions/alertmanager"
	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/policies"
)

func silence(duration string) action.Params {
	return action.Params{"alertname": "HighErrorRate", "service": "checkout", "duration": duration}
}

func scale(ns string, replicas int) action.Params {
	return action.Params{"deployment": "checkout", "namespace": ns, "replicas": replicas}
}

func TestDefaultPolicy(t *testing.T) {
	p, err := policy.Parse(policies.Default(), policies.DefaultName, builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatalf("default policy does not parse: %v", err)
	}
	own := []string{policy.Requester}
	sre := []string{"group:sre"}
	tests := []struct {
		name      string
		in        policy.Input
		effect    policy.Effect
		approvers []string
		distinct  bool
	}{
		{"alice scales prod to 5: her own confirmation",
			policy.Input{Subject: "console:alice", Channel: "console:ops", Action: action.KubernetesScale, Params: scale("prod", 5)},
			policy.Confirm, own, false},
		{"alice scales prod to 20: still her own",
			policy.Input{Subject: "console:alice", Action: action.KubernetesScale, Params: scale("prod", 20)},
			policy.Confirm, own, false},
		{"alice scales prod to 40: a second sre",
			policy.Input{Subject: "console:alice", Channel: "console:ops", Action: action.KubernetesScale, Params: scale("prod", 40)},
			policy.Confirm, sre, true},
		{"bob scales prod to 0: a second sre",
			policy.Input{Subject: "console:bob", Action: action.KubernetesScale, Params: scale("prod", 0)},
			policy.Confirm, sre, true},
		{"alice scales staging to 40: her own",
			policy.Input{Subject: "console:alice", Action: action.KubernetesScale, Params: scale("staging", 40)},
			policy.Confirm, own, false},
		{"bob restarts prod",
			policy.Input{Subject: "console:bob", Action: action.KubernetesRestart, Params: action.Params{"deployment": "checkout", "namespace": "prod"}},
			policy.Confirm, own, false},
		{"bob rolls back staging",
			policy.Input{Subject: "console:bob", Action: action.KubernetesRollback, Params: action.Params{"deployment": "checkout", "namespace": "staging"}},
			policy.Confirm, own, false},
		{"alice cannot change an unknown namespace",
			policy.Input{Subject: "console:alice", Action: action.KubernetesRestart, Params: action.Params{"deployment": "checkout", "namespace": "dev"}},
			policy.Deny, nil, false},
		{"eve cannot scale",
			policy.Input{Subject: "console:eve", Channel: "console:ops", Action: action.KubernetesScale, Params: scale("staging", 2)},
			policy.Deny, nil, false},
		{"eve reads status",
			policy.Input{Subject: "console:eve", Channel: "console:ops", Action: action.KubernetesStatus, Params: action.Params{"deployment": "checkout", "namespace": "prod"}},
			policy.Allow, nil, false},
		{"carol runs an evaluation",
			policy.Input{Subject: "console:carol", Action: action.EvaluationRun, Params: action.Params{"suite": "intent-routing"}},
			policy.Confirm, own, false},
		{"alice cannot run an evaluation",
			policy.Input{Subject: "console:alice", Action: action.EvaluationRun, Params: action.Params{"suite": "intent-routing"}},
			policy.Deny, nil, false},
		{"carol cannot scale",
			policy.Input{Subject: "console:carol", Action: action.KubernetesScale, Params: scale("staging", 1)},
			policy.Deny, nil, false},
		{"alice silences for 1h: her own confirmation",
			policy.Input{Subject: "console:alice", Action: alertmanager.SilenceName, Params: silence("1h")},
			policy.Confirm, own, false},
		{"alice silences for 45m, 3h30m, 4h: still her own",
			policy.Input{Subject: "console:alice", Action: alertmanager.SilenceName, Params: silence("45m")},
			policy.Confirm, own, false},
		{"3h30m",
			policy.Input{Subject: "console:alice", Action: alertmanager.SilenceName, Params: silence("3h30m")},
			policy.Confirm, own, false},
		{"4h",
			policy.Input{Subject: "console:alice", Action: alertmanager.SilenceName, Params: silence("4h")},
			policy.Confirm, own, false},
		{"alice silences for 4h30m: a second sre",
			policy.Input{Subject: "console:alice", Action: alertmanager.SilenceName, Params: silence("4h30m")},
			policy.Confirm, sre, true},
		{"bob silences for a day: a second sre",
			policy.Input{Subject: "console:bob", Action: alertmanager.SilenceName, Params: silence("1d")},
			policy.Confirm, sre, true},
		{"bob silences for 1w: a second sre",
			policy.Input{Subject: "console:bob", Action: alertmanager.SilenceName, Params: silence("1w")},
			policy.Confirm, sre, true},
		{"bob ends a silence: his own",
			policy.Input{Subject: "console:bob", Action: alertmanager.ExpireName, Params: action.Params{"silence": "4b031b3b"}},
			policy.Confirm, own, false},
		{"eve cannot silence",
			policy.Input{Subject: "console:eve", Action: alertmanager.SilenceName, Params: silence("1h")},
			policy.Deny, nil, false},
		{"carol cannot end a silence",
			policy.Input{Subject: "console:carol", Action: alertmanager.ExpireName, Params: action.Params{"silence": "4b031b3b"}},
			policy.Deny, nil, false},
		{"eve reads the alerts and the pods' logs",
			policy.Input{Subject: "console:eve", Action: kubernetes.LogsName, Params: action.Params{"deployment": "payments", "namespace": "prod"}},
			policy.Allow, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.in)
			if d.Effect != tt.effect || !slices.Equal(d.Approvers, tt.approvers) || d.DistinctApprover != tt.distinct {
				t.Fatalf("Decide = %+v, want %s by %v (distinct %v)", d, tt.effect, tt.approvers, tt.distinct)
			}
			if len(d.Warnings) > 0 {
				t.Errorf("default policy produced warnings for a valid request: %q", d.Warnings)
			}
		})
	}

	// Every read action is open to anyone, nothing mutating is open to eve.
	for _, s := range builtin.Specs() {
		got := p.Permitted("console:eve", nil, "console:ops", s.Name)
		if got != (s.Kind == action.Read) {
			t.Errorf("Permitted(eve, %s) = %v, want %v", s.Name, got, s.Kind == action.Read)
		}
	}

	d := p.Decide(policy.Input{Subject: "console:alice", Action: action.KubernetesScale, Params: scale("prod", 40)})
	if err := p.CanApprove(d, "console:alice", "console:alice", nil); err == nil ||
		!strings.Contains(err.Error(), "a second member of group sre must confirm; the requester cannot") {
		t.Errorf("alice confirming her own big prod scale: %v", err)
	}
	if err := p.CanApprove(d, "console:alice", "console:bob", nil); err != nil {
		t.Errorf("bob confirming alice's big prod scale: %v", err)
	}
	if err := p.CanApprove(d, "console:alice", "console:carol", nil); err == nil {
		t.Error("carol (not sre) confirmed a prod scale")
	}
}

func TestExamplesParse(t *testing.T) {
	names := policies.ExampleNames()
	if len(names) == 0 {
		t.Fatal("no examples embedded")
	}
	for name, data := range policies.Examples() {
		t.Run(name, func(t *testing.T) {
			if _, err := policy.Parse(data, "examples/"+name, builtin.Specs(), testPlatforms); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDesignExample(t *testing.T) {
	p, err := policy.Parse(policies.Examples()["design.yaml"], "design.yaml", builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(policy.Input{Subject: "slack:U024BE7LH", Channel: "slack:C1", Action: action.KubernetesScale, Params: scale("prod", 30)})
	if d.Effect != policy.Confirm || !d.DistinctApprover {
		t.Errorf("prod scale by an sre = %+v, want a second sre", d)
	}
	d = p.Decide(policy.Input{Subject: "discord:1130000000000000001", Channel: "discord:1130000000000000002", Action: action.EvaluationRun})
	if d.Effect != policy.Confirm {
		t.Errorf("ml evaluation in its channel = %+v, want confirm", d)
	}
	d = p.Decide(policy.Input{Subject: "discord:1130000000000000001", Channel: "discord:999", Action: action.EvaluationRun})
	if d.Effect != policy.Deny {
		t.Errorf("ml evaluation elsewhere = %+v, want deny", d)
	}
}

func TestPlatformGroupsExample(t *testing.T) {
	p, err := policy.Parse(policies.Examples()["platform-groups.yaml"], "platform-groups.yaml", builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(policy.Input{Subject: "slack:U07CONTRACT", Channel: "slack:C0INCIDENTS", Action: action.KubernetesRestart})
	if d.Effect != policy.Deny || !strings.Contains(d.Reason, "read-only") {
		t.Errorf("contractor restart = %+v, want the contractors' deny", d)
	}
	d = p.Decide(policy.Input{Subject: "slack:U1", Groups: []string{"slack-group:S0614TZR7"}, Channel: "slack:C0SREOPS",
		Action: action.KubernetesScale, Params: scale("prod-eu", 3)})
	if d.Effect != policy.Confirm || !d.DistinctApprover {
		t.Errorf("slack sre prod scale = %+v, want a second sre", d)
	}
	// The incident channel's "Silence 1h" button: on-call confirms, a
	// contractor may not, anyone may read the alerts.
	d = p.Decide(policy.Input{Subject: "slack:U2", Groups: []string{"slack-group:S0B2ONCALL"}, Channel: "slack:C0INCIDENTS",
		Action: alertmanager.SilenceName, Params: silence("1h")})
	if d.Effect != policy.Confirm || !slices.Equal(d.Approvers, []string{policy.Requester}) {
		t.Errorf("on-call silence = %+v, want their own confirmation", d)
	}
	if d = p.Decide(policy.Input{Subject: "slack:U07CONTRACT", Channel: "slack:C0INCIDENTS", Action: alertmanager.SilenceName, Params: silence("1h")}); d.Effect != policy.Deny {
		t.Errorf("contractor silence = %+v, want deny", d)
	}
	if d = p.Decide(policy.Input{Subject: "slack:U07CONTRACT", Channel: "slack:C0INCIDENTS", Action: alertmanager.AlertsName}); d.Effect != policy.Allow {
		t.Errorf("contractor reads alerts = %+v, want allow", d)
	}
}

func TestLabExample(t *testing.T) {
	p, err := policy.Parse(policies.Examples()["lab.yaml"], "lab.yaml", builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(policy.Input{Subject: "console:x", Action: action.KubernetesScale, Params: scale("lab", 0)}); d.Effect != policy.Deny {
		t.Errorf("scale to zero = %+v, want deny", d)
	}
	d := p.Decide(policy.Input{Subject: "console:x", Action: action.KubernetesScale, Params: scale("lab", 2)})
	if d.Effect != policy.Confirm || !slices.Equal(d.Approvers, []string{policy.Requester}) {
		t.Errorf("default allow of a mutating action = %+v, want confirm by the requester", d)
	}
}
