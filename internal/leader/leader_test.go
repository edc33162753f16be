package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

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
	name    string
	e       *Elector
	cancel  context.CancelFunc
	done    chan error
	since   atomic.Int64 // UnixNano of the last start of Lead
	leading *atomic.Int32
}

// field watches a set of candidates: how many run Lead at once, at most.
type field struct {
	t       *testing.T
	client  kubernetes.Interface
	ns      string
	lease   string
	leading atomic.Int32 // candidates inside Lead right now
	overlap atomic.Int32 // set when two were inside Lead at once
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

// start makes a candidate stand until stop or the end of the test.
func (f *field) start(name string, keepLease bool) *candidate {
	f.t.Helper()
	c := &candidate{name: name, done: make(chan error, 1), leading: &f.leading}
	e, err := New(Options{
		Client: f.client, LeaseName: f.lease, LeaseNamespace: f.ns, Identity: name,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
		KeepLeaseOnStop: keepLease,
		Lead: func(ctx context.Context) {
			if f.leading.Add(1) > 1 {
				f.overlap.Store(1)
			}
			c.since.Store(time.Now().UnixNano())
			<-ctx.Done()
			f.leading.Add(-1)
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	c.e = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- e.Run(ctx) }()
	f.t.Cleanup(func() { c.stop(f.t) })
	return c
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
// IsLeader at once.
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
			for _, c := range cs {
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

// holder reads the Lease's holder from the API server.
func (f *field) holder() string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := f.client.CoordinationV1().Leases(f.ns).Get(ctx, f.lease, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get lease: %v", err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
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
	if got := f.waitLeader(other); got != other {
		t.Fatalf("leader after the crash = %s", got.name)
	}
	took := time.Unix(0, other.since.Load()).Sub(crash)
	t.Logf("takeover after a crash (lease not released): %s (lease %s, retry %s)", took.Round(time.Millisecond), testLease, testRetry)
	if h := f.holder(); h != other.name {
		t.Errorf("lease holder = %q after takeover, want %s", h, other.name)
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

	stopped := time.Now()
	a.stop(t)
	// Run returns after the release: the Lease no longer names a.
	if h := f.holder(); h == a.name {
		t.Fatalf("lease still held by %s after a clean stop", h)
	}
	if f.waitLeader(b) != b {
		t.Fatal("b does not lead")
	}
	took := time.Unix(0, b.since.Load()).Sub(stopped)
	t.Logf("takeover after a clean stop (lease released): %s (lease %s, retry %s)", took.Round(time.Millisecond), testLease, testRetry)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := f.client.CoordinationV1().Leases(f.ns)
	var err error
	for range 5 { // the leader renews concurrently: retry on conflict
		var l *coordinationv1.Lease
		if l, err = leases.Get(ctx, f.lease, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		l.Spec.HolderIdentity = ptr.To("intruder")
		l.Spec.LeaseDurationSeconds = ptr.To(int32(testLease / time.Second))
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if _, err = leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("take the lease: %v", err)
	}
	deadline := time.Now().Add(waitLimit)
	for a.e.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.e.IsLeader() {
		t.Fatal("a still leads after losing its lease")
	}
	if f.waitLeader(a) != a {
		t.Fatal("a did not win again after the intruder's lease expired")
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
	if _, err := client.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list leases through the kubeconfig client: %v", err)
	}
}

func fakeClient() kubernetes.Interface { return fake.NewClientset() }
