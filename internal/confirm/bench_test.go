package confirm

import (
	"context"
	"testing"
)

func BenchmarkCreateClaimFinish(b *testing.B) {
	for _, bk := range backends() {
		b.Run(bk.Name, func(b *testing.B) {
			f := newFixture(b, bk)
			ctx := context.Background()
			for b.Loop() {
				c, err := f.s.Create(ctx, scaleRequest())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0); err != nil {
					b.Fatal(err)
				}
				if err := f.s.Finish(ctx, c.ID, Done, "ok"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
