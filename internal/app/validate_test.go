package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/config"
)

// TestConfigValidateLoadsWhatServeLoads: `parley config validate` loads the
// policy (checked against the actions, conditions type-checked), the
// model's prompts and the incident routes, as serve does, and refuses a
// broken one with the error serve would stop with; a good one passes and
// says what was checked.
func TestConfigValidateLoadsWhatServeLoads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodPolicy := write("good.yaml", "rules:\n  - name: sre scales prod\n    actions: [kubernetes.scale]\n    when: params.namespace == \"prod\" && params.replicas <= 50\n    effect: confirm\ndefault: deny\n")
	for _, tc := range []struct {
		name, config, want string
	}{
		{"CEL syntax error", "policy: " + write("syntax.yaml", "rules:\n  - name: r\n    when: params.namespace ==\n    effect: deny\n") + "\n",
			"syntax.yaml:3: rule \"r\": when: Syntax error"},
		{"CEL type error", "policy: " + write("typed.yaml", "rules:\n  - name: r\n    actions: [kubernetes.scale]\n    when: params.replicas > \"x\"\n    effect: deny\n") + "\n",
			"typed.yaml:4: rule \"r\": when: found no matching overload for '_>_' applied to '(int, string)'"},
		{"unknown param", "policy: " + write("param.yaml", "rules:\n  - name: r\n    actions: [kubernetes.restart]\n    when: params.replicas > 3\n    effect: deny\n") + "\n",
			"param.yaml:4: rule \"r\": when: params.replicas is not a parameter of kubernetes.restart"},
		{"missing policy file", "policy: " + filepath.Join(dir, "nope.yaml") + "\n", "nope.yaml: no such file"},
		{"unknown prompt variant", "policy: " + goodPolicy + "\nrouter: {mode: hybrid, llm: {provider: openai, model: m, api_key: {env: K}, variants: [{name: v9, weight: 1}]}}\n",
			"prompt router/v9.tmpl: no such variant"},
		{"half a Grafana link", "loki: {url: \"http://loki:3100\", grafana_url: \"https://grafana.example.com\"}\n",
			"parley.yaml: loki: set both the Grafana URL and the Loki data source uid, or neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgFile := write("parley.yaml", tc.config)
			var out, errOut strings.Builder
			env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "k" }}
			if code := Main(context.Background(), []string{"config", "validate", "--config", cfgFile}, env); code != 1 {
				t.Fatalf("config validate exited %d, want 1:\n%s%s", code, out.String(), errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("config validate said:\n%s\nwant %q", errOut.String(), tc.want)
			}
			// serve's wiring stops with the same error.
			cfg, err := config.Load(cfgFile, env.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Database = filepath.Join(dir, "p.db")
			p, err := Build(context.Background(), Options{Config: cfg}, &recorder{})
			if err == nil {
				p.Close(context.Background())
				t.Fatal("Build accepted what validate refused")
			}
			if !strings.Contains(errOut.String(), err.Error()) {
				t.Errorf("serve would say %q; validate said %q", err, errOut.String())
			}
		})
	}

	cfgFile := write("parley.yaml", "policy: "+goodPolicy+"\nrouter: {mode: hybrid, llm: {provider: openai, model: m, api_key: {env: K}, variants: [{name: v1, weight: 1}, {name: v2, weight: 1}]}}\n")
	var out, errOut strings.Builder
	if code := Main(context.Background(), []string{"config", "validate", "--config", cfgFile}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "k" }}); code != 0 {
		t.Fatalf("config validate of a good configuration exited %d:\n%s", code, errOut.String())
	}
	mustContain(t, out.String(), cfgFile+": ok", "policy: "+goodPolicy+" (checked against", "router: hybrid, prompts router/v1, router/v2, summary/v2")
}
