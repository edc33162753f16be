package charttest

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
)

// metricNames parses a PromQL expression and returns the metric names it
// selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("PromQL %q: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// documentedMetrics are the parley_ names in the metric table of
// docs/operations.md, which internal/app's tests hold equal to what the
// binary exports.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	row := regexp.MustCompile("^\\| `(parley_[a-z_]+)` \\| (counter|gauge|histogram) \\|")
	for _, l := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			out[m[1]] = true
			if m[2] == "histogram" {
				for _, s := range []string{"_bucket", "_count", "_sum"} {
					out[m[1]+s] = true
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics documented in docs/operations.md", len(out))
	}
	return out
}

// checkMetric: a parley_ series must be documented; the only others used
// are Prometheus's and kube-state-metrics' own.
func checkMetric(t *testing.T, where, name string, documented map[string]bool) {
	t.Helper()
	switch {
	case strings.HasPrefix(name, "parley_"):
		if !documented[name] {
			t.Errorf("%s uses %s, which docs/operations.md does not document", where, name)
		}
	case name == "up" || name == "kube_pod_status_ready":
	default:
		t.Errorf("%s uses %s, not a Parley metric", where, name)
	}
}

func TestServiceMonitor(t *testing.T) {
	if n := len(all[*monitoringv1.ServiceMonitor](mustRender(t, []string{"testdata/values-default.yaml"}))); n != 0 {
		t.Errorf("default renders %d ServiceMonitors", n)
	}
	r := mustRender(t, []string{"testdata/values-production.yaml"})
	sm := one[*monitoringv1.ServiceMonitor](t, r)
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints = %+v", sm.Spec.Endpoints)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "http" || ep.Path != "/metrics" || ep.Interval != "30s" {
		t.Errorf("endpoint = port %q path %q interval %q", ep.Port, ep.Path, ep.Interval)
	}
	if sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("labels = %v", sm.Labels)
	}
	svc := one[*corev1.Service](t, r)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the Service has %q", k, v, svc.Labels[k])
		}
	}
}

func TestPrometheusRule(t *testing.T) {
	documented := documentedMetrics(t)
	r := mustRender(t, []string{"testdata/values-production.yaml"})
	pr := one[*monitoringv1.PrometheusRule](t, r)
	alerts := map[string]monitoringv1.Rule{}
	for _, g := range pr.Spec.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				t.Errorf("rule without an alert name: %+v", rule)
				continue
			}
			alerts[rule.Alert] = rule
			expr := rule.Expr.String()
			names := metricNames(t, expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", rule.Alert, expr)
			}
			for _, n := range names {
				checkMetric(t, rule.Alert, n, documented)
			}
			if !strings.Contains(expr, `namespace="parley"`) {
				t.Errorf("%s does not select the release namespace: %s", rule.Alert, expr)
			}
			if rule.Labels["severity"] == "" || rule.Labels["team"] != "platform" {
				t.Errorf("%s labels = %v", rule.Alert, rule.Labels)
			}
			if rule.Annotations["summary"] == "" || rule.Annotations["description"] == "" {
				t.Errorf("%s lacks a summary or description", rule.Alert)
			}
		}
	}
	for alert, want := range map[string]string{
		"ParleyChatDisconnected":   "parley_chat_connected",
		"ParleyLLMBudgetExhausted": "increase(parley_llm_budget_exhausted_total",
		"ParleyAuditWriteFailures": "increase(parley_audit_write_failures_total",
		"ParleyPodNotReady":        "kube_pod_status_ready",
		"ParleyDown":               "up{",
	} {
		rule, ok := alerts[alert]
		if !ok {
			t.Errorf("no %s alert", alert)
			continue
		}
		if !strings.Contains(rule.Expr.String(), want) {
			t.Errorf("%s = %s, want it to use %s", alert, rule.Expr.String(), want)
		}
	}
	if d := alerts["ParleyChatDisconnected"].For; d == nil || *d != "5m" {
		t.Errorf("ParleyChatDisconnected for = %v, want 5m", d)
	}
}

// grafanaDashboard is the part of the dashboard model the test reads.
type grafanaDashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestDashboard(t *testing.T) {
	documented := documentedMetrics(t)
	raw, err := os.ReadFile(chartDir + "/dashboards/parley.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Error("dashboard needs a title and uid")
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	sort.Strings(vars)
	if !slices.Equal(vars, []string{"datasource", "namespace"}) {
		t.Errorf("dashboard variables = %v", vars)
	}
	// Grafana variables become PromQL the parser accepts.
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$namespace", "parley")
	ids := map[int]bool{}
	used := map[string]bool{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range metricNames(t, grafana.Replace(tg.Expr)) {
				checkMetric(t, "panel "+p.Title, n, documented)
				used[strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")] = true
			}
		}
	}
	for _, want := range []string{"Messages by outcome", "Routes by action and router", "Route latency p95", "Action duration p95",
		"Action outcomes", "Policy decisions", "Confirmations", "LLM tokens", "LLM cost", "LLM budget exhaustion", "Chat rate-limit hits"} {
		if !titles[want] {
			t.Errorf("no %q panel", want)
		}
	}
	// Every documented metric is on the dashboard.
	for m := range documented {
		if strings.HasSuffix(m, "_bucket") || strings.HasSuffix(m, "_count") || strings.HasSuffix(m, "_sum") {
			continue
		}
		if !used[m] {
			t.Errorf("documented metric %s is on no dashboard panel", m)
		}
	}

	r := mustRender(t, []string{"testdata/values-production.yaml"})
	var cm *corev1.ConfigMap
	for _, c := range all[*corev1.ConfigMap](r) {
		if c.Name == fullname+"-dashboard" {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("dashboards.enabled but no dashboard ConfigMap")
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Parley" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v", cm.Labels, cm.Annotations)
	}
	if strings.TrimSpace(cm.Data["parley.json"]) != strings.TrimSpace(string(raw)) {
		t.Error("the ConfigMap does not carry dashboards/parley.json unchanged")
	}
}
