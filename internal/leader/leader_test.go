package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop shared cluster:", err)
	}
	os.Exit(code)
}

// Short timings so that the tests take seconds; production uses 15s/10s/2s.
const (
	testLease = 2 * time.Second
	testRenew = 1500 * time.Millisecond
	testRetry = 300 * time.Millisecond
	// waitLimit bounds every wait for an election outcome: far above the
	// expected few seconds, so that only a broken election reaches it.
	waitLimit = 45 * time.Second
)

// candidate is one replica taking part in an election.
type candidate struct {
	name   string
	e      *Elector
	client *hooked
	cancel context.CancelFunc
	done   chan error
	since  atomic.Int64 // UnixNano of the last start of Lead
	ended  atomic.Int64 // UnixNano when Lead last saw its context end
}

// field watches a set of candidates on one Lease of a real API server:
// how many run Lead at once, at most.
type field struct {
	t       *testing.T
	client  kube.Interface
	ns      string
	lease   string
	leading atomic.Int32 // candidates inside Lead right now
	overlap atomic.Int32 // set when two were inside Lead at once
	// checkHolder makes each Lead read the Lease while it runs and fail
	// the test if the Lease names anyone else: only where nobody but the
	// candidates writes the Lease.
	checkHolder bool

	mu    sync.Mutex
	cands []*candidate // every candidate started
}

func (f *field) candidates(cs []*candidate) []*candidate {
	if len(cs) > 0 {
		return cs
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cands)
}

func newField(t *testing.T) *field {
	t.Helper()
	c := kubetest.Shared(t)
	client, err := ClientFor(c.AdminConfig(), "parley-leader-test", testRenew)
	if err != nil {
		t.Fatal(err)
	}
	return &field{t: t, client: client, ns: c.NewNamespace(t, "leader"), lease: "parley"}
}

// start makes a candidate stand until stop or the end of the test. Its
// calls go through a hooked client; setup, if given, sets its hooks
// before it starts.
func (f *field) start(name string, keepLease bool, setup ...func(*hooked)) *candidate {
	f.t.Helper()
	h := &hooked{Interface: f.client, t: f.t}
	for _, s := range setup {
		s(h)
	}
	c := &candidate{name: name, client: h, done: make(chan error, 1)}
	e, err := New(Options{
		Client: h, LeaseName: f.lease, LeaseNamespace: f.ns, Identity: name,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
		KeepLeaseOnStop: keepLease,
		Lead: func(ctx context.Context) {
			if f.leading.Add(1) > 1 {
				f.overlap.Store(1)
			}
			c.since.Store(time.Now().UnixNano())
			if f.checkHolder {
				f.watchHolder(ctx, name)
			} else {
				<-ctx.Done()
			}
			c.ended.Store(time.Now().UnixNano())
			f.leading.Add(-1)
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	c.e = e
	f.mu.Lock()
	f.cands = append(f.cands, c)
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- e.Run(ctx) }()
	f.t.Cleanup(func() { c.stop(f.t) })
	return c
}

// watchHolder reads the Lease until ctx ends: it must name the leader all
// the while Lead runs.
func (f *field) watchHolder(ctx context.Context, name string) {
	for sleep(ctx, 50*time.Millisecond) {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, err := f.client.CoordinationV1().Leases(f.ns).Get(rctx, f.lease, metav1.GetOptions{})
		cancel()
		switch {
		case err != nil:
			f.t.Errorf("%s leads; reading the Lease: %v", name, err)
		case holderOf(l) != name:
			f.t.Errorf("%s leads but the Lease names %q", name, holderOf(l))
		}
	}
}

// stop ends the candidate's Run and waits for it.
func (c *candidate) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err, ok := <-c.done:
		if ok && err != nil {
			t.Errorf("%s: Run: %v", c.name, err)
		}
		if ok {
			close(c.done)
		}
	case <-time.After(waitLimit):
		t.Fatalf("%s: Run did not return after its context ended", c.name)
	}
}

// sample checks, until the test ends, that no two candidates ever report
// IsLeader at once: those of cs, or without cs every candidate started on
// the field, before or after.
func (f *field) sample(cs ...*candidate) {
	var both atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n := 0
			for _, c := range f.candidates(cs) {
				if c.e.IsLeader() {
					n++
				}
			}
			if n > 1 {
				both.Store(1)
			}
		}
	})
	f.t.Cleanup(func() {
		cancel()
		wg.Wait()
		if both.Load() != 0 {
			f.t.Error("two candidates reported IsLeader at the same time")
		}
		if f.overlap.Load() != 0 {
			f.t.Error("two candidates ran Lead at the same time")
		}
	})
}

