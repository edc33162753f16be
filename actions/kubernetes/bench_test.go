package kubernetes

import (
	"context"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// BenchmarkSandbox measures the Kubernetes actions against the demo shop in
// the sandbox, as `parley chat` and `parley serve` run them in the demo:
// each iteration is one request, from the client lookup to the reply.
//
//	go test -run '^$' -bench Sandbox -benchmem ./actions/kubernetes
func BenchmarkSandbox(b *testing.B) {
	k := newOncallKit(b)
	ctx := context.Background()
	read := func(a action.Action, p action.Params) func(b *testing.B) {
		return func(b *testing.B) {
			r := req(a.Spec().Name, p)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Run(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("status", read(k.status, action.Params{"namespace": "prod", "deployment": "checkout"}))
	b.Run("status-unhealthy", read(k.status, action.Params{"namespace": "prod", "deployment": "payments"}))
	b.Run("status-no-namespace", read(k.status, action.Params{"deployment": "search"}))
	b.Run("status-namespace", read(k.status, action.Params{"namespace": "prod"}))
	b.Run("logs", read(k.logs, action.Params{"namespace": "prod", "deployment": "checkout"}))
	b.Run("logs-500-lines", read(k.logs, action.Params{"namespace": "prod", "deployment": "frontend", "lines": MaxLogLines}))
	b.Run("logs-previous", read(k.logs, action.Params{"namespace": "prod", "deployment": "payments", "previous": true}))
	b.Run("pods", read(k.pods, action.Params{"namespace": "prod", "deployment": "payments"}))
	b.Run("scale-plan", func(b *testing.B) {
		// The confirmation path: read, server-side dry run, autoscaler check.
		r := req(action.KubernetesScale, action.Params{"namespace": "prod", "deployment": "checkout", "replicas": 5})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.scale.Plan(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scale-run", func(b *testing.B) {
		// A confirmed scale: the write and the sandbox's controller
		// settling the ReplicaSets and pods, up and down in turn.
		up := req(action.KubernetesScale, action.Params{"namespace": "staging", "deployment": "cart", "replicas": 4})
		down := req(action.KubernetesScale, action.Params{"namespace": "staging", "deployment": "cart", "replicas": 2})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := up
			if i%2 == 1 {
				r = down
			}
			i++
			if _, err := k.scale.Run(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
