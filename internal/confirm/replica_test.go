package confirm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replica opens another handle on f's database with its own Store, as
// another Parley replica (or, on SQLite, another process) would.
func (f *fixture) replica(t *testing.T, name string) *Store {
	t.Helper()
	return New(f.dbase.OpenHandle(t), Options{Now: f.clock.Now, Replica: name})
}

func TestConfirmableOnAnotherReplica(t *testing.T) { forBackends(t, testConfirmableOnAnotherReplica) }

func testConfirmableOnAnotherReplica(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	other := f.replica(t, "parley-1")
	c := f.create(t, scaleRequest())

	found, err := other.FindByCode(ctx, "slack:C1", c.Code)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found, c) {
		t.Errorf("found on the other replica:\n%#v\nwant\n%#v", found, c)
	}
	claimed, err := other.Claim(ctx, c.ID, "slack:U2", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if claimed.Owner != "parley-1" || !claimed.HeartbeatAt.Equal(t0) || claimed.State != Executing {
		t.Errorf("claimed: owner %q heartbeat %v state %s; want parley-1, %v, executing", claimed.Owner, claimed.HeartbeatAt, claimed.State, t0)
	}
	// The creator sees the claim and cannot claim again.
	if _, err := f.s.Claim(ctx, c.ID, "slack:U3", t0.Add(time.Minute)); !errors.Is(err, ErrAlreadyUsed) {
		t.Errorf("Claim on the creating replica after the other's = %v, want ErrAlreadyUsed", err)
	}
	if err := other.Finish(ctx, c.ID, Done, "replicas 3 -> 5"); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.Get(ctx, c.ID)
	if err != nil || got.State != Done || got.Owner != "parley-1" || got.DecidedBy != "slack:U2" {
		t.Errorf("on the creating replica: %+v, %v", got, err)
	}
}

func TestConcurrentClaimsFromTwoReplicasHaveOneWinner(t *testing.T) {
	forBackends(t, testConcurrentClaimsFromTwoReplicas)
}

