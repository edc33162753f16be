package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/config"
)

// Each key once per line: a repeated With key or a record key that a
// With already set replaces the earlier value.
func TestLoggerWritesEachKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(Env{Stderr: &buf}, "debug", "json")
	log = log.With("adapter", "slack", "component", "app").With("adapter", "slack")
	log.Info("sent", "adapter", "slack-2", "n", 1, "n", 2)
	log.WithGroup("req").With("id", "a").Info("grouped", "id", "b")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	if got := lines[0]; strings.Count(got, `"adapter"`) != 1 || strings.Count(got, `"n"`) != 1 ||
		!strings.Contains(got, `"adapter":"slack-2"`) || !strings.Contains(got, `"n":2`) || !strings.Contains(got, `"component":"app"`) {
		t.Errorf("line 1: %s", got)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	if req, _ := m["req"].(map[string]any); req["id"] != "b" || strings.Count(lines[1], `"id"`) != 1 {
		t.Errorf("line 2: %s", lines[1])
	}
	// The level filter still applies.
	buf.Reset()
	newLogger(Env{Stderr: &buf}, "warn", "json").Info("quiet")
	if buf.Len() != 0 {
		t.Errorf("info logged at level warn: %s", buf.String())
	}
}

// The process's owner decides where klog goes: newLogger hands it the
// logger tagged as client-go.
func TestLoggerRoutesKlog(t *testing.T) {
	var buf bytes.Buffer
	var routed *slog.Logger
	newLogger(Env{Stderr: &buf, RouteKlog: func(l *slog.Logger) { routed = l }}, "info", "json")
	if routed == nil {
		t.Fatal("klog was not routed")
	}
	routed.Info("Successfully acquired lease", "lock", "parley/parley")
	if got := buf.String(); !strings.Contains(got, `"component":"client-go"`) || !strings.Contains(got, `"msg":"Successfully acquired lease"`) {
		t.Errorf("routed line: %s", got)
	}
}

// The console banner names the cluster a session acts on: never "the
// sandbox" for a real one.
func TestClusterDescription(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
current-context: prod-admin
contexts:
- {name: prod-admin, context: {cluster: prod, user: admin}}
- {name: staging, context: {cluster: staging, user: admin}}
clusters:
- {name: prod, cluster: {server: "https://prod.example.com:6443"}}
- {name: staging, cluster: {server: "https://staging.example.com:6443"}}
users:
- {name: admin, user: {}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k    config.Kubernetes
		want string
	}{
		{config.Kubernetes{Sandbox: true}, "on the sandbox cluster (in memory; nothing real changes)"},
		{config.Kubernetes{InCluster: true}, "on the REAL cluster this pod runs in (its service account)"},
		{config.Kubernetes{Kubeconfig: kubeconfig}, `on the REAL cluster of kubeconfig context "prod-admin" at https://prod.example.com:6443`},
		{config.Kubernetes{Kubeconfig: kubeconfig, Context: "staging"}, `on the REAL cluster of kubeconfig context "staging" at https://staging.example.com:6443`},
	} {
		if got := clusterDescription(tc.k); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.k, got, tc.want)
		}
	}
}
