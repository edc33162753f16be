package confirm

import (
	"context"
	"testing"
)

func BenchmarkCreateClaimFinish(b *testing.B) {
	f := &fixture{path: b.TempDir() + "/parley.db", clock: &fakeClock{t: t0}}
	db, err := openDB(b, f.path)
	if err != nil {
		b.Fatal(err)
	}
	f.db, f.s = db, New(db, Options{Now: f.clock.Now})
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
}