// waitLeader waits until exactly one of cs leads and returns it.
func (f *field) waitLeader(cs ...*candidate) *candidate {
	f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var leaders []*candidate
		for _, c := range cs {
			if c.e.IsLeader() {
				leaders = append(leaders, c)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("no single leader among %d candidates within %s", len(cs), waitLimit)
	return nil
}

// waitUntil waits for cond, bounded by waitLimit.
func (f *field) waitUntil(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("waiting for %s: gave up after %s", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// read reads the Lease from the API server.
func (f *field) read() *coordinationv1.Lease {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := f.client.CoordinationV1().Leases(f.ns).Get(ctx, f.lease, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get lease: %v", err)
	}
	return l
}

// holder reads the Lease's holder from the API server.
func (f *field) holder() string {
	f.t.Helper()
	return holderOf(f.read())
}

// takeLease writes the Lease as another holder would (an operator, a
// partitioned leader's successor), retrying on conflict, and returns what
// it wrote.
func (f *field) takeLease(holder string) *coordinationv1.Lease {
	f.t.Helper()
	l, err := f.tryTakeLease(holder)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *field) tryTakeLease(holder string) (*coordinationv1.Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := f.client.CoordinationV1().Leases(f.ns)
	var err error
	for range 5 { // a leader renews concurrently: retry on conflict
		var l *coordinationv1.Lease
		if l, err = leases.Get(ctx, f.lease, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("take the lease: %w", err)
		}
		l.Spec.HolderIdentity = ptr.To(holder)
		l.Spec.LeaseDurationSeconds = ptr.To(int32(testLease / time.Second))
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if l, err = leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("take the lease: %w", err)
}

// hooked passes one candidate's Lease calls to the real API server, with
// hooks to interleave another writer or cut the candidate off at a chosen
// moment. It fails the test if a call carries no deadline.
type hooked struct {
	kube.Interface
	t *testing.T
	// cut makes every call wait for its deadline and fail, as an API
	// server behind a partition does.
	cut atomic.Bool

	mu sync.Mutex
	// beforeUpdate runs before an Update is sent; an error fails the
	// call unsent.
	beforeUpdate func(ctx context.Context, l *coordinationv1.Lease) error
	reads        int                   // Gets answered
	lastRead     string                // holder in the last Get's answer
	updateErrs   []error               // each Update's outcome
	lastWrite    *coordinationv1.Lease // the last write that succeeded
	// acquiredFrom lists, for each Update that took the Lease for a new
	// holder, the holder the candidate read before it.
	acquiredFrom []string
}

func (h *hooked) CoordinationV1() kube.CoordinationV1 { return hookedGroup{h} }

type hookedGroup struct{ h *hooked }

func (g hookedGroup) Leases(ns string) kube.Leases {
	return hookedLeases{h: g.h, next: g.h.Interface.CoordinationV1().Leases(ns)}
}

type hookedLeases struct {
	h    *hooked
	next kube.Leases
}

// gate checks the call's deadline and applies the cut.
func (h *hooked) gate(ctx context.Context, verb string) error {
	if _, ok := ctx.Deadline(); !ok {
		h.t.Errorf("Lease %s without a deadline", verb)
		return errors.New("no deadline")
	}
	if h.cut.Load() {
		<-ctx.Done()
		return fmt.Errorf("lease %s: cut off: %w", verb, ctx.Err())
	}
	return nil
}

func (l hookedLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := l.h.gate(ctx, "get"); err != nil {
		return nil, err
	}
	got, err := l.next.Get(ctx, name, o)
	if err == nil {
		l.h.mu.Lock()
		l.h.reads++
		l.h.lastRead = holderOf(got)
		l.h.mu.Unlock()
	}
	return got, err
}

func (l hookedLeases) Create(ctx context.Context, lease *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if err := l.h.gate(ctx, "create"); err != nil {
		return nil, err
	}
	return l.next.Create(ctx, lease, o)
}

func (l hookedLeases) Update(ctx context.Context, lease *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if err := l.h.gate(ctx, "update"); err != nil {
		return nil, err
	}
	l.h.mu.Lock()
	before := l.h.beforeUpdate
	l.h.mu.Unlock()
	if before != nil {
		if err := before(ctx, lease); err != nil {
			return nil, err
		}
	}
	got, err := l.next.Update(ctx, lease, o)
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	l.h.updateErrs = append(l.h.updateErrs, err)
	if err == nil {
		l.h.lastWrite = got
		if h := holderOf(got); h != "" && h != l.h.lastRead {
			l.h.acquiredFrom = append(l.h.acquiredFrom, l.h.lastRead)
			l.h.lastRead = h
		}
	}
	return got, err
}

func (h *hooked) setBeforeUpdate(f func(ctx context.Context, l *coordinationv1.Lease) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beforeUpdate = f
}

func (h *hooked) readCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads
}

func (h *hooked) written() *coordinationv1.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastWrite
}

func (h *hooked) updates() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.updateErrs...)
}

func (h *hooked) acquisitions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.acquiredFrom...)
}

