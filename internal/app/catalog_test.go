package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/config"
)

// TestCatalogIsTheRegistry: the offline catalog (what classify, eval
// routing, policy check and config validate read) is exactly what Build
// registers, in the same order.
func TestCatalogIsTheRegistry(t *testing.T) {
	specs, err := Catalog(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := specNames(specs), specNames(builtin.Specs()); !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want the built-ins %v", got, want)
	}
	h := newHarness(t, filepath.Join(t.TempDir(), "p.db"))
	if got := specNames(h.p.Actions.Specs()); !slices.Equal(got, specNames(specs)) {
		t.Errorf("registry %v, catalog %v", got, specNames(specs))
	}
}

// TestConfigValidateChecksActions: a channel bound to an action that does
// not exist is reported by config validate with file:line, and serve
// refuses to start on it.
func TestConfigValidateChecksActions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.yaml")
	src := "channels:\n  - id: 'console:ops'\n    actions:\n      - kubernetes.status\n      - kubectl.delete\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	env := Env{Stdout: &out, Stderr: &out}
	if code := Main(context.Background(), []string{"config", "validate", "--config", path}, env); code != 1 {
		t.Fatalf("config validate exited %d, want 1:\n%s", code, out.String())
	}
	mustContain(t, out.String(), path+`:5: channels[0].actions: unknown action "kubectl.delete" (known: help, prometheus.query`)
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = ":memory:"
	if _, err := Build(context.Background(), Options{Config: cfg}, nil); err == nil || !strings.Contains(err.Error(), `unknown action "kubectl.delete"`) {
		t.Errorf("Build = %v, want the unknown action refused", err)
	}

	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte("channels:\n  - id: 'console:ops'\n    actions: [kubernetes.status, help]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"config", "validate", "--config", ok}, env); code != 0 {
		t.Fatalf("config validate of a good file exited %d:\n%s", code, out.String())
	}
}
