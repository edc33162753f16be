package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

func TestExplicit(t *testing.T) {
	cat := append(builtin.Specs(), userSpecs()...)
	tests := []struct {
		text   string
		action string
		params action.Params
		note   string // in the note when none
	}{
		{"kubernetes.scale deployment:checkout namespace:prod replicas:5", action.KubernetesScale,
			action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}, ""},
		{"/parley cdn.purge site:shop path:/img", "cdn.purge", action.Params{"site": "shop", "path": "/img"}, ""},
		{"<@U123> /parley flags.toggle flag=dark-mode enabled=false", "flags.toggle", action.Params{"flag": "dark-mode", "enabled": false}, ""},
		{`loki.query service:checkout filter:"connection refused" window:1h`, action.LokiQuery,
			action.Params{"service": "checkout", "filter": "connection refused", "window": "1h"}, ""},
		{"prometheus.query query:`sum(rate(x[5m]))`", action.PrometheusQuery, action.Params{"query": "sum(rate(x[5m]))"}, ""},
		{"parley kubernetes.restart deployment:checkout", action.KubernetesRestart, action.Params{"deployment": "checkout"}, ""},
		// invalid values stay as typed: validation says what is allowed
		{"cdn.purge site:moon", "cdn.purge", action.Params{"site": "moon"}, ""},
		{"kubernetes.scale deployment:checkout namespace:prod replicas:many", action.KubernetesScale,
			action.Params{"deployment": "checkout", "namespace": "prod", "replicas": "many"}, ""},
		{"cdn.purge site:shop colour:red", action.None, nil, `cdn.purge has no parameter "colour"; it takes site (required, one of shop, blog, docs), path (matching`},
		{"cdn.purge site:shop site:blog", action.None, nil, "site is given twice"},
		{"cdn.explode site:shop", action.None, nil, `there is no action "cdn.explode"; the actions here are help, `},
		{"cdn.purge shop", action.None, nil, "after cdn.purge give its parameters as key:value"},
		{`cdn.purge path:"/a`, action.None, nil, "after cdn.purge"},
	}
	for _, tt := range tests {
		got, ok := Explicit(tt.text, cat)
		if !ok {
			t.Errorf("%q: not read as an explicit call", tt.text)
			continue
		}
		if got.Action != tt.action || got.Source != ExplicitSource || got.Confidence != 1 {
			t.Errorf("%q = %s (%s, %.2f), want %s", tt.text, got.Action, got.Source, got.Confidence, tt.action)
			continue
		}
		if tt.params != nil && got.Params.Canonical() != tt.params.Canonical() {
			t.Errorf("%q params = %s, want %s", tt.text, got.Params.Canonical(), tt.params.Canonical())
		}
		if tt.note != "" && !strings.Contains(got.Note, tt.note) {
			t.Errorf("%q note = %q, want it to contain %q", tt.text, got.Note, tt.note)
		}
	}
	for _, text := range []string{"scale checkout to 5", "api.example.com is down, why?", "help me with checkout",
		"what's up with v1.4.2", "restart checkout. now."} {
		if got, ok := Explicit(text, cat); ok {
			t.Errorf("%q read as an explicit call: %+v", text, got)
		}
	}
}

// TestExplicitFirst: a wrapped router is asked only for what is not an
// explicit call.
func TestExplicitFirst(t *testing.T) {
	next := &countingRouter{}
	r := ExplicitFirst(next, builtin.Specs())
	got, err := r.Route(context.Background(), intent.Query{Text: "kubernetes.status deployment:checkout"})
	if err != nil || got.Action != action.KubernetesStatus || next.n != 0 {
		t.Fatalf("explicit call: %+v %v, %d calls to the next router", got, err, next.n)
	}
	if _, err := r.Route(context.Background(), intent.Query{Text: "status of checkout"}); err != nil || next.n != 1 {
		t.Fatalf("a sentence: %v, %d calls to the next router", err, next.n)
	}
}

type countingRouter struct{ n int }

func (c *countingRouter) Route(context.Context, intent.Query) (intent.Intent, error) {
	c.n++
	return intent.Intent{Action: action.None}, nil
}