// renewTime is the Lease's renew time, as its writer's clock read it.
func renewTime(t *testing.T, l *coordinationv1.Lease) time.Time {
	t.Helper()
	if l == nil || l.Spec.RenewTime == nil {
		t.Fatalf("lease without a renew time: %+v", l)
	}
	return l.Spec.RenewTime.Time
}

func TestExactlyOneLeadsAndACrashedLeaderIsReplaced(t *testing.T) {
	f := newField(t)
	// Both candidates keep the Lease when stopped, as a crashed process does.
	a, b := f.start("replica-a", true), f.start("replica-b", true)
	f.sample(a, b)

	first := f.waitLeader(a, b)
	if h := f.holder(); h != first.name {
		t.Fatalf("lease holder = %q, leader = %s", h, first.name)
	}
	other := b
	if first == b {
		other = a
	}
	// The follower stays a follower while the leader renews: several
	// renewals later, the same one leads.
	time.Sleep(3 * testLease)
	if !first.e.IsLeader() || other.e.IsLeader() {
		t.Fatalf("leadership moved without a failure: %s leads=%v, %s leads=%v",
			first.name, first.e.IsLeader(), other.name, other.e.IsLeader())
	}

	crash := time.Now()
	first.stop(t) // no release: the Lease must expire
	if first.e.IsLeader() {
		t.Fatal("a stopped candidate still reports leading")
	}
	// The crashed leader's last renewal is what the follower must wait
	// out: it was written before the crash, and the Lease still names it.
	last := f.read()
	if holderOf(last) != first.name {
		t.Fatalf("lease holder = %q right after %s crashed, want it still held", holderOf(last), first.name)
	}
	if got := f.waitLeader(other); got != other {
		t.Fatalf("leader after the crash = %s", got.name)
	}
	took := time.Unix(0, other.since.Load()).Sub(crash)
	t.Logf("takeover after a crash (lease not released): %s (lease %s, retry %s)", took.Round(time.Millisecond), testLease, testRetry)
	if since := time.Unix(0, other.since.Load()); since.Before(renewTime(t, last).Add(testLease)) {
		t.Errorf("%s took over at %s, before the crashed leader's lease ran out (renewed %s, duration %s)",
			other.name, since.Format(time.StampMicro), renewTime(t, last).Format(time.StampMicro), testLease)
	}
	now := f.read()
	if h := holderOf(now); h != other.name {
		t.Errorf("lease holder = %q after takeover, want %s", h, other.name)
	}
	if got, want := ptr.Deref(now.Spec.LeaseTransitions, -1), ptr.Deref(last.Spec.LeaseTransitions, -1)+1; got != want {
		t.Errorf("lease transitions = %d after takeover, want %d", got, want)
	}
}

