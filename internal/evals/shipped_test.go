package evals_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/evals"
)

// TestShippedSuites loads every suite of the project's evals folder: they
// are versioned with the code and must stay valid.
func TestShippedSuites(t *testing.T) {
	cat, err := evals.LoadCatalog(filepath.Join("..", "..", "evals"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"intent-routing": 412, "summarizer-golden": 30, "incident-extract": 20}
	for _, s := range cat.Suites {
		ds, err := s.LoadDataset(builtin.Specs())
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := want[s.Name]; ok && len(ds.Cases) < n {
			t.Errorf("%s: %d cases, want at least %d", s.Name, len(ds.Cases), n)
		}
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Fatalf("missing suites %v", want)
	}
	suites, variants := cat.Names()
	if len(suites) < 3 || !strings.Contains(strings.Join(variants, ","), "prompt-v2") {
		t.Fatalf("names %v %v", suites, variants)
	}
}
