package dedupe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/internal/testenv/storetest"
)

// One PostgreSQL server for the package's tests; each test gets its own
// database on it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// forBackends runs test on SQLite and on PostgreSQL
// (internal/testenv/storetest); open opens another handle on the same fresh
// database, standing for a replica or a restarted process.
func forBackends(t *testing.T, test func(t *testing.T, open func(t *testing.T) *store.DB)) {
	t.Helper()
	storetest.ForBackends(t, func(t *testing.T, bk storetest.Backend) {
		d := bk.Fresh(t)
		test(t, func(t *testing.T) *store.DB { return d.OpenHandle(t) })
	})
}

func newStore(t *testing.T, db *store.DB, o Options) *Store {
	t.Helper()
	s, err := New(db, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestSeenRecordsOnceAcrossHandles(t *testing.T) {
	forBackends(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		ctx := context.Background()
		a, b := newStore(t, open(t), Options{}), newStore(t, open(t), Options{})
		for _, step := range []struct {
			s    *Store
			key  string
			want bool
		}{
			{a, "slack:Ev1", false},
			{a, "slack:Ev1", true},    // the same process again
			{b, "slack:Ev1", true},    // another replica, after a failover
			{b, "discord:Ev1", false}, // keys are per platform
			{a, "discord:Ev1", true},
			{b, "slack:Ev2", false},
		} {
			got, err := step.s.Seen(ctx, step.key, t0)
			if err != nil {
				t.Fatalf("Seen(%s): %v", step.key, err)
			}
			if got != step.want {
				t.Errorf("Seen(%s) = %v, want %v", step.key, got, step.want)
			}
		}
	})
}

// Two handles (two replicas) race on the same keys: for each key exactly
// one caller is told it is new.
func TestSeenConcurrentHandlesOneWinner(t *testing.T) {
	forBackends(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		ctx := context.Background()
		stores := []*Store{newStore(t, open(t), Options{}), newStore(t, open(t), Options{})}
		const keys, callersPerHandle = 20, 4
		var mu sync.Mutex
		fresh := map[string]int{}
		var errs []error
		var wg sync.WaitGroup
		for _, s := range stores {
			for range callersPerHandle {
				wg.Go(func() {
					for k := range keys {
						key := fmt.Sprintf("slack:Ev%d", k)
						seen, err := s.Seen(ctx, key, t0)
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else if !seen {
							fresh[key]++
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		for k := range keys {
			key := fmt.Sprintf("slack:Ev%d", k)
			if fresh[key] != 1 {
				t.Errorf("%s: %d callers were told it is new, want exactly 1", key, fresh[key])
			}
		}
	})
}

func TestPurgeForgetsKeysOlderThanTheTTL(t *testing.T) {
	forBackends(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		ctx := context.Background()
		s := newStore(t, open(t), Options{TTL: time.Hour})
		for key, at := range map[string]time.Time{
			"slack:old":    t0,
			"slack:edge":   t0.Add(30 * time.Minute),
			"slack:recent": t0.Add(90 * time.Minute),
		} {
			if seen, err := s.Seen(ctx, key, at); err != nil || seen {
				t.Fatalf("Seen(%s) = %v, %v", key, seen, err)
			}
		}
		// At t0+1h30m the TTL reaches back to t0+30m: only "old" is older.
		n, err := s.Purge(ctx, t0.Add(90*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("Purge removed %d keys, want 1", n)
		}
		for key, want := range map[string]bool{"slack:edge": true, "slack:recent": true, "slack:old": false} {
			if got, err := s.Seen(ctx, key, t0.Add(90*time.Minute)); err != nil || got != want {
				t.Errorf("after the purge Seen(%s) = %v, %v; want %v", key, got, err, want)
			}
		}
		if n, err := s.Purge(ctx, t0.Add(90*time.Minute)); err != nil || n != 0 {
			t.Errorf("second purge removed %d, %v; want 0", n, err)
		}
	})
}

func TestErrors(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New without a database succeeded")
	}
	db, err := store.Open(context.Background(), store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(db, Options{TTL: -time.Second}); err == nil {
		t.Error("New with a negative TTL succeeded")
	}
	s := newStore(t, db, Options{})
	if _, err := s.Seen(context.Background(), "", t0); err == nil {
		t.Error("Seen with an empty key succeeded")
	}
	// A store that cannot be reached is an error, never "seen": the
	// pipeline handles the message rather than drop it.
	db.Close()
	seen, err := s.Seen(context.Background(), "slack:Ev1", t0)
	if err == nil || seen {
		t.Errorf("Seen on a closed database = %v, %v; want an error and false", seen, err)
	}
	if _, err := s.Purge(context.Background(), t0); err == nil {
		t.Error("Purge on a closed database succeeded")
	}
}

// TestDurableSharesOnlyDurablePlatforms: the descriptors decide which
// platforms' event ids go to the shared store. A console line number comes
// again in the next session and must be handled again.
func TestDurableSharesOnlyDurablePlatforms(t *testing.T) {
	forBackends(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		ctx := context.Background()
		ps := chat.Platforms{
			{Name: "slack", DurableEvents: true},
			{Name: "console"},
		}
		a := Durable{Store: newStore(t, open(t), Options{}), Platforms: ps}
		b := Durable{Store: newStore(t, open(t), Options{}), Platforms: ps}
		for _, step := range []struct {
			d    Durable
			key  string
			want bool
		}{
			{a, "slack:msg:C1:1.2", false},
			{b, "slack:msg:C1:1.2", true}, // the other replica drops the redelivery
			{a, "console:console-1", false},
			{b, "console:console-1", false}, // never recorded: the next session numbers from 1 again
			{a, "teams:Ev1", false},         // a platform nobody described is not shared
			{b, "teams:Ev1", false},
		} {
			got, err := step.d.Seen(ctx, step.key, t0)
			if err != nil {
				t.Fatalf("Seen(%s): %v", step.key, err)
			}
			if got != step.want {
				t.Errorf("Seen(%s) = %v, want %v", step.key, got, step.want)
			}
		}
		// Shared says which keys are remembered: the pipeline records a
		// shared key's claim with its message, the others' not at all.
		for key, want := range map[string]bool{"slack:Ev9": true, "console:console-1": false, "teams:Ev1": false} {
			if got := a.Shared(key); got != want {
				t.Errorf("Shared(%s) = %v, want %v", key, got, want)
			}
		}
	})
}

// TestSeenTxTakesTheKeyOnlyWithItsTransaction: a key taken inside a
// transaction that rolls back is not taken (another replica, or the
// redelivery, takes it); one whose transaction commits is.
func TestSeenTxTakesTheKeyOnlyWithItsTransaction(t *testing.T) {
	forBackends(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		ctx := context.Background()
		db := open(t)
		a, b := newStore(t, db, Options{}), newStore(t, open(t), Options{})
		boom := errors.New("the write beside it failed")
		err := db.WriteTx(ctx, func(tx *store.Tx) error {
			if seen, err := a.SeenTx(ctx, tx, "slack:Ev1", t0); err != nil || seen {
				t.Fatalf("SeenTx(new key) = %v, %v", seen, err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("WriteTx = %v, want the callback's error", err)
		}
		if seen, err := b.Seen(ctx, "slack:Ev1", t0); err != nil || seen {
			t.Fatalf("after the rollback, Seen = %v, %v; want the key new", seen, err)
		}
		if err := db.WriteTx(ctx, func(tx *store.Tx) error {
			seen, err := a.SeenTx(ctx, tx, "slack:Ev2", t0)
			if err == nil && seen {
				err = errors.New("a new key was seen")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if seen, err := b.Seen(ctx, "slack:Ev2", t0); err != nil || !seen {
			t.Fatalf("after the commit, Seen = %v, %v; want the key taken", seen, err)
		}
	})
}
