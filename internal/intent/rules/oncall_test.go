package rules

import (
	"context"
	"regexp"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// onCallSpecs have the shapes of the on-call actions (alerts, silences,
// pods, pod logs, recent changes), with a vocabulary such as their
// packages would declare: the router needs nothing else to route them.
func onCallSpecs() []action.Spec {
	dep := action.Param{Name: "deployment", Type: action.String, Source: action.Deployments}
	ns := action.Param{Name: "namespace", Type: action.String, Source: action.Namespaces}
	svc := action.Param{Name: "service", Type: action.String, Source: action.Services}
	one, many := 1, 5000
	return []action.Spec{
		{
			Name: "alertmanager.alerts", Kind: action.Read, Description: "Firing alerts, grouped, with how long each has fired.",
			Params: []action.Param{svc,
				{Name: "severity", Type: action.Enum, Enum: []string{"critical", "warning", "info"}},
				{Name: "alertname", Type: action.String, Words: []string{"alert", "alertname"}}},
			Examples: []action.Example{{Text: "which alerts are firing?"}},
			Vocabulary: action.Vocabulary{Cues: map[string]float64{"alerts": 3, "alert": 2.5, "firing": 2.5, "alerting": 2,
				"<severity>": 1.5, "<service>": 0.3}},
		},
		{
			Name: "alertmanager.silence", Kind: action.Mutating, Description: "Silence an alert for a while.",
			Params: []action.Param{
				{Name: "alertname", Type: action.String, Words: []string{"alert", "alertname"}},
				svc,
				{Name: "duration", Type: action.Duration, Default: "1h"},
				{Name: "comment", Type: action.String, Words: []string{"because", "comment", "reason"}}},
			Examples: []action.Example{{Text: "silence HighErrorRate for 2h", Params: map[string]any{"alertname": "HighErrorRate", "duration": "2h"}}},
			Vocabulary: action.Vocabulary{Verbs: []string{"silence", "mute", "snooze", "shush"},
				Cues: map[string]float64{"alerts": 2, "alert": 2, "silence": 2}},
		},
		{
			Name: "alertmanager.expire", Kind: action.Mutating, Description: "End a silence.",
			Params: []action.Param{{Name: "silence", Type: action.String, Required: true,
				Pattern: regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f-]{27}$`), Words: []string{"silence"}}},
			Examples:   []action.Example{{Text: "expire silence 3f1c2b9a-1111-2222-3333-444455556666"}},
			Vocabulary: action.Vocabulary{Verbs: []string{"expire", "unmute", "unsilence", "lift"}},
		},
		{
			Name: "kubernetes.pods", Kind: action.Read, Description: "Each pod of a deployment: phase, readiness, restarts, age, node.",
			Params:     []action.Param{dep, ns},
			Examples:   []action.Example{{Text: "show pods of payments", Params: map[string]any{"deployment": "payments"}}},
			Vocabulary: action.Vocabulary{Cues: map[string]float64{"pods": 3, "pod": 3, "<deployment>": 0.4}},
		},
		{
			Name: "kubernetes.logs", Kind: action.Read, Description: "Recent log lines of a deployment's pods, from the Kubernetes API.",
			Params: []action.Param{dep, ns,
				{Name: "container", Type: action.String, Words: []string{"container"}},
				{Name: "previous", Type: action.Bool, Words: []string{"previous", "crashed"}},
				{Name: "lines", Type: action.Int, Min: &one, Max: &many, Words: []string{"lines", "line", "tail", "last"}}},
			Examples: []action.Example{{Text: "pod logs of checkout", Params: map[string]any{"deployment": "checkout"}}},
			Vocabulary: action.Vocabulary{Cues: map[string]float64{"pod logs": 6, "container logs": 6, "(kubectl|k) (logs|log)": 6, // above loki.query's "logs" and its kubectl phrase
				"<previous>": 1.5, "<deployment>": 0.4}},
		},
		{
			Name: "kubernetes.changes", Kind: action.Read, Description: "What changed in a namespace in a window: rollouts, scales, restarts.",
			Params:   []action.Param{ns, {Name: "window", Type: action.Duration}},
			Examples: []action.Example{{Text: "what changed in prod in the last 2h", Params: map[string]any{"namespace": "prod", "window": "2h"}}},
			Vocabulary: action.Vocabulary{Cues: map[string]float64{"changed": 3, "changes": 3, "what changed": 2,
				"recently": 1, "<window>": 0.3}},
		},
	}
}

// TestOnCallShapes: actions of these shapes route from ordinary phrasings
// once they exist; "silence" is then a verb, not a danger, yet still needs
// something to silence.
func TestOnCallShapes(t *testing.T) {
	inv := loadDataset(t, "testdata/cases.yaml").Inventory
	specs := append(builtin.Specs(), onCallSpecs()...)
	r := New(specs)
	tests := []struct {
		text   string
		action string
		params action.Params
	}{
		{"silence HighErrorRate for 2h", "alertmanager.silence", action.Params{"alertname": "HighErrorRate", "duration": "2h"}},
		{"please mute the checkout alerts for 30m", "alertmanager.silence", action.Params{"service": "checkout", "duration": "30m"}},
		{"snooze alert DiskFull because the disk is being resized", "alertmanager.silence", action.Params{"alertname": "DiskFull"}},
		{"what changed in checkout recently?", "kubernetes.changes", nil},
		{"what changed in prod in the last 2h", "kubernetes.changes", action.Params{"namespace": "prod", "window": "2h"}},
		{"show pods of payments", "kubernetes.pods", action.Params{"deployment": "payments"}},
		{"pod logs of checkout from the previous container, last 50 lines", "kubernetes.logs",
			action.Params{"deployment": "checkout", "previous": true, "lines": 50}},
		{"kubectl logs checkout -n prod", "kubernetes.logs", action.Params{"deployment": "checkout", "namespace": "prod"}},
		{"which alerts are firing for payments?", "alertmanager.alerts", action.Params{"service": "payments"}},
		{"critical alerts", "alertmanager.alerts", action.Params{"severity": "critical"}},
		{"expire silence 3f1c2b9a-1111-2222-3333-444455556666", "alertmanager.expire", action.Params{"silence": "3f1c2b9a-1111-2222-3333-444455556666"}},
		// a verb now, but it needs something to silence, and the usual refusals hold
		{"silence the prod database", action.None, nil},
		{"silence everything", action.None, nil},
		{"should we silence HighErrorRate?", action.None, nil},
		{"don't silence HighErrorRate", action.None, nil},
		{"silence HighErrorRate and restart checkout", action.None, nil},
		{"expire the silence", action.None, nil},
		// the built-ins are unchanged beside them
		{"scale checkout to 5 in prod", action.KubernetesScale, action.Params{"deployment": "checkout", "replicas": 5}},
		{"why is payments slow?", action.IncidentDiagnose, action.Params{"service": "payments"}},
	}
	for _, tt := range tests {
		got, err := r.Route(context.Background(), intent.Query{Text: tt.text, Catalog: specs, Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		if got.Action != tt.action {
			t.Errorf("%q = %s %v (%s), want %s", tt.text, got.Action, got.Params, got.Note, tt.action)
			continue
		}
		for k, v := range tt.params {
			if want := (action.Params{k: v}).String(k); got.Params.String(k) != want {
				t.Errorf("%q: %s = %v, want %v", tt.text, k, got.Params[k], v)
			}
		}
	}
	// without a silence action the word asks for an unsupported change
	var noSilence []action.Spec
	for _, s := range builtin.Specs() {
		if s.Name != "alertmanager.silence" {
			noSilence = append(noSilence, s)
		}
	}
	got, _ := New(noSilence).Route(context.Background(), intent.Query{Text: "silence HighErrorRate for 2h", Catalog: noSilence, Inventory: inv})
	if got.Action != action.None {
		t.Errorf("without a silence action: %s, want none", got.Action)
	}
}

// TestSilenceParamsExact: a silence matches exactly what was named. One
// word fills one parameter ("HighErrorRate" is the alert, not also a
// service and a comment: a silence on service=higherrorrate would match
// nothing), and an ordinary word guessed where the alert name goes is not
// enough to silence anything.
func TestSilenceParamsExact(t *testing.T) {
	specs := builtin.Specs()
	r := New(specs)
	inv := intent.Inventory{Namespaces: []string{"prod"}, Deployments: map[string][]string{"prod": {"checkout", "payments"}},
		Services: []string{"checkout", "payments"}}
	for text, want := range map[string]action.Params{
		"silence HighErrorRate for 2h":           {"alertname": "HighErrorRate", "duration": "2h"},
		"mute DiskFillingUp":                     {"alertname": "DiskFillingUp"},
		"snooze HighLatency on checkout for 30m": {"alertname": "HighLatency", "service": "checkout", "duration": "30m"},
		"mute the payments alerts for 1h":        {"service": "payments", "duration": "1h"},
		// a ticket is the silence's comment, not an alert name
		"silence alerts for checkout for 2 hours, known issue INC-4411": {"service": "checkout", "duration": "2h", "comment": "INC-4411"},
		"silence KubePodCrashLooping for 4h because of INC-231":         {"alertname": "KubePodCrashLooping", "duration": "4h", "comment": "INC-231"},
		"mute notifications":                       nil,
		"silence my phone":                         nil,
		"kubectl logs -p deploy/checkout -c envoy": nil, // not a silence: checked below
	} {
		got, err := r.Route(context.Background(), intent.Query{Text: text, Catalog: specs, Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case text == "kubectl logs -p deploy/checkout -c envoy":
			// a boolean flag is a switch; the next token is not its value
			if got.Action != "kubernetes.logs" || got.Params.Canonical() != (action.Params{"deployment": "checkout", "previous": true, "container": "envoy"}).Canonical() {
				t.Errorf("%q = %s %s", text, got.Action, got.Params.Canonical())
			}
		case want == nil:
			if got.Action != action.None {
				t.Errorf("%q = %s %s, want none", text, got.Action, got.Params.Canonical())
			}
		case got.Action != "alertmanager.silence" || got.Params.Canonical() != want.Canonical():
			t.Errorf("%q = %s %s, want alertmanager.silence %s", text, got.Action, got.Params.Canonical(), want.Canonical())
		}
	}
}
