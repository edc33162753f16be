package confirm

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// A confirmation is claimable, and offered to a bare "confirm", only once
// its prompt is recorded as shown.
func TestOnlyShownConfirmationsAreClaimable(t *testing.T) { forBackends(t, testOnlyShown) }

func testOnlyShown(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.createUnshown(t, scaleRequest())
	if !c.ShownAt.IsZero() {
		t.Fatalf("a new confirmation is shown at %v", c.ShownAt)
	}
	if pending, err := f.s.PendingIn(ctx, "slack:C1"); err != nil || len(pending) != 0 {
		t.Errorf("PendingIn before shown = %v, %v; want none", ids(pending), err)
	}
	got, err := f.s.Claim(ctx, c.ID, "slack:U2", t0)
	if !errors.Is(err, ErrNotShown) || got.State != Pending {
		t.Fatalf("Claim before shown = %s, %v; want ErrNotShown, still pending", got.State, err)
	}
	f.clock.Set(t0.Add(time.Second))
	if err := f.s.MarkShown(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkShown(ctx, c.ID); err != nil {
		t.Errorf("MarkShown again = %v, want a no-op", err)
	}
	if got, _ := f.s.Get(ctx, c.ID); !got.ShownAt.Equal(t0.Add(time.Second)) {
		t.Errorf("ShownAt = %v, want the first mark's", got.ShownAt)
	}
	if pending, err := f.s.PendingIn(ctx, "slack:C1"); err != nil || len(pending) != 1 {
		t.Errorf("PendingIn after shown = %v, %v; want it", ids(pending), err)
	}
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	d := f.createUnshown(t, scaleRequest())
	if _, err := f.s.Cancel(ctx, d.ID, "slack:U1"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkShown(ctx, d.ID); !errors.Is(err, ErrCancelled) {
		t.Errorf("MarkShown of a cancelled one = %v, want ErrCancelled", err)
	}
}

// The Tx variants commit with the caller's transaction, or not at all.
func TestTxVariantsRollBackWithTheCaller(t *testing.T) { forBackends(t, testTxRollBack) }

func testTxRollBack(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	abort := errors.New("the audit write failed")
	var created Confirmation
	err := f.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		if created, err = f.s.CreateTx(ctx, tx, scaleRequest()); err != nil {
			return err
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatal(err)
	}
	if _, err := f.s.Get(ctx, created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after a rolled-back CreateTx = %v, want ErrNotFound", err)
	}

	c := f.create(t, scaleRequest())
	err = f.db.WriteTx(ctx, func(tx *store.Tx) error {
		if _, err := f.s.ClaimTx(ctx, tx, c.ID, "slack:U2", t0); err != nil {
			return err
		}
		if _, err := f.s.CancelTx(ctx, tx, c.ID, "slack:U1"); !errors.Is(err, ErrAlreadyUsed) {
			t.Errorf("CancelTx after ClaimTx in one transaction = %v, want ErrAlreadyUsed", err)
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatal(err)
	}
	if got, _ := f.s.Get(ctx, c.ID); got.State != Pending {
		t.Errorf("after a rolled-back ClaimTx: %s, want pending", got.State)
	}
}

// Abandoned finds what a stopped process left: executing and unshown
// confirmations of other runs; Adopt gives each to one recoverer;
// SettleTx ends it only for its adopter.
func TestAbandonedAdoptSettle(t *testing.T) { forBackends(t, testAbandonedAdoptSettle) }

func testAbandonedAdoptSettle(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	running := f.create(t, scaleRequest())
	if _, err := f.s.Claim(ctx, running.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	unshown := f.createUnshown(t, scaleRequest())
	shown := f.create(t, scaleRequest()) // waiting for its approver: not abandoned
	if got, err := f.s.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Abandoned by the live process = %v, %v; want none", ids(got), err)
	}

	// The process stops; the same replica starts again.
	f.open(t)
	got, err := f.s.Abandoned(ctx)
	want := []string{running.ID, unshown.ID}
	if err != nil || !slices.Equal(sortedIDs(got), slices.Sorted(slices.Values(want))) {
		t.Fatalf("Abandoned after a restart = %v, %v; want %v", ids(got), err, want)
	}

	// Two recoverers adopt at once: one wins each.
	other := f.replica(t, fixtureReplica)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		adopted = map[string]*Store{}
	)
	for _, c := range got {
		for _, s := range []*Store{f.s, other} {
			wg.Go(func() {
				a, err := s.Adopt(ctx, c)
				if errors.Is(err, ErrTaken) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if adopted[a.ID] != nil {
					t.Errorf("%s adopted twice", a.ID)
				}
				adopted[a.ID] = s
			})
		}
	}
	wg.Wait()
	if len(adopted) != 2 {
		t.Fatalf("adopted %d of 2", len(adopted))
	}
	settle := func(s *Store, c Confirmation, to State) error {
		return f.db.WriteTx(ctx, func(tx *store.Tx) error { return s.SettleTx(ctx, tx, c, to, "recovered") })
	}
	for _, c := range got {
		owner, loser := adopted[c.ID], f.s
		if owner == f.s {
			loser = other
		}
		to := Interrupted
		if c.State == Pending {
			to = Cancelled
		}
		if err := settle(loser, c, to); !errors.Is(err, ErrTaken) {
			t.Errorf("settle %s by the process that did not adopt it = %v, want ErrTaken", c.ID, err)
		}
		if c.State == Pending {
			if err := settle(owner, c, Done); !errors.Is(err, ErrInvalid) {
				t.Errorf("settle an unshown one as done = %v, want ErrInvalid", err)
			}
		}
		if err := settle(owner, c, to); err != nil {
			t.Fatal(err)
		}
		if err := settle(owner, c, to); !errors.Is(err, ErrTaken) {
			t.Errorf("settle %s twice = %v, want ErrTaken", c.ID, err)
		}
	}
	for id, want := range map[string]State{running.ID: Interrupted, unshown.ID: Cancelled, shown.ID: Pending} {
		if c, err := f.s.Get(ctx, id); err != nil || c.State != want {
			t.Errorf("%s: %s, %v; want %s", id, c.State, err, want)
		}
	}
	if got, err := f.s.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Errorf("Abandoned after settling = %v, %v; want none", ids(got), err)
	}
}

// On PostgreSQL another live replica's unshown confirmation (its prompt is
// on its way) is not abandoned until StaleAfter has passed.
func TestAbandonedLeavesLiveReplicasPromptsAlone(t *testing.T) {
	f := newFixture(t, backends()[1])
	ctx := context.Background()
	other := f.replica(t, "parley-1")
	c, err := other.Create(ctx, scaleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Abandoned = %v, %v; want none while parley-1 is live", ids(got), err)
	}
	if f.s.IsAbandoned(other.Self(), t0) {
		t.Error("IsAbandoned of a live replica's fresh work")
	}
	f.clock.Set(t0.Add(DefaultStaleAfter))
	if got, err := f.s.Abandoned(ctx); err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Errorf("Abandoned after StaleAfter = %v, %v; want %s", ids(got), err, c.ID)
	}
	if !f.s.IsAbandoned(other.Self(), t0) {
		t.Error("IsAbandoned of stale work: false")
	}
}

// IsAbandoned applies Abandoned's rule to work tracked elsewhere.
func TestIsAbandoned(t *testing.T) {
	for _, bk := range backends() {
		t.Run(bk.Name, func(t *testing.T) {
			f := newFixture(t, bk)
			before := f.s
			f.clock.Set(t0.Add(time.Second))
			f.open(t) // a restart of the same replica
			now := f.clock.Now()
			for _, c := range []struct {
				owner string
				at    time.Time
				want  bool
			}{
				{f.s.Self(), now, false},   // this process, still on it
				{before.Self(), now, true}, // this replica's previous run
				// Unknown: from before this start is enough on SQLite (one
				// process); PostgreSQL waits for StaleAfter.
				{"", t0, bk.Name == "sqlite"},
				{"", now.Add(-DefaultStaleAfter), true},
				{"", now.Add(time.Second), false},
			} {
				if got := f.s.IsAbandoned(c.owner, c.at); got != c.want {
					t.Errorf("IsAbandoned(%q, %v) = %v, want %v", c.owner, c.at, got, c.want)
				}
			}
		})
	}
}

func sortedIDs(cs []Confirmation) []string { return slices.Sorted(slices.Values(ids(cs))) }