func testConcurrentClaimsFromTwoReplicas(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	stores := []*Store{f.replica(t, "parley-1"), f.replica(t, "parley-2")}
	const rounds, claimers = 5, 20
	for round := range rounds {
		c := f.create(t, scaleRequest())
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			others  = map[string]int{}
		)
		start := make(chan struct{})
		for i := range claimers {
			s := stores[i%2]
			wg.Go(func() {
				<-start
				approver := fmt.Sprintf("slack:A%d", i)
				_, err := s.Claim(context.Background(), c.ID, approver, t0.Add(time.Second))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, s.Replica()+"/"+approver)
				case errors.Is(err, ErrAlreadyUsed):
					others["used"]++
				default:
					others[err.Error()]++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || others["used"] != claimers-1 {
			t.Fatalf("round %d: winners %v, others %v; want one winner and %d ErrAlreadyUsed", round, winners, others, claimers-1)
		}
		got, err := f.s.Get(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Owner+"/"+got.DecidedBy != winners[0] {
			t.Errorf("round %d: stored %s/%s, want %s", round, got.Owner, got.DecidedBy, winners[0])
		}
	}
}

// TestCreateOnTwoReplicasKeepsCodesUnique: replicas creating confirmations
// in one channel at once never hand out one code twice, and never fail on
// a clash. The code generator is narrowed to a few codes handed out in
// turn, so that replicas racing for the same free code is the common case.
func TestCreateOnTwoReplicasKeepsCodesUnique(t *testing.T) {
	forBackends(t, testCreateOnTwoReplicasKeepsCodesUnique)
}

func testCreateOnTwoReplicasKeepsCodesUnique(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	const workers, each = 8, 2 // 16 pending of 24 codes: a free one within 20 tries
	pool := []string{"AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG", "HHHH",
		"JJJJ", "KKKK", "MMMM", "NNNN", "PPPP", "QQQQ", "RRRR", "SSSS",
		"TTTT", "UUUU", "VVVV", "WWWW", "XXXX", "YYYY", "ZZZZ", "2222"}
	stores := []*Store{f.replica(t, "parley-1"), f.replica(t, "parley-2")}
	for _, s := range stores {
		// Each replica walks the same codes in the same order, so both
		// pick the same free one at the same time.
		var next atomic.Int64
		s.newCode = func() (string, error) { return pool[int(next.Add(1)-1)%len(pool)], nil }
	}
	var wg sync.WaitGroup
	codes := make(chan string, workers*each)
	errs := make(chan error, workers)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%2]
		wg.Go(func() {
			<-start
			for range each {
				c, err := s.Create(context.Background(), scaleRequest())
				if err != nil {
					errs <- err
					return
				}
				codes <- c.Code
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	close(codes)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for code := range codes {
		if seen[code] {
			t.Fatalf("code %s issued twice among pending confirmations of one channel", code)
		}
		seen[code] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d codes, want %d", len(seen), workers*each)
	}
}

// TestSweepsFromTwoReplicasReportEachOnce: ExpireDue and
// RecoverInterrupted running on two replicas at once return every
// confirmation exactly once between them, so each is audited once.
func TestSweepsFromTwoReplicasReportEachOnce(t *testing.T) {
	forBackends(t, testSweepsFromTwoReplicasReportEachOnce)
}

func testSweepsFromTwoReplicasReportEachOnce(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	const n = 30
	var due, running []string
	for range n {
		req := scaleRequest()
		req.ExpiresAt = t0.Add(time.Minute)
		due = append(due, f.create(t, req).ID)
		c := f.create(t, scaleRequest())
		if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0); err != nil {
			t.Fatal(err)
		}
		running = append(running, c.ID)
	}
	// The claiming process is gone; two others sweep at once, past both
	// the expiry and the staleness of its heartbeats.
	f.clock.Set(t0.Add(time.Hour))
	stores := []*Store{f.replica(t, "parley-1"), f.replica(t, "parley-2")}
	for name, sweep := range map[string]func(s *Store) ([]Confirmation, error){
		"expire": func(s *Store) ([]Confirmation, error) { return s.ExpireDue(ctx, t0.Add(time.Hour)) },
		"recover": func(s *Store) ([]Confirmation, error) {
			return s.RecoverInterrupted(ctx)
		},
	} {
		t.Run(name, func(t *testing.T) {
			want := due
			if name == "recover" {
				want = running
			}
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				got []string
			)
			for _, s := range stores {
				for range 3 {
					wg.Go(func() {
						cs, err := sweep(s)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						defer mu.Unlock()
						got = append(got, ids(cs)...)
					})
				}
			}
			wg.Wait()
			slices.Sort(got)
			w := slices.Sorted(slices.Values(want))
			if !slices.Equal(got, w) {
				t.Errorf("swept %d confirmations (%v), want each of %d exactly once", len(got), got, len(w))
			}
		})
	}
}

// TestRecoverInterruptedLeavesLiveReplicasAlone is the multi-replica
// recovery rule on PostgreSQL: a restarted replica takes back its own
// previous run's executing confirmations at once; another replica's only
// once its heartbeat is StaleAfter old; its own current claims never.
func TestRecoverInterruptedLeavesLiveReplicasAlone(t *testing.T) {
	f := newFixture(t, backends()[1])
	ctx := context.Background()
	const stale = DefaultStaleAfter
	b := f.replica(t, "parley-1")
	mine := f.create(t, scaleRequest())
	theirs := f.create(t, scaleRequest())
	if _, err := f.s.Claim(ctx, mine.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, theirs.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}

	// parley-0 stops and starts again a minute later.
	f.clock.Set(t0.Add(time.Minute))
	f.open(t)
	got, err := f.s.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != mine.ID || got[0].State != Interrupted || got[0].Owner != fixtureReplica {
		t.Fatalf("restarted parley-0 recovered %v, want only its own %s", ids(got), mine.ID)
	}

	// parley-1 is alive and beating; its action is left alone however
	// often anyone recovers.
	if n, err := b.Heartbeat(ctx); err != nil || n != 1 {
		t.Fatalf("Heartbeat = %d, %v; want 1 confirmation kept alive", n, err)
	}
	if c, _ := f.s.Get(ctx, theirs.ID); !c.HeartbeatAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("HeartbeatAt = %v, want %v", c.HeartbeatAt, t0.Add(time.Minute))
	}
	f.clock.Set(t0.Add(time.Minute + stale - time.Millisecond))
	for _, s := range []*Store{f.s, f.replica(t, "parley-2")} {
		if got, err := s.RecoverInterrupted(ctx); err != nil || len(got) != 0 {
			t.Fatalf("%s recovered %v, %v; want nothing while parley-1 is live", s.Replica(), ids(got), err)
		}
	}
	// A Store never takes its own current claims, however stale.
	own := f.create(t, scaleRequest())
	if _, err := b.Claim(ctx, own.ID, "slack:U3", f.clock.Now()); err != nil {
		t.Fatal(err)
	}

	// parley-1 dies: no more heartbeats. After StaleAfter another replica
	// takes its action as interrupted; parley-1 itself still would not.
	f.clock.Set(t0.Add(time.Minute + stale + 10*time.Minute))
	if got, err := b.RecoverInterrupted(ctx); err != nil || len(got) != 0 {
		t.Fatalf("parley-1 recovered its own live claims %v, %v", ids(got), err)
	}
	got, err = f.replica(t, "parley-2").RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids([]Confirmation{theirs, own})) {
		t.Fatalf("parley-2 recovered %v, want %s and %s", ids(got), theirs.ID, own.ID)
	}
	for _, c := range got {
		if c.State != Interrupted || c.Owner != "parley-1" || c.Outcome != interruptedOutcome {
			t.Errorf("recovered %s: %s owner %q outcome %q", c.ID, c.State, c.Owner, c.Outcome)
		}
	}
	// Too late for parley-1 to report an outcome, and never run again.
	if err := b.Finish(ctx, theirs.ID, Done, "late"); !errors.Is(err, ErrNotExecuting) {
		t.Errorf("Finish after takeover = %v, want ErrNotExecuting", err)
	}
}

