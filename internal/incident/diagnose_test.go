package incident

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent"
)

// fakeAction is a read action with a scripted behaviour; it stands in for a
// backend so the gathering logic (parallelism, deadlines, wording) is tested.
type fakeAction struct {
	name string
	run  func(ctx context.Context, p action.Params) (action.Result, error)
}

func (f *fakeAction) Spec() action.Spec { return specNamed(f.name) }
func (f *fakeAction) Run(ctx context.Context, r action.Request) (action.Result, error) {
	return f.run(ctx, r.Params)
}

type staticInventory intent.Inventory

func (s staticInventory) Inventory(context.Context) (intent.Inventory, error) {
	return intent.Inventory(s), nil
}

func TestDiagnoseGathersWhatAnswersAndSaysWhatDidNot(t *testing.T) {
	hang := &fakeAction{name: action.LokiQuery, run: func(ctx context.Context, _ action.Params) (action.Result, error) {
		<-ctx.Done() // a backend that never answers
		return action.Result{}, ctx.Err()
	}}
	prom := &fakeAction{name: action.PrometheusQuery, run: func(context.Context, action.Params) (action.Result, error) {
		return action.Result{}, fmt.Errorf("%w: set prometheus.url", action.ErrNotConfigured)
	}}
	var seenNS []string
	k8s := &fakeAction{name: action.KubernetesStatus, run: func(_ context.Context, p action.Params) (action.Result, error) {
		seenNS = append(seenNS, p.String("namespace"))
		return action.Result{
			Text:   fmt.Sprintf("checkout (%s): 2/3 ready, image shop/checkout:1.4.2, revision 4", p.String("namespace")),
			Fields: []chat.Field{{Label: "Pod restarts", Value: "5 across 3 pods"}},
		}, nil
	}}
	d := &Diagnose{
		Timeout:   50 * time.Millisecond,
		Inventory: staticInventory{Namespaces: []string{"prod"}, Deployments: map[string][]string{"prod": {"checkout"}}},
		Sources: []Source{
			{Title: "Error rate", Action: prom, Params: func(s, _, w string) (action.Params, bool) {
				return action.Params{"service": s, "metric": "error_rate", "window": w}, true
			}},
			{Title: "Error logs", Action: hang, Params: func(s, _, w string) (action.Params, bool) {
				return action.Params{"service": s, "window": w}, true
			}},
			{Title: "Kubernetes", Action: k8s, Params: func(s, ns, _ string) (action.Params, bool) {
				return action.Params{"deployment": s, "namespace": ns}, ns != ""
			}},
		},
	}
	res, err := d.Run(context.Background(), action.Request{Params: action.Params{"service": "checkout", "window": "30m"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Diagnosis of checkout (last 30m)", "only 2 of 3 replicas ready", "restarts 5 across 3 pods", "Not available: Error rate, Error logs"} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("diagnosis lacks %q: %s", want, res.Text)
		}
	}
	got := map[string]string{}
	for _, f := range res.Fields {
		got[f.Label] = f.Value
	}
	if got["Error rate"] != "not configured" || got["Error logs"] != "no answer in time" || !strings.HasPrefix(got["Kubernetes"], "checkout (prod)") {
		t.Errorf("fields = %v", got)
	}
	if len(seenNS) != 1 || seenNS[0] != "prod" {
		t.Errorf("kubernetes consulted for namespaces %v, want [prod]", seenNS)
	}
}

func TestDiagnoseNeedsAService(t *testing.T) {
	_, err := (&Diagnose{}).Run(context.Background(), action.Request{Params: action.Params{}})
	if err == nil || !strings.Contains(err.Error(), "which service") {
		t.Fatalf("err = %v", err)
	}
}
