package rules

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

func TestZZProbe(t *testing.T) {
	f := os.Getenv("PROBE")
	if f == "" {
		t.Skip()
	}
	inv := loadDataset(t, "../../../evals/routing.yaml").Inventory
	r := New()
	fh, _ := os.Open(f)
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		txt := sc.Text()
		if txt == "" {
			continue
		}
		got, _ := r.Route(context.Background(), intent.Query{Text: txt, Catalog: action.Catalog(), Inventory: inv})
		fmt.Printf("%-70q -> %s %v (%.2f; %s)\n", txt, got.Action, got.Params.Canonical(), got.Confidence, got.Note)
	}
}
