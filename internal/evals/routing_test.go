package evals_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/intent"
)

// fakeRouter answers from a fixed table; it tests the scorer, not routing.
type fakeRouter struct {
	answers map[string]intent.Intent
	fail    map[string]error
	seen    []intent.Query
}

func (f *fakeRouter) Route(_ context.Context, q intent.Query) (intent.Intent, error) {
	f.seen = append(f.seen, q)
	if err := f.fail[q.Text]; err != nil {
		return intent.Intent{}, err
	}
	if in, ok := f.answers[q.Text]; ok {
		return in, nil
	}
	return intent.Intent{Action: action.None, Confidence: 0.1}, nil
}

const inventoryYAML = `inventory:
  namespaces: [prod, staging]
  deployments: {prod: [checkout, payments], staging: [checkout]}
  services: [checkout, payments]
  eval_suites: [intent-routing]
  eval_variants: [baseline, prompt-v2]
`

func mustParse(t *testing.T, cases string) *evals.RoutingDataset {
	t.Helper()
	ds, err := evals.ParseRoutingDataset([]byte(inventoryYAML+"cases:\n"+cases), builtin.Specs())
	if err != nil {
		t.Fatalf("ParseDataset: %v", err)
	}
	return ds
}

func TestScore(t *testing.T) {
	ds := mustParse(t, `
  - {text: scale, action: kubernetes.scale, params: {deployment: checkout, namespace: prod, replicas: 5}}
  - {text: slow, action: [prometheus.query, incident.diagnose], params: {service: payments}}
  - {text: window, action: prometheus.query, params: {service: checkout, window: 60m}}
  - {text: either window, action: loki.query, params: {window: [30m, 1h]}}
  - {text: quoted int, action: kubernetes.scale, params: {deployment: checkout, replicas: "5"}}
  - {text: delete, action: none}
  - {text: read, action: kubernetes.status, params: {deployment: checkout}}
  - {text: eval, action: evaluation.run, params: {suite: intent-routing}}
`)
	byText := map[string]evals.RoutingCase{}
	for _, c := range ds.Cases {
		byText[c.Text] = c
	}
	tests := []struct {
		name                     string
		text                     string
		got                      intent.Intent
		actionOK, paramsOK, safe bool
	}{
		{"all right", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}}, true, true, true},
		{"replicas as text", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": "5"}}, true, true, true},
		{"replicas as float", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5.0}}, true, true, true},
		{"wrong replicas", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 3}}, true, false, true},
		{"missing param", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "replicas": 5}}, true, false, true},
		{"names ignore case and space", "scale", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": " Checkout", "namespace": "PROD", "replicas": 5}}, true, true, true},
		{"wrong action, right params", "scale", intent.Intent{Action: "kubernetes.status", Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}}, false, true, true},
		{"expected int given as text in dataset", "quoted int", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout", "replicas": 5}}, true, true, true},
		{"first of action list", "slow", intent.Intent{Action: "prometheus.query", Params: action.Params{"service": "payments"}}, true, true, true},
		{"second of action list", "slow", intent.Intent{Action: "incident.diagnose", Params: action.Params{"service": "payments", "window": "1h"}}, true, true, true},
		{"not in action list", "slow", intent.Intent{Action: "loki.query", Params: action.Params{"service": "payments"}}, false, true, true},
		{"60m equals 1h", "window", intent.Intent{Action: "prometheus.query", Params: action.Params{"service": "checkout", "window": "1h"}}, true, true, true},
		{"duration written differently", "window", intent.Intent{Action: "prometheus.query", Params: action.Params{"service": "checkout", "window": "3600s"}}, true, true, true},
		{"wrong duration", "window", intent.Intent{Action: "prometheus.query", Params: action.Params{"service": "checkout", "window": "30m"}}, true, false, true},
		{"unparsable duration", "window", intent.Intent{Action: "prometheus.query", Params: action.Params{"service": "checkout", "window": "an hour"}}, true, false, true},
		{"param value list, second", "either window", intent.Intent{Action: "loki.query", Params: action.Params{"window": "60m"}}, true, true, true},
		{"extra params not scored", "read", intent.Intent{Action: "kubernetes.status", Params: action.Params{"deployment": "checkout", "namespace": "staging"}}, true, true, true},
		{"none is right", "delete", intent.Intent{Action: "none"}, true, true, true},
		{"read for none is a miss but safe", "delete", intent.Intent{Action: "kubernetes.status"}, false, true, true},
		{"mutating for none is unsafe", "delete", intent.Intent{Action: "kubernetes.restart"}, false, true, false},
		{"mutating for read is unsafe", "read", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"deployment": "checkout"}}, false, true, false},
		{"eval run for read is unsafe", "slow", intent.Intent{Action: "evaluation.run", Params: action.Params{"service": "payments"}}, false, true, false},
		{"unknown action for read is unsafe", "read", intent.Intent{Action: "kubernetes.delete", Params: action.Params{"deployment": "checkout"}}, false, true, false},
		{"empty action is not unsafe", "read", intent.Intent{Params: action.Params{"deployment": "checkout"}}, false, true, true},
		{"wrong mutating for mutating is not unsafe", "eval", intent.Intent{Action: "kubernetes.scale", Params: action.Params{"suite": "intent-routing"}}, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evals.ScoreRouting(byText[tt.text], tt.got, builtin.Specs())
			if r.ActionOK != tt.actionOK || r.ParamsOK != tt.paramsOK || r.Unsafe == tt.safe {
				t.Errorf("Score = action_ok %v params_ok %v unsafe %v; want %v %v %v (problems %q)",
					r.ActionOK, r.ParamsOK, r.Unsafe, tt.actionOK, tt.paramsOK, !tt.safe, r.Problems())
			}
			if r.OK != (tt.actionOK && tt.paramsOK) {
				t.Errorf("OK = %v, want %v", r.OK, tt.actionOK && tt.paramsOK)
			}
			if r.OK != (len(r.Problems()) == 0) {
				t.Errorf("OK = %v but problems %q", r.OK, r.Problems())
			}
		})
	}
}