func TestGracefulStopReleasesTheLease(t *testing.T) {
	f := newField(t)
	a := f.start("replica-a", false)
	if f.waitLeader(a) != a {
		t.Fatal("the only candidate does not lead")
	}
	b := f.start("replica-b", false)
	f.sample(a, b)
	// Let b settle as a follower that has seen a's Lease renewed, so the
	// takeover measured is that of a waiting follower, not a first try.
	time.Sleep(testLease)
	if !a.e.IsLeader() || b.e.IsLeader() {
		t.Fatalf("leadership moved without a failure: a leads=%v, b leads=%v", a.e.IsLeader(), b.e.IsLeader())
	}
	held := f.read()

	stopped := time.Now()
	a.stop(t)
	// Run returns after the release: the Lease no longer names a, and
	// until b takes it, it is free with a one-second duration.
	l := f.read()
	switch h := holderOf(l); h {
	case a.name:
		t.Fatalf("lease still held by %s after a clean stop", h)
	case "":
		if d := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); d != 1 {
			t.Errorf("released lease duration = %ds, want 1s", d)
		}
	}
	if f.waitLeader(b) != b {
		t.Fatal("b does not lead")
	}
	took := time.Unix(0, b.since.Load()).Sub(stopped)
	t.Logf("takeover after a clean stop (lease released): %s (lease %s, retry %s)", took.Round(time.Millisecond), testLease, testRetry)
	// b took the Lease because it read it released, not because a's term
	// ran out: the last holder b read before taking it was nobody.
	if got := b.client.acquisitions(); len(got) != 1 || got[0] != "" {
		t.Errorf("b took the Lease from %q, want it from nobody (released)", got)
	}
	if !time.Unix(0, b.since.Load()).After(time.Unix(0, a.ended.Load())) {
		t.Error("b started leading before a's Lead had ended")
	}
	if got, want := ptr.Deref(f.read().Spec.LeaseTransitions, -1), ptr.Deref(held.Spec.LeaseTransitions, -1)+1; got != want {
		t.Errorf("lease transitions = %d after the handover, want %d", got, want)
	}
}

func TestContendersLeadOneAtATime(t *testing.T) {
	f := newField(t)
	f.checkHolder = true
	// Three candidates race for a Lease that does not exist yet. Then, four
	// times over, a new candidate joins as a follower and the leader
	// stops: cleanly (releasing the Lease) or as a crash (leaving it to
	// expire), by turns of the candidates' numbers, so that the followers
	// race for a released Lease and for an expired one.
	n := 0
	join := func() *candidate {
		c := f.start(fmt.Sprintf("replica-%d", n), n%2 == 1)
		n++
		return c
	}
	live := []*candidate{join(), join(), join()}
	all := slices.Clone(live)
	f.sample()
	for round := range 4 {
		leader := f.waitLeader(live...)
		if h := f.holder(); h != leader.name {
			t.Fatalf("round %d: lease holder = %q, leader = %s", round, h, leader.name)
		}
		c := join()
		all, live = append(all, c), append(live, c)
		f.waitUntil("the new candidate to follow", func() bool { return c.client.readCount() > 0 })
		leader.stop(t)
		live = slices.DeleteFunc(live, func(x *candidate) bool { return x == leader })
	}
	f.waitLeader(live...)
	// leaseTransitions counts every change of holder: each write that took
	// the Lease from someone else or from nobody (the creation is none).
	takes := 0
	for _, c := range all {
		takes += len(c.client.acquisitions())
	}
	if got := ptr.Deref(f.read().Spec.LeaseTransitions, -1); got != int32(takes) || takes < 4 {
		t.Errorf("lease transitions = %d, want %d (one per takeover, at least 4)", got, takes)
	}
}

func TestRacingCandidatesOneWinsTheConflict(t *testing.T) {
	f := newField(t)
	// A released Lease, as a clean stop leaves it: both candidates read it
	// free, then write on the same resourceVersion, only once both have
	// read it. The API server lets one write through and refuses the other
	// with a conflict.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	_, err := f.client.CoordinationV1().Leases(f.ns).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: f.lease, Namespace: f.ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To(int32(1)),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To(int32(3))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	both := make(chan struct{})
	var arrived atomic.Int32
	barrier := func(h *hooked) {
		var first atomic.Bool
		h.beforeUpdate = func(ctx context.Context, _ *coordinationv1.Lease) error {
			if !first.CompareAndSwap(false, true) {
				return nil
			}
			if arrived.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
				return nil
			case <-ctx.Done():
				t.Errorf("the other candidate never came to write: %v", ctx.Err())
				return ctx.Err()
			}
		}
	}
	a, b := f.start("replica-a", false, barrier), f.start("replica-b", false, barrier)
	f.sample(a, b)
	winner := f.waitLeader(a, b)
	loser := a
	if winner == a {
		loser = b
	}
	// The loser's answer may come after the winner started leading.
	f.waitUntil("the loser's first write to be answered", func() bool { return len(loser.client.updates()) > 0 })
	if errs := winner.client.updates(); len(errs) == 0 || errs[0] != nil {
		t.Errorf("winner's first write: %v, want it through", errs)
	}
	if errs := loser.client.updates(); len(errs) == 0 || !apierrors.IsConflict(errs[0]) {
		t.Errorf("loser's first write: %v, want a conflict", errs)
	}
	l := f.read()
	if holderOf(l) != winner.name || ptr.Deref(l.Spec.LeaseTransitions, -1) != 4 {
		t.Errorf("lease = holder %q, transitions %d; want %s, 4", holderOf(l), ptr.Deref(l.Spec.LeaseTransitions, -1), winner.name)
	}
	// The loser read the Lease again rather than overwrite it, and keeps
	// following while the winner renews.
	reads := loser.client.readCount()
	f.waitUntil("the loser to read the Lease three more times", func() bool { return loser.client.readCount() >= reads+3 })
	if loser.e.IsLeader() || !winner.e.IsLeader() {
		t.Errorf("after the race: %s leads=%v, %s leads=%v", winner.name, winner.e.IsLeader(), loser.name, loser.e.IsLeader())
	}
	if h := f.holder(); h != winner.name {
		t.Errorf("lease holder = %q, want %s", h, winner.name)
	}
}

