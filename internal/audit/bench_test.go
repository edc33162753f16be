package audit

import (
	"context"
	"testing"
)

func BenchmarkRecord(b *testing.B) {
	for _, bk := range backends() {
		b.Run(bk.Name, func(b *testing.B) {
			f := newFixtureTB(b, bk, Options{})
			e := requestEvents()[2]
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.rec.Record(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify1000(b *testing.B) {
	for _, bk := range backends() {
		b.Run(bk.Name, func(b *testing.B) {
			f := newFixtureTB(b, bk, Options{})
			ctx := context.Background()
			for range 1000 {
				if _, err := f.rec.Record(ctx, requestEvents()[2]); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if res, err := f.rec.Verify(ctx); err != nil || !res.OK {
					b.Fatal(res, err)
				}
			}
		})
	}
}