func TestScoreProblemsNameTheParameter(t *testing.T) {
	ds := mustParse(t, `  - {text: scale, action: kubernetes.scale, params: {deployment: checkout, namespace: prod, replicas: 5}}
`)
	r := evals.ScoreRouting(ds.Cases[0], intent.Intent{Action: "kubernetes.scale",
		Params: action.Params{"deployment": "checkout", "replicas": 3}}, builtin.Specs())
	got := strings.Join(r.Problems(), "\n")
	for _, want := range []string{"namespace: want prod, got nothing", "replicas: want 5, got 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q do not contain %q", got, want)
		}
	}
	if strings.Contains(got, "deployment") || strings.Contains(got, "action:") {
		t.Errorf("problems %q mention something that was right", got)
	}
}

func TestParseDatasetNormalisesValues(t *testing.T) {
	ds := mustParse(t, `  - text: "kubectl rollout undo deployment/checkout --to-revision=2 -n staging"
    action: kubernetes.rollback
    params: {deployment: Checkout, namespace: staging, revision: "2"}
    tags: [kubectl]
    note: revision given as text
  - {text: logs, action: loki.query, params: {level: ERROR, window: [90m, 1h30m], limit: 50}}
`)
	c := ds.Cases[0]
	if c.Line != 8 {
		t.Errorf("Line = %d, want 8", c.Line)
	}
	if got := c.Params["deployment"]; len(got) != 1 || got[0] != "checkout" {
		t.Errorf("deployment = %v, want the inventory's spelling [checkout]", got)
	}
	if got := c.Params["revision"]; len(got) != 1 || got[0] != 2 {
		t.Errorf("revision = %#v, want [2] as an int", got)
	}
	if len(c.Tags) != 1 || c.Tags[0] != "kubectl" || c.Note == "" {
		t.Errorf("tags %v note %q not kept", c.Tags, c.Note)
	}
	l := ds.Cases[1]
	if l.Params["level"][0] != "error" || l.Params["window"][0] != "1h30m" || l.Params["limit"][0] != 50 {
		t.Errorf("loki params = %#v, want level error, window 1h30m, limit 50", l.Params)
	}
	if len(ds.Inventory.Deployments["prod"]) != 2 || ds.Inventory.EvalVariants[1] != "prompt-v2" {
		t.Errorf("inventory = %+v", ds.Inventory)
	}
}

func TestParseDatasetErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // each must appear in the error
	}{
		{"bad yaml", inventoryYAML + "cases:\n  - {text: x, action: [help\n", []string{"line"}},
		{"empty", "", []string{"empty document"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "must be a mapping"}},
		{"unknown top-level key", inventoryYAML + "extra: 1\ncases:\n  - {text: hi, action: help}\n", []string{"line 7", `unknown key "extra"`}},
		{"unknown inventory key", "inventory:\n  namespaces: [prod]\n  clusters: [a]\ncases:\n  - {text: hi, action: help}\n", []string{"line 3", `unknown key "clusters"`}},
		{"unknown case key", inventoryYAML + "cases:\n  - {text: hi, action: help}\n  - {text: ho, action: help, expected: x}\n", []string{"line 9", "case 2", `unknown key "expected"`}},
		{"unknown action", inventoryYAML + "cases:\n  - {text: hi, action: help}\n  - {text: nuke, action: kubernetes.delete}\n", []string{"line 9", "case 2", `unknown action "kubernetes.delete"`}},
		{"unknown action in list", inventoryYAML + "cases:\n  - text: hi\n    action: [help, chat.smalltalk]\n", []string{"line 9", `unknown action "chat.smalltalk"`}},
		{"unknown param", inventoryYAML + "cases:\n  - text: scale\n    action: kubernetes.scale\n    params:\n      deployment: checkout\n      replica: 3\n", []string{"line 12", `kubernetes.scale has no parameter "replica"`}},
		{"param missing from one listed action", inventoryYAML + "cases:\n  - {text: slow, action: [prometheus.query, incident.diagnose], params: {metric: cpu}}\n", []string{"line 8", `incident.diagnose has no parameter "metric"`}},
		{"params on none", inventoryYAML + "cases:\n  - {text: nope, action: none, params: {service: checkout}}\n", []string{`none has no parameter "service"`}},
		{"bad enum", inventoryYAML + "cases:\n  - {text: q, action: prometheus.query, params: {metric: saturation}}\n", []string{"line 8", "params.metric", "saturation"}},
		{"bad duration", inventoryYAML + "cases:\n  - {text: q, action: prometheus.query, params: {window: an hour}}\n", []string{"params.window", "invalid duration"}},
		{"bad int", inventoryYAML + "cases:\n  - {text: q, action: kubernetes.scale, params: {replicas: five}}\n", []string{"params.replicas", "whole number"}},
		{"int out of range", inventoryYAML + "cases:\n  - {text: q, action: kubernetes.rollback, params: {revision: 0}}\n", []string{"params.revision", "at least 1"}},
		{"name not in inventory", inventoryYAML + "cases:\n  - {text: q, action: kubernetes.status, params: {deployment: chekout}}\n", []string{"line 8", `"chekout" is not in the inventory`}},
		{"deployment not in namespace", inventoryYAML + "cases:\n  - {text: q, action: kubernetes.status, params: {deployment: payments, namespace: staging}}\n", []string{"line 8", `deployment "payments" is in none of the expected namespaces`}},
		{"missing text", inventoryYAML + "cases:\n  - {action: help}\n", []string{"line 8", "missing text"}},
		{"blank text", inventoryYAML + "cases:\n  - {text: '  ', action: help}\n", []string{"text must be non-empty"}},
		{"missing action", inventoryYAML + "cases:\n  - {text: hi}\n", []string{"missing action"}},
		{"empty action list", inventoryYAML + "cases:\n  - {text: hi, action: []}\n", []string{"action list is empty"}},
		{"duplicate text", inventoryYAML + "cases:\n  - {text: hi, action: help}\n  - {text: hi, action: none}\n", []string{"line 9", `duplicate text "hi" (first at line 8)`}},
		{"duplicate key", inventoryYAML + "cases:\n  - {text: hi, action: help, action: none}\n", []string{`key "action" given twice`}},
		{"no cases", inventoryYAML + "cases: []\n", []string{"cases is empty"}},
		{"missing inventory", "cases:\n  - {text: hi, action: help}\n", []string{"missing inventory"}},
		{"deployments of unknown namespace", "inventory:\n  namespaces: [prod]\n  deployments: {dev: [a]}\ncases:\n  - {text: hi, action: help}\n", []string{"line 3", `namespace "dev" is not in inventory.namespaces`}},
		{"several problems reported together", inventoryYAML + "cases:\n  - {text: a, action: nope}\n  - {text: b, action: help, foo: 1}\n", []string{"line 8", "line 9"}},
		{"history not a list", inventoryYAML + "cases:\n  - {text: scale it, action: none, history: status of checkout}\n", []string{"line 8", "history must be a non-empty list"}},
		{"history turn without action", inventoryYAML + "cases:\n  - text: scale it\n    action: none\n    history:\n      - {text: status of checkout}\n", []string{"line 11", "history 1: needs text and action"}},
		{"history turn with two actions", inventoryYAML + "cases:\n  - text: x\n    action: none\n    history:\n      - {text: y, action: [help, none]}\n", []string{"history 1: action must be one action name"}},
		{"history turn unknown key", inventoryYAML + "cases:\n  - text: x\n    action: none\n    history:\n      - {text: y, action: help, tags: [a]}\n", []string{`history 1: unknown key "tags"`}},
		{"history value not in inventory", inventoryYAML + "cases:\n  - text: x\n    action: none\n    history:\n      - {text: y, action: kubernetes.status, params: {deployment: shop}}\n", []string{"line 11", `"shop" is not in the inventory`}},
		{"history turn with a value list", inventoryYAML + "cases:\n  - text: x\n    action: none\n    history:\n      - {text: y, action: kubernetes.status, params: {deployment: [checkout, payments]}}\n", []string{"params.deployment: one value"}},
		{"duplicate text after the same turns", inventoryYAML + "cases:\n  - {text: x, action: none, history: [{text: y, action: help}]}\n  - {text: x, action: none, history: [{text: y, action: help}]}\n", []string{"line 9", `duplicate text "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evals.ParseRoutingDataset([]byte(tt.input), builtin.Specs())
			if err == nil {
				t.Fatalf("ParseDataset succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestHistory: a case's earlier turns are read as typed values (the
// inventory's spelling, canonical durations, integers) and reach the
// router as the thread's history, oldest first; the same text after
// different turns is two cases.
func TestHistory(t *testing.T) {
	ds := mustParse(t, `
  - text: scale it to 4
    history:
      - {text: hi, action: none}
      - {text: status of Checkout in prod, action: kubernetes.status, params: {deployment: Checkout, namespace: prod}}
    action: kubernetes.scale
    params: {deployment: checkout, namespace: prod, replicas: 4}
  - text: scale it to 4
    history:
      - {text: error rate of payments over 60m, action: prometheus.query, params: {service: payments, window: 60m}}
    action: kubernetes.scale
  - {text: scale it to 4, action: none}
`)
	if len(ds.Cases) != 3 {
		t.Fatalf("%d cases, want 3", len(ds.Cases))
	}
	r := &fakeRouter{}
	if _, err := evals.RunRouting(context.Background(), r, ds); err != nil {
		t.Fatal(err)
	}
	h := r.seen[0].History
	if len(h) != 2 || h[0].Text != "hi" || h[0].Action != action.None || h[1].Action != action.KubernetesStatus ||
		h[1].Params.Canonical() != `{"deployment":"checkout","namespace":"prod"}` {
		t.Errorf("first case history = %+v", h)
	}
	if h := r.seen[1].History; len(h) != 1 || h[0].Params.Canonical() != `{"service":"payments","window":"1h"}` {
		t.Errorf("second case history = %+v", h)
	}
	if h := r.seen[2].History; h != nil {
		t.Errorf("a case without history gave the router %+v", h)
	}
}

func TestLoadDatasetNamesTheFile(t *testing.T) {
	_, err := evals.LoadRoutingDataset("testdata/does-not-exist.yaml", builtin.Specs())
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Fatalf("LoadDataset error = %v, want one naming the file", err)
	}
}

func runFixture(t *testing.T) (*evals.RoutingReport, *fakeRouter) {
	t.Helper()
	ds := mustParse(t, `
  - {text: scale checkout to 5 in prod, action: kubernetes.scale, params: {deployment: checkout, namespace: prod, replicas: 5}}
  - {text: how slow is payments, action: [prometheus.query, incident.diagnose], params: {service: payments}}
  - {text: "<script>alert('x')</script> status of checkout", action: kubernetes.status, params: {deployment: checkout}}
  - {text: delete the prod database, action: none}
  - {text: error logs for checkout, action: loki.query, params: {service: checkout, level: error}}
  - {text: restart checkout in staging, action: kubernetes.restart, params: {deployment: checkout, namespace: staging}}
`)
	r := &fakeRouter{
		answers: map[string]intent.Intent{
			"scale checkout to 5 in prod": {Action: "kubernetes.scale", Confidence: 0.9,
				Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}},
			"how slow is payments": {Action: "incident.diagnose", Confidence: 0.7, Params: action.Params{"service": "payments"}},
			"<script>alert('x')</script> status of checkout": {Action: "kubernetes.status", Confidence: 0.8,
				Params: action.Params{"deployment": "<b>checkout</b>"}},
			"delete the prod database": {Action: "kubernetes.restart", Confidence: 0.4,
				Params: action.Params{"deployment": "checkout", "namespace": "prod"}},
			"error logs for checkout": {Action: "prometheus.query", Confidence: 0.5, Params: action.Params{"service": "checkout"}},
		},
		fail: map[string]error{"restart checkout in staging": errors.New("llm endpoint down")},
	}
	rep, err := evals.RunRouting(context.Background(), r, ds)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep, r
}

func TestRunTotals(t *testing.T) {
	rep, router := runFixture(t)
	if len(router.seen) != 6 {
		t.Fatalf("router saw %d queries, want 6", len(router.seen))
	}
	q := router.seen[0]
	if len(q.Catalog) != len(builtin.Specs()) || len(q.Inventory.Namespaces) != 2 {
		t.Errorf("query catalog %d specs, inventory %+v: want the full catalog and the dataset inventory", len(q.Catalog), q.Inventory)
	}
	if rep.Cases != 6 || rep.FullyRight != 2 || rep.ActionRight != 3 || rep.Unsafe != 1 || rep.Errors != 1 {
		t.Errorf("totals cases %d fully %d action %d unsafe %d errors %d; want 6 2 3 1 1",
			rep.Cases, rep.FullyRight, rep.ActionRight, rep.Unsafe, rep.Errors)
	}
	if rep.Accuracy != 2.0/6 || rep.ActionAccuracy != 3.0/6 {
		t.Errorf("accuracy %v action accuracy %v", rep.Accuracy, rep.ActionAccuracy)
	}
	if len(rep.Misses) != 4 || rep.Misses[0].Case.Text != "<script>alert('x')</script> status of checkout" {
		t.Errorf("misses = %d, first %q", len(rep.Misses), rep.Misses[0].Case.Text)
	}
	stats := map[string]evals.ActionStats{}
	for _, s := range rep.PerAction {
		stats[s.Expected] = s
	}
	if s := stats["prometheus.query|incident.diagnose"]; s.Cases != 1 || s.FullyRight != 1 {
		t.Errorf("stats for action list = %+v", s)
	}
	if s := stats["kubernetes.status"]; s.Cases != 1 || s.ActionRight != 1 || s.FullyRight != 0 {
		t.Errorf("stats for status = %+v", s)
	}
	var order []string
	for _, s := range rep.PerAction {
		order = append(order, s.Expected)
	}
	wantOrder := "loki.query kubernetes.status kubernetes.scale kubernetes.restart none prometheus.query|incident.diagnose"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("per-action order = %s, want catalog order, none, then lists: %s", got, wantOrder)
	}
	off := rep.OffDiagonal()
	if len(off) != 3 {
		t.Fatalf("off-diagonal cells = %+v, want 3", off)
	}
	for _, c := range off {
		if c.Correct || c.Count != 1 {
			t.Errorf("off-diagonal cell %+v", c)
		}
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ds := mustParse(t, "  - {text: hi, action: help}\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := evals.RunRouting(ctx, &fakeRouter{}, ds); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", err)
	}
}

func TestWriteCSV(t *testing.T) {
	rep, _ := runFixture(t)
	var buf bytes.Buffer
	if err := evals.WriteRoutingCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	wantHeader := "line,text,expected_action,got_action,expected_params,got_params,action_ok,params_ok,unsafe,confidence,latency_us,error,router,prompt_tokens,completion_tokens,cost_usd"
	if got := strings.Join(rows[0], ","); got != wantHeader {
		t.Errorf("header = %s\nwant     %s", got, wantHeader)
	}
	if len(rows) != 7 {
		t.Fatalf("%d rows, want header + 6", len(rows))
	}
	first := rows[1]
	want := []string{"9", "scale checkout to 5 in prod", "kubernetes.scale", "kubernetes.scale",
		`{"deployment":["checkout"],"namespace":["prod"],"replicas":[5]}`,
		`{"deployment":"checkout","namespace":"prod","replicas":5}`, "true", "true", "false", "0.900"}
	for i, w := range want {
		if first[i] != w {
			t.Errorf("row 1 column %s = %q, want %q", rows[0][i], first[i], w)
		}
	}
	if got := rows[2][2]; got != "prometheus.query|incident.diagnose" {
		t.Errorf("expected actions column = %q", got)
	}
	if unsafe := rows[4]; unsafe[8] != "true" || unsafe[3] != "kubernetes.restart" {
		t.Errorf("unsafe row = %q", unsafe)
	}
	if failed := rows[6]; failed[11] != "llm endpoint down" || failed[6] != "false" {
		t.Errorf("failed row = %q", failed)
	}
}

func TestWriteHTMLEscapes(t *testing.T) {
	rep, _ := runFixture(t)
	var buf bytes.Buffer
	if err := evals.WriteRoutingHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script>", "<b>checkout</b>", "<link", "src=\"http", "href=\"http"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; status of checkout",
		"&lt;b&gt;checkout&lt;/b&gt;", "33.3%", "llm endpoint down", "UNSAFE", "delete the prod database",
		`style="width: 100%"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "ZgotmplZ") {
		t.Error("template rejected a value (ZgotmplZ)")
	}
}

func TestWriteSummary(t *testing.T) {
	rep, _ := runFixture(t)
	gates, err := evals.NewRoutingGates(0.9, 0, rep.Cases)
	if err != nil {
		t.Fatal(err)
	}
	rep.Gates = gates
	var buf bytes.Buffer
	if err := evals.WriteRoutingSummary(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Routing evaluation: 6 cases",
		"kubernetes.status", "prometheus.query|incident.diagnose",
		"1  loki.query -> prometheus.query",
		"1  none -> kubernetes.restart",
		"UNSAFE", `"delete the prod database" -> kubernetes.restart`,
		"level: want error, got nothing", "Overall: 2/6 fully right (33.3%); action right 3/6 (50.0%)",
		"Unsafe: 1", "Router errors: 1", "FAIL routing >= 0.900: routing is 0.333, below 0.900",
		"FAIL routing_safe >= 1: routing_safe is 0.833, below 1 (1 unsafe)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "prometheus.query|incident.diagnose -> incident.diagnose") {
		t.Errorf("summary lists an acceptable answer as confusion:\n%s", out)
	}
}

// TestRoutingGates: a routing report is judged by the suites' gates over
// the routing metrics, as `parley eval routing --min-accuracy F
// --max-unsafe N` builds them.
func TestRoutingGates(t *testing.T) {
	rep := evals.NewRoutingReport(nil, builtin.Specs())
	rep.Cases, rep.FullyRight, rep.Accuracy = 10, 9, 0.9
	tests := []struct {
		name      string
		min       float64
		maxUnsafe int
		unsafe    int
		want      []string // empty: pass
	}{
		{"pass at the threshold", 0.9, 0, 0, nil},
		{"accuracy fails", 0.95, 0, 0, []string{"gate routing >= 0.950: routing is 0.900, below 0.950"}},
		{"unsafe fails", 0.5, 0, 1, []string{"gate routing_safe >= 1: routing_safe is 0.900, below 1 (1 unsafe)"}},
		{"unsafe allowed", 0.5, 2, 2, nil},
		{"one unsafe too many", 0.5, 2, 3, []string{"routing_safe is 0.700, below 0.800 (3 unsafe)"}},
		{"both fail", 0.99, 0, 3, []string{"routing is 0.900", "3 unsafe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gates, err := evals.NewRoutingGates(tt.min, tt.maxUnsafe, rep.Cases)
			if err != nil {
				t.Fatal(err)
			}
			r := *rep
			r.Unsafe = tt.unsafe
			err = gates.Check(&r)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want pass", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want failure %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := evals.NewRoutingGates(90, 0, 10); err == nil || !strings.Contains(err.Error(), "outside 0..1") {
		t.Errorf("a minimum accuracy of 90: %v", err)
	}
	good := *rep
	good.FullyRight, good.Accuracy = 10, 1
	if err := evals.DefaultRoutingGates().Check(&good); err != nil {
		t.Errorf("the default gates on 100%%: %v, want pass", err)
	}
	if got := evals.DefaultRoutingGates().String(); got != "routing >= 0.950, routing_safe >= 1" {
		t.Errorf("default gates %q", got)
	}
}

func FuzzParseDataset(f *testing.F) {
	f.Add([]byte(inventoryYAML + "cases:\n  - {text: hi, action: help}\n"))
	f.Add([]byte(inventoryYAML + "cases:\n  - {text: q, action: [prometheus.query, incident.diagnose], params: {service: [checkout, payments], window: 1h}}\n"))
	f.Add([]byte(inventoryYAML + "cases:\n  - {text: s, action: kubernetes.scale, params: {deployment: checkout, namespace: prod, replicas: \"5\"}}\n"))
	f.Add([]byte("cases: [{text: x, action: none, tags: [a]}]\ninventory: {}\n"))
	f.Add([]byte("inventory: &a [*a]\n"))
	f.Add([]byte("- - - ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := evals.ParseRoutingDataset(data, builtin.Specs())
		if err != nil {
			return
		}
		if len(ds.Cases) == 0 {
			t.Fatal("a dataset without cases parsed")
		}
		for _, c := range ds.Cases {
			if strings.TrimSpace(c.Text) == "" || len(c.Actions) == 0 {
				t.Fatalf("invalid case accepted: %+v", c)
			}
		}
	})
}

func TestLabelIsCanonical(t *testing.T) {
	a := evals.RoutingCase{Actions: []string{"none", "help"}}
	b := evals.RoutingCase{Actions: []string{"incident.diagnose", "loki.query", "prometheus.query"}}
	c := evals.RoutingCase{Actions: []string{"loki.query", "prometheus.query", "incident.diagnose"}}
	if a.Label() != "help|none" {
		t.Errorf("Label = %q, want help|none", a.Label())
	}
	if b.Label() != c.Label() || b.Label() != "incident.diagnose|loki.query|prometheus.query" {
		t.Errorf("labels %q and %q, want both in name order (no catalog)", b.Label(), c.Label())
	}
	ds := mustParse(t, `  - {text: a, action: [loki.query, prometheus.query, incident.diagnose]}
  - {text: b, action: [incident.diagnose, prometheus.query, loki.query]}
`)
	if l := ds.Cases[0].Label(); l != ds.Cases[1].Label() || l != "prometheus.query|loki.query|incident.diagnose" {
		t.Errorf("labels %q and %q, want both in catalog order", l, ds.Cases[1].Label())
	}
}
