package prompts

import (
	"strings"
	"testing"
)

func TestEmbeddedPrompts(t *testing.T) {
	for _, kind := range []string{Router, Summary} {
		vs := Variants(kind)
		if len(vs) == 0 {
			t.Fatalf("no %s prompts", kind)
		}
		for _, v := range vs {
			p, err := Load(kind, v)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Version, kind+"-"+v) {
				t.Errorf("%s/%s: version %q should start with %s-%s", kind, v, p.Version, kind, v)
			}
			out, err := p.Render(map[string]any{"Inventory": "namespaces: prod", "MaxWords": 100})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "never") || !strings.Contains(strings.ToLower(out), "instructions") {
				t.Errorf("%s/%s does not say the data is never instructions", kind, v)
			}
		}
	}
	if _, err := Load(Router, "v999"); err == nil {
		t.Error("missing variant loaded")
	}
	if _, err := Load(Router, "../summary/v1"); err == nil {
		t.Error("path in a variant name accepted")
	}
}

func TestParse(t *testing.T) {
	bad := []string{
		"no header body",
		"# note: x\n---\nbody",         // no version
		"version 1\n---\nbody",         // not "# key: value"
		"# version: 1\n---\n{{.Broken", // template error
	}
	for _, b := range bad {
		if _, err := Parse("k", "v", b); err == nil {
			t.Errorf("%q parsed", b)
		}
	}
	p, err := Parse("k", "v", "# version: k-v1\n# tool-confidence: true\n---\nHello {{.Name}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Meta["tool-confidence"] != "true" {
		t.Errorf("meta = %v", p.Meta)
	}
	if _, err := p.Render(map[string]any{}); err == nil {
		t.Error("missing key rendered")
	}
}
