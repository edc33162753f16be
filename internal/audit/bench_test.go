package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkRecordWriters records from several goroutines at once, each
// waiting for its own event to be stored, as concurrent requests do: one
// op is one event. On PostgreSQL the writers are what replicas and
// concurrent requests are to the chain head's row lock.
func BenchmarkRecordWriters(b *testing.B) {
	for _, bk := range backends() {
		for _, writers := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", bk.Name, writers), func(b *testing.B) {
				f := newFixtureTB(b, bk, Options{})
				e := requestEvents()[2]
				ctx := context.Background()
				var next atomic.Int64
				errs := make(chan error, writers)
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := f.rec.Record(ctx, e); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(b.N)/float64(max(f.rec.batches.Load(), 1)), "events/commit")
			})
		}
	}
}