func TestLeaderThatLosesTheLeaseStopsLeading(t *testing.T) {
	f := newField(t)
	a := f.start("replica-a", false)
	if f.waitLeader(a) != a {
		t.Fatal("the only candidate does not lead")
	}
	// Someone else (an operator, a partitioned leader's successor) takes
	// the Lease: a must stop leading within its renew deadline, then stand
	// again and win once that holder's lease expires.
	f.takeLease("intruder")
	f.waitUntil("a to stop leading", func() bool { return !a.e.IsLeader() })
	if f.waitLeader(a) != a {
		t.Fatal("a did not win again after the intruder's lease expired")
	}
}

func TestRenewalThatConflictsStopsLeadingWithoutOverwriting(t *testing.T) {
	f := newField(t)
	a := f.start("replica-a", false)
	if f.waitLeader(a) != a {
		t.Fatal("the only candidate does not lead")
	}
	// Between the version a last wrote and its next renewal, another
	// writer takes the Lease: a's renewal meets a conflict, and a must
	// read the Lease, see the new holder, stop leading and leave the
	// Lease as the other wrote it.
	var intruder atomic.Pointer[coordinationv1.Lease]
	var once sync.Once
	a.client.setBeforeUpdate(func(context.Context, *coordinationv1.Lease) error {
		once.Do(func() {
			l, err := f.tryTakeLease("intruder")
			if err != nil {
				t.Error(err)
				return
			}
			intruder.Store(l)
		})
		return nil
	})
	f.waitUntil("a to stop leading", func() bool { return !a.e.IsLeader() })
	a.client.setBeforeUpdate(nil)
	if intruder.Load() == nil {
		t.Fatal("the intruder did not write")
	}
	if h := f.holder(); h != "intruder" {
		t.Fatalf("lease holder = %q after a lost it, want the intruder's write kept", h)
	}
	conflicts := 0
	for _, err := range a.client.updates() {
		if apierrors.IsConflict(err) {
			conflicts++
		}
	}
	if conflicts == 0 {
		t.Error("a's renewal met no conflict")
	}
	// a stands again and takes the Lease once the intruder's term has run
	// out by a's clock, which started no earlier than the intruder wrote.
	if f.waitLeader(a) != a {
		t.Fatal("a did not win again after the intruder's lease expired")
	}
	if since, expiry := time.Unix(0, a.since.Load()), renewTime(t, intruder.Load()).Add(testLease); since.Before(expiry) {
		t.Errorf("a led again at %s, before the intruder's lease ran out at %s", since.Format(time.StampMicro), expiry.Format(time.StampMicro))
	}
}

