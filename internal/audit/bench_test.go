package audit

import (
	"context"
	"testing"

	"github.com/parley-chatops/parley/internal/store"
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

// BenchmarkStartupCheck measures what every start pays on a log of 20,000
// events: the database's quick check and the verification of the newest
// 1,000 events (config audit.verify_tail's default).
func BenchmarkStartupCheck(b *testing.B) {
	for _, bk := range backends() {
		b.Run(bk.Name, func(b *testing.B) {
			f := newFixtureTB(b, bk, Options{})
			ctx := context.Background()
			batch := make([]Event, 1000)
			for i := range batch {
				batch[i] = requestEvents()[i%len(requestEvents())]
			}
			for range 20 {
				if _, err := f.rec.RecordWith(ctx, func(*store.Tx) ([]Event, error) { return batch, nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("quick_check", func(b *testing.B) {
				for b.Loop() {
					if err := f.db.QuickCheck(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("verify_tail_1000", func(b *testing.B) {
				for b.Loop() {
					if res, err := f.rec.VerifyTail(ctx, 1000); err != nil || !res.OK {
						b.Fatal(res, err)
					}
				}
			})
		})
	}
}
