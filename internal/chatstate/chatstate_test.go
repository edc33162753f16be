package chatstate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/internal/testenv/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// forBackends runs test on SQLite and PostgreSQL with two handles on one
// fresh database: two replicas, or a process before and after a restart.
func forBackends(t *testing.T, test func(t *testing.T, a, b *Store)) {
	t.Helper()
	storetest.ForBackends(t, func(t *testing.T, bk storetest.Backend) {
		d := bk.Fresh(t)
		open := func(now func() time.Time) *Store {
			s, err := New(d.OpenHandle(t), Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		clock := func() time.Time { return t0 }
		test(t, open(clock), open(clock))
	})
}

func TestPutGetAcrossHandles(t *testing.T) {
	forBackends(t, func(t *testing.T, a, b *Store) {
		ctx := context.Background()
		if err := a.Put(ctx, "discord-button:k1", `{"action":"kubernetes.rollback"}`); err != nil {
			t.Fatal(err)
		}
		v, ok, err := b.Get(ctx, "discord-button:k1")
		if err != nil || !ok || v != `{"action":"kubernetes.rollback"}` {
			t.Fatalf("Get on the other handle = %q, %v, %v", v, ok, err)
		}
		// The first writer wins; a second Put of the key is a no-op.
		if err := b.Put(ctx, "discord-button:k1", "other"); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := a.Get(ctx, "discord-button:k1"); v != `{"action":"kubernetes.rollback"}` {
			t.Errorf("value after a second Put = %q", v)
		}
		if _, ok, err := a.Get(ctx, "missing"); ok || err != nil {
			t.Errorf("Get(missing) = %v, %v", ok, err)
		}
	})
}

func TestConcurrentPutsOneValue(t *testing.T) {
	forBackends(t, func(t *testing.T, a, b *Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() { errs <- s.Put(ctx, "slack-thread:C1:1.2", fmt.Sprint(i)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		va, _, _ := a.Get(ctx, "slack-thread:C1:1.2")
		vb, _, _ := b.Get(ctx, "slack-thread:C1:1.2")
		if va == "" || va != vb {
			t.Errorf("values %q and %q", va, vb)
		}
	})
}

func TestPurgeAndBadInput(t *testing.T) {
	forBackends(t, func(t *testing.T, a, _ *Store) {
		ctx := context.Background()
		if err := a.Put(ctx, "old", "v"); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Purge(ctx, t0.Add(DefaultTTL-time.Minute)); err != nil || n != 0 {
			t.Fatalf("early Purge = %d, %v", n, err)
		}
		if n, err := a.Purge(ctx, t0.Add(DefaultTTL+time.Minute)); err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v", n, err)
		}
		if _, ok, _ := a.Get(ctx, "old"); ok {
			t.Error("purged entry still there")
		}
		if err := a.Put(ctx, "", "v"); err == nil {
			t.Error("empty key accepted")
		}
		if err := a.Put(ctx, "big", strings.Repeat("x", MaxValue+1)); err == nil || !strings.Contains(err.Error(), "at most") {
			t.Errorf("oversized value: %v", err)
		}
	})
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil database accepted")
	}
	var db store.DB
	if _, err := New(&db, Options{TTL: -time.Second}); err == nil {
		t.Error("negative TTL accepted")
	}
}
