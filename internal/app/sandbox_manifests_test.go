package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/config"
)

// TestSandboxManifestsWithUnservedKinds: a team points the sandbox at its
// real manifests, which hold an Ingress and a PodDisruptionBudget beside
// the Deployment. Parley starts, says in its log which objects it left
// out, and answers about the Deployment.
func TestSandboxManifestsWithUnservedKinds(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "shop.yaml")
	if err := os.WriteFile(manifests, []byte(`apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: prod}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: prod}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Database = filepath.Join(dir, "p.db")
	cfg.Kubernetes.Manifests = manifests
	logs := &logBuffer{}
	out := &recorder{}
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	p, err := Build(context.Background(), Options{Config: cfg, Now: c.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))}, out)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	log := logs.String()
	for _, want := range []string{"level=WARN", "left out objects of API groups it does not serve", "count=2",
		"document 3 (Ingress prod/web)", "document 4 (PodDisruptionBudget prod/web)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	h := &harness{t: t, p: p, out: out, clock: c}
	got := h.say("alice", "ops", "status of web in prod")
	mustContain(t, got, "web (prod)")
}

// TestSandboxManifestsThatDoNotLoadStopTheStart: the sandbox is built
// while the rest is wired; manifests it cannot load still stop Parley from
// starting, with the sandbox's error.
func TestSandboxManifestsThatDoNotLoadStopTheStart(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"missing.yaml": "",
		"broken.yaml":  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec: {replicas: two}\n",
	} {
		t.Run(name, func(t *testing.T) {
			manifests := filepath.Join(dir, name)
			if content != "" {
				if err := os.WriteFile(manifests, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := config.Default()
			cfg.Database = filepath.Join(dir, name+".db")
			cfg.Kubernetes.Manifests = manifests
			p, err := Build(context.Background(), Options{Config: cfg}, &recorder{})
			if err == nil {
				p.Close(context.Background())
				t.Fatal("Parley started on manifests the sandbox cannot load")
			}
			if !strings.Contains(err.Error(), "sandbox") || !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), "replicas") {
				t.Errorf("error %q does not say what the sandbox could not load", err)
			}
			if content == "" && !strings.Contains(err.Error(), "kubernetes.manifests") {
				t.Errorf("error %q does not name the setting to fix", err)
			}
		})
	}
}