// TestRecoverInterruptedOnSQLiteIsSingleProcess: one process owns an
// SQLite file, so at start-up every executing confirmation a previous run
// left is recovered at once, whatever its owner and heartbeat; the Store's
// own claims never are, so calling it periodically is safe.
func TestRecoverInterruptedOnSQLiteIsSingleProcess(t *testing.T) {
	f := newFixture(t, backends()[0])
	ctx := context.Background()
	renamed := f.replica(t, "old-hostname")
	left := f.create(t, scaleRequest())
	if _, err := renamed.Claim(ctx, left.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	current := f.create(t, scaleRequest())
	if _, err := f.s.Claim(ctx, current.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.RecoverInterrupted(ctx) // heartbeats are fresh: same instant
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != left.ID {
		t.Fatalf("RecoverInterrupted = %v, want only %s", ids(got), left.ID)
	}
}

// TestRecoverClaimsOfEarlierVersions: executing rows written before owners
// existed (owner ” and no heartbeat) count as abandoned on every backend.
func TestRecoverClaimsOfEarlierVersions(t *testing.T) {
	forBackends(t, testRecoverClaimsOfEarlierVersions)
}

func testRecoverClaimsOfEarlierVersions(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())
	raw, err := sql.Open(f.dbase.Driver, f.dbase.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `UPDATE confirmations SET state = 'executing', decided_by = 'slack:U2', decided_at = 1,
		owner = '', owner_run = '' WHERE id = '`+c.ID+`'`); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != c.ID || got[0].Owner != "" {
		t.Fatalf("RecoverInterrupted = %v, want %s", ids(got), c.ID)
	}
}

func TestKeepAliveBeatsUntilCancelled(t *testing.T) { forBackends(t, testKeepAliveBeatsUntilCancelled) }

func testKeepAliveBeatsUntilCancelled(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Minute)
	f.clock.Set(later)
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.s.KeepAlive(kctx, time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("KeepAlive = %v, want nil after cancel", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second) // a bound on waiting, not a measurement
	for {
		got, err := f.s.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.HeartbeatAt.Equal(later) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HeartbeatAt still %v, want %v", got.HeartbeatAt, later)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