func TestLeaderCutOffStopsBeforeTheLeaseExpires(t *testing.T) {
	f := newField(t)
	a := f.start("replica-a", false)
	if f.waitLeader(a) != a {
		t.Fatal("the only candidate does not lead")
	}
	b := f.start("replica-b", false)
	f.sample(a, b)
	f.waitUntil("b to follow", func() bool { return b.client.readCount() >= 2 })

	// a loses the API server: every call hangs until its deadline. a must
	// end Lead before its last renewal's term runs out for b (the renew
	// deadline is shorter than the lease duration), and b takes over.
	a.client.cut.Store(true)
	f.waitUntil("a to stop leading", func() bool { return !a.e.IsLeader() })
	ended := time.Unix(0, a.ended.Load())
	expiry := renewTime(t, a.client.written()).Add(testLease)
	if !ended.Before(expiry) {
		t.Errorf("a led until %s, past its lease's expiry for the others at %s", ended.Format(time.StampMicro), expiry.Format(time.StampMicro))
	}
	if f.waitLeader(a, b) != b {
		t.Fatal("b did not take over")
	}
	if since := time.Unix(0, b.since.Load()); !since.After(ended) || since.Before(expiry) {
		t.Errorf("b led from %s; a led until %s and its lease ran out at %s", since.Format(time.StampMicro), ended.Format(time.StampMicro), expiry.Format(time.StampMicro))
	}
	// a reaches the API server again and follows.
	a.client.cut.Store(false)
	reads := a.client.readCount()
	f.waitUntil("a to read the Lease again", func() bool { return a.client.readCount() >= reads+2 })
	if a.e.IsLeader() || !b.e.IsLeader() {
		t.Errorf("after the partition: a leads=%v, b leads=%v", a.e.IsLeader(), b.e.IsLeader())
	}
}

func TestRunTwiceAtOnceIsRefused(t *testing.T) {
	e, err := New(Options{
		Client: fakeClient(), LeaseName: "parley", LeaseNamespace: "ops", Identity: "p-0",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Lead: func(ctx context.Context) { <-ctx.Done() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(waitLimit)
	for !e.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !e.IsLeader() {
		t.Fatal("the only candidate on a fake API server does not lead")
	}
	if err := e.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v, want refused", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := func() Options {
		return Options{
			Client: fakeClient(), LeaseName: "parley", LeaseNamespace: "ops", Identity: "p-0",
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Lead: func(context.Context) {},
		}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(*Options)
		want string
	}{
		"no client":          {func(o *Options) { o.Client = nil }, "no Kubernetes client"},
		"no lease":           {func(o *Options) { o.LeaseName = "" }, "lease name and namespace"},
		"no namespace":       {func(o *Options) { o.LeaseNamespace = "" }, "lease name and namespace"},
		"no identity":        {func(o *Options) { o.Identity = "" }, "identity is required"},
		"no lead":            {func(o *Options) { o.Lead = nil }, "no Lead"},
		"sub-second lease":   {func(o *Options) { o.LeaseDuration = 500 * time.Millisecond }, "under 1s"},
		"renew >= lease":     {func(o *Options) { o.RenewDeadline = 15 * time.Second }, "shorter than the lease"},
		"retry too long":     {func(o *Options) { o.RetryPeriod = 9 * time.Second }, "retry period"},
		"retry not positive": {func(o *Options) { o.RetryPeriod = 0 }, "retry period"},
	} {
		o := good()
		c.edit(&o)
		_, err := New(o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestAlwaysLeadsUntilCancelled(t *testing.T) {
	var changes []bool
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	a := &Always{
		Lead:     func(ctx context.Context) { close(led); <-ctx.Done() },
		OnChange: func(l bool) { changes = append(changes, l) },
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-led
	if !a.IsLeader() {
		t.Error("Always does not report leading while Lead runs")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a.IsLeader() {
		t.Error("Always still reports leading after Run returned")
	}
	if fmt.Sprint(changes) != "[true false]" {
		t.Errorf("changes = %v, want [true false]", changes)
	}
	if err := (&Always{}).Run(context.Background()); err == nil {
		t.Error("Always without Lead ran")
	}
}

func TestNewClientFromKubeconfig(t *testing.T) {
	_, err := NewClient(ClientOptions{Kubeconfig: "/nonexistent/kubeconfig"})
	if err == nil || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("missing kubeconfig: err = %v", err)
	}
	c := kubetest.Shared(t)
	client, err := NewClient(ClientOptions{Kubeconfig: c.Kubeconfig(t), UserAgent: "parley-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The API server answers: the Lease is not there yet.
	if _, err := client.CoordinationV1().Leases("default").Get(ctx, "parley-no-such-lease", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get a missing lease through the kubeconfig client: %v, want not found", err)
	}
}

func fakeClient() kube.Interface { return kubego.Wrap(fake.NewClientset()) }
