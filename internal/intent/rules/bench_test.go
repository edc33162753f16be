package rules

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

// benchInventory has 200 names: 3 namespaces, 120 deployments, 60
// services, 8 suites and 9 variants.
func benchInventory() intent.Inventory {
	inv := intent.Inventory{Namespaces: []string{"prod", "staging", "dev"}, Deployments: map[string][]string{}}
	words := []string{"checkout", "payments", "auth", "cart", "search", "frontend", "ledger", "billing", "inventory", "shipping", "catalog", "orders"}
	for i := 0; i < 120; i++ {
		name := fmt.Sprintf("%s-%s%d", words[i%len(words)], words[(i/len(words))%len(words)], i)
		if i < 6 {
			name = words[i]
		}
		ns := inv.Namespaces[i%3]
		inv.Deployments[ns] = append(inv.Deployments[ns], name)
		if i < 60 {
			inv.Services = append(inv.Services, name)
		}
	}
	for i := 0; i < 8; i++ {
		inv.EvalSuites = append(inv.EvalSuites, fmt.Sprintf("suite-%d", i))
	}
	inv.EvalSuites[0] = "intent-routing"
	for i := 0; i < 9; i++ {
		inv.EvalVariants = append(inv.EvalVariants, fmt.Sprintf("prompt-v%d", i))
	}
	return inv
}

var benchTexts = []string{
	"scale chekout to 5 in prod",
	"<@U123> why is paymnets slow since yesterday?",
	"show error logs for payments containing \"connection refused\" in the last 30 minutes",
	"kubectl rollout undo deployment/checkout --to-revision=3 -n prod",
	"what's the p99 latency of frontend over the past two hours",
	"run the intent-routing eval against prompt-v2 vs prompt-v1",
	"delete the prod database",
	"how many replicas does billing-cart19 have in staging?",
}

// benchCatalog is the built-in actions and a dozen user-defined ones.
func benchCatalog() []action.Spec { return append(builtin.Specs(), userSpecs()...) }

// BenchmarkRoute measures routes per second on one core with a 200-name
// inventory and the built-ins plus a dozen user-defined actions
// (go test -run=^$ -bench=Route -cpu=1 ./internal/intent/rules/).
func BenchmarkRoute(b *testing.B) {
	cat := benchCatalog()
	r := New(cat)
	inv := benchInventory()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := r.Route(ctx, intent.Query{Text: benchTexts[i%len(benchTexts)], Catalog: cat, Inventory: inv}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkRouteHuge routes a 1 MB paste: the work is capped.
func BenchmarkRouteHuge(b *testing.B) {
	cat := benchCatalog()
	r := New(cat)
	inv := benchInventory()
	text := strings.Repeat("why is chekout slow `rate(x[5m])` *bold* <@U1> ", 1<<20/48)
	q := intent.Query{Text: text, Catalog: cat, Inventory: inv}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Route(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}
