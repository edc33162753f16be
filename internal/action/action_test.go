package action

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func intp(n int) *int { return &n }

// Specs shaped like the built-ins (the real ones live with their
// implementations; internal/builtin tests those).
var (
	scaleSpec = Spec{Name: "kubernetes.scale", Kind: Mutating, Params: []Param{
		{Name: "deployment", Type: String, Source: Deployments, Required: true},
		{Name: "namespace", Type: String, Source: Namespaces, Required: true},
		{Name: "replicas", Type: Int, Required: true, Min: intp(0), Max: intp(1000)},
	}}
	lokiSpec = Spec{Name: "loki.query", Kind: Read, Params: []Param{
		{Name: "service", Type: String, Source: Services},
		{Name: "level", Type: Enum, Enum: []string{"error", "warn", "info", "debug"}},
		{Name: "filter", Type: String},
		{Name: "window", Type: Duration},
		{Name: "limit", Type: Int, Min: intp(1), Max: intp(5000)},
	}}
	promSpec = Spec{Name: "prometheus.query", Kind: Read, Params: []Param{
		{Name: "service", Type: String, Source: Services},
		{Name: "metric", Type: Enum, Enum: []string{"error_rate", "latency_p99"}},
		{Name: "window", Type: Duration},
	}}
	helpSpec = Spec{Name: Help, Kind: Read}
)

func TestValidate(t *testing.T) {
	scale, loki, prom := scaleSpec, lokiSpec, promSpec
	tests := []struct {
		spec    Spec
		raw     map[string]any
		want    Params
		wantErr string
	}{
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 5}, Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}, ""},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": float64(5)}, Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}, ""},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": "7"}, Params{"deployment": "checkout", "namespace": "prod", "replicas": 7}, ""},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 2.5}, nil, "whole number"},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": -1}, nil, "at least 0"},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 100000}, nil, "at most 1000"},
		{scale, map[string]any{"deployment": "checkout", "replicas": 3}, nil, "needs namespace"},
		{scale, map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 3, "force": true}, nil, `no parameter "force"`},
		{prom, map[string]any{"service": "checkout", "metric": "ERROR_RATE", "window": "60m"}, Params{"service": "checkout", "metric": "error_rate", "window": "1h"}, ""},
		{prom, map[string]any{"metric": "errors"}, nil, "must be one of"},
		{prom, map[string]any{"window": "an hour"}, nil, "invalid duration"},
		{loki, map[string]any{"service": "  ", "filter": "timeout"}, Params{"filter": "timeout"}, ""},
		{loki, map[string]any{"filter": strings.Repeat("x", 5000)}, nil, "longer than 4096"},
	}
	for _, tt := range tests {
		got, err := tt.spec.Validate(tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s %v: err = %v, want ErrInvalid containing %q", tt.spec.Name, tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Canonical() != tt.want.Canonical() {
			t.Errorf("%s %v = %v, %v; want %v", tt.spec.Name, tt.raw, got, err, tt.want)
		}
	}
}

func TestParamsRoundTrip(t *testing.T) {
	p := Params{"deployment": "checkout", "replicas": 5, "window": "1h"}
	back, err := ParseParams(p.Canonical())
	if err != nil || back.Canonical() != p.Canonical() {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if n, ok := back.Int("replicas"); !ok || n != 5 {
		t.Errorf("replicas did not come back as int: %#v", back["replicas"])
	}
	if _, err := ParseParams("{not json"); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30m": 30 * time.Minute, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "90s": 90 * time.Second, "500ms": 500 * time.Millisecond,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "h", "1x", "-5m", "0m", "1.5h", "99999999999h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 24 * time.Hour: "1d", 7 * 24 * time.Hour: "1w", 45 * time.Minute: "45m"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestJSONSchema(t *testing.T) {
	b, err := json.Marshal(scaleSpec.JSONSchema())
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Type       string                    `json:"type"`
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
		Additional bool                      `json:"additionalProperties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != "object" || s.Additional || len(s.Required) != 3 || s.Properties["replicas"]["type"] != "integer" || s.Properties["replicas"]["minimum"] != float64(0) {
		t.Errorf("schema = %s", b)
	}
}

type fakeAction struct{ spec Spec }

func (f fakeAction) Spec() Spec                                   { return f.spec }
func (f fakeAction) Run(context.Context, Request) (Result, error) { return Result{}, nil }

func TestRegistry(t *testing.T) {
	help := helpSpec
	r, err := NewRegistry(fakeAction{help})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get(Help); !ok || len(r.Specs()) != 1 {
		t.Error("registry lost the action")
	}
	if _, err := NewRegistry(fakeAction{help}, fakeAction{help}); err == nil {
		t.Error("duplicate action accepted")
	}
	if _, err := NewRegistry(fakeAction{Spec{Name: "x", Kind: "sometimes"}}); err == nil {
		t.Error("bad kind accepted")
	}
}

func TestParamPatternDefaultBool(t *testing.T) {
	spec := Spec{Name: "cdn.purge", Kind: Mutating, Params: []Param{
		{Name: "site", Type: Enum, Enum: []string{"shop", "blog"}, Required: true},
		{Name: "path", Type: String, Pattern: regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`), Default: "/"},
		{Name: "previous", Type: Bool},
	}}
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	got, err := spec.Validate(map[string]any{"site": "shop"})
	if err != nil || got["path"] != "/" {
		t.Fatalf("default not applied: %v, %v", got, err)
	}
	if _, err := spec.Validate(map[string]any{"site": "shop", "path": "/a; rm -rf /"}); err == nil || !strings.Contains(err.Error(), "must match") {
		t.Errorf("pattern not enforced: %v", err)
	}
	for in, want := range map[any]bool{"yes": true, "false": false, true: true} {
		got, err := spec.Validate(map[string]any{"site": "blog", "previous": in})
		if err != nil || got["previous"] != want {
			t.Errorf("previous %v -> %v, %v; want %v", in, got["previous"], err, want)
		}
	}
	if _, err := spec.Validate(map[string]any{"site": "blog", "previous": "maybe"}); err == nil {
		t.Error("a non-boolean was accepted")
	}
	bad := spec
	bad.Params = []Param{{Name: "n", Type: Int, Default: "x"}}
	if err := bad.Check(); err == nil {
		t.Error("a default of the wrong type passed Check")
	}
	bad.Params = []Param{{Name: "n", Type: Int, Pattern: regexp.MustCompile(`x`)}}
	if err := bad.Check(); err == nil {
		t.Error("a pattern on an integer passed Check")
	}
	schema := spec.JSONSchema()["properties"].(map[string]any)
	if schema["path"].(map[string]any)["pattern"] == nil || schema["previous"].(map[string]any)["type"] != "boolean" {
		t.Errorf("schema lacks pattern or boolean: %v", schema)
	}
}
