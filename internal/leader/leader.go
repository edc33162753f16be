// Package leader elects the one Parley replica that holds the chat
// connections (Slack Socket Mode, the Discord gateway) when several run at
// once. The election runs on a coordination.k8s.io Lease, as client-go's
// leader election does and interoperable with it, but through kube.Interface
// rather than client-go's clientset.
//
// A candidate acquires the Lease when it is free, or when it has not seen
// the Lease's record change for the record's lease duration, measured by
// its own clock from the moment it saw the change: clocks are never
// compared across replicas, only their rates are assumed equal. The leader
// renews the Lease every retry period; a leader that has not renewed it
// within the renew deadline of its last successful renewal stops leading,
// before the Lease expires for the others (LeaseDuration > RenewDeadline),
// so two replicas never lead at once. Every write carries the
// resourceVersion the writer last read: a conflict means someone else
// wrote the Lease, and the writer reads it again instead of overwriting
// it. A leader that sees another holder stops leading at once.
//
// Lead runs while this replica leads, under a context that ends when the
// leadership does. The Elector waits for Lead to return before it lets go
// of the Lease (the Lease is renewed while Lead winds down after a clean
// stop), so a replica that stops cleanly has closed its chat connections
// before it releases the Lease, and another replica takes over within a
// retry period; a replica that dies leaves the Lease to expire, and the
// takeover takes up to the lease duration plus a retry period.
//
// Always is the stand-in for a single replica without election.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/parley-chatops/parley/internal/kube"
)

// jitterFactor spreads the candidates' attempts to acquire the Lease: each
// waits between 1 and 1 + jitterFactor retry periods (client-go's
// JitterFactor).
const jitterFactor = 1.2

// Options configure an Elector.
type Options struct {
	// Client reaches the API server holding the Lease, as Parley itself
	// (never an impersonated user). The Elector bounds each call by the
	// renew deadline; NewClient also bounds each HTTP request.
	Client kube.Interface
	// LeaseName and LeaseNamespace name the Lease. Required.
	LeaseName      string
	LeaseNamespace string
	// Identity names this replica in the Lease; replicas running at once
	// must differ (the pod name). Required.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod time the election (see
	// the package comment). LeaseDuration > RenewDeadline >
	// 1.2 × RetryPeriod > 0; the Lease stores LeaseDuration in whole
	// seconds.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Lead runs while this replica leads; its context ends when the
	// leadership is lost or Run's context ends, and it must return soon
	// after. Required.
	Lead func(ctx context.Context)
	// OnChange, if set, is told each change: true just before Lead starts,
	// false just after it returns. It runs on Run's goroutine: keep it
	// short (a metric, a log line).
	OnChange func(leading bool)
	// KeepLeaseOnStop leaves the Lease held when Run's context ends, as a
	// crash would: the others wait for it to expire. Failover tests use it;
	// in production a clean stop releases the Lease for a fast handover.
	KeepLeaseOnStop bool
	Logger          *slog.Logger
}

func (o *Options) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Client == nil {
		bad("no Kubernetes client")
	}
	if o.LeaseName == "" || o.LeaseNamespace == "" {
		bad("lease name and namespace are required")
	}
	if o.Identity == "" {
		bad("identity is required")
	}
	if o.Lead == nil {
		bad("no Lead function")
	}
	switch {
	case o.LeaseDuration < time.Second:
		bad("lease duration %s is under 1s (the Lease stores whole seconds)", o.LeaseDuration)
	case o.RenewDeadline <= 0 || o.RenewDeadline >= o.LeaseDuration:
		bad("renew deadline %s must be positive and shorter than the lease duration %s", o.RenewDeadline, o.LeaseDuration)
	case o.RetryPeriod <= 0 || float64(o.RenewDeadline) <= jitterFactor*float64(o.RetryPeriod):
		bad("retry period %s must be positive and under the renew deadline %s / %.1f", o.RetryPeriod, o.RenewDeadline, jitterFactor)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Elector takes part in the election for one Lease.
type Elector struct {
	o       Options
	leases  kube.Leases
	leading atomic.Bool
	running atomic.Bool

	// The election's view of the Lease. One goroutine at a time touches
	// it: Run's, or the renewal's while this replica leads (Run waits for
	// the renewal to end before it reads the view again).
	lease      *coordinationv1.Lease    // last read or written: its resourceVersion guards the next write
	observed   coordinationv1.LeaseSpec // the record as last seen to change
	observedAt time.Time                // this replica's clock when it saw observed change
	renewedAt  time.Time                // when the last successful write naming this replica was sent
	// mayHold is set while the Lease may name this replica: it was read
	// or written so, or a write naming it failed without saying whether it
	// happened. A clean stop releases the Lease only then.
	mayHold bool
	trouble string // the last failed call, logged once until calls succeed again
}

// New returns an Elector; Run takes part in the election.
func New(o Options) (*Elector, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	o.Logger = o.Logger.With("lease", o.LeaseNamespace+"/"+o.LeaseName, "identity", o.Identity)
	return &Elector{o: o, leases: o.Client.CoordinationV1().Leases(o.LeaseNamespace)}, nil
}

// IsLeader reports whether Lead is running on this replica.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// Identity is this replica's name in the Lease.
func (e *Elector) Identity() string { return e.o.Identity }

// Run takes part in the election until ctx ends: whenever this replica
// wins, it runs Lead until the leadership is lost, then stands again. It
// returns nil once ctx has ended, Lead has returned and (unless
// KeepLeaseOnStop) the Lease has been released. An Elector runs once at a
// time.
func (e *Elector) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("leader election: Run is already running")
	}
	defer e.running.Store(false)
	for e.acquire(ctx) && ctx.Err() == nil {
		e.lead(ctx)
		if ctx.Err() != nil {
			break
		}
		// Lost the Lease (the API server unreachable, or another took
		// it): stand again after a pause, as a follower.
		e.o.Logger.Warn("leadership lost; standing again")
		if !sleep(ctx, e.o.RetryPeriod) {
			break
		}
	}
	// Stopped while standing: a write that took the Lease may have
	// happened without this replica hearing of it.
	if !e.o.KeepLeaseOnStop {
		e.release()
	}
	return nil
}

// acquire stands until this replica holds the Lease (true) or ctx ends
// (false), trying every retry period with jitter.
func (e *Elector) acquire(ctx context.Context) bool {
	e.o.Logger.Debug("standing for election")
	for {
		if e.tryAcquire(ctx) {
			return true
		}
		if !sleep(ctx, jitter(e.o.RetryPeriod)) {
			return false
		}
	}
}

// tryAcquire reads the Lease and takes it if it is free, expired or
// already this replica's.
func (e *Elector) tryAcquire(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, e.o.RenewDeadline)
	defer cancel()
	l, err := e.leases.Get(ctx, e.o.LeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return e.create(ctx)
	}
	if err != nil {
		e.failed("read the Lease", err)
		return false
	}
	e.see(l)
	holder := holderOf(l)
	if holder != "" && holder != e.o.Identity && time.Now().Before(e.expiry()) {
		return false
	}
	now := time.Now()
	spec := e.record(now)
	if holder == e.o.Identity {
		// Ours already (a write whose answer was lost, or a restart
		// under the same name): the term goes on.
		spec.AcquireTime, spec.LeaseTransitions = l.Spec.AcquireTime, l.Spec.LeaseTransitions
	} else {
		spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
	}
	if err := e.write(ctx, l, spec); err != nil {
		// A conflict: another candidate wrote first. The next attempt
		// reads what it wrote.
		e.failed("take the Lease", err)
		return false
	}
	e.renewedAt = now
	e.o.Logger.Info("acquired the Lease", "previous_holder", holder, "transitions", ptr.Deref(spec.LeaseTransitions, 0))
	return true
}

// create makes the Lease, held by this replica.
func (e *Elector) create(ctx context.Context) bool {
	now := time.Now()
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: e.o.LeaseName, Namespace: e.o.LeaseNamespace},
		Spec:       e.record(now),
	}
	got, err := e.leases.Create(ctx, l, metav1.CreateOptions{})
	if err != nil {
		// AlreadyExists: another candidate created it first.
		if !known(err) {
			e.mayHold = true
		}
		e.failed("create the Lease", err)
		return false
	}
	e.ok()
	e.see(got)
	e.renewedAt = now
	e.o.Logger.Info("created the Lease")
	return true
}

// lead runs Lead while the Lease is renewed, then releases the Lease
// unless told to keep it.
func (e *Elector) lead(ctx context.Context) {
	leadCtx, endLead := context.WithCancel(ctx)
	defer endLead()
	// The renewal goes on after ctx ends, until Lead has returned: the
	// Lease stays held while Lead closes the chat connections.
	rctx, stopRenewal := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renew(rctx, endLead)
	}()
	e.change(true)
	e.o.Lead(leadCtx)
	e.change(false)
	stopRenewal()
	<-renewed
	if !e.o.KeepLeaseOnStop {
		e.release()
	}
}

// renew renews the Lease every retry period until ctx ends, or until the
// leadership is lost: then it ends Lead's context. The leadership is lost
// when another holder is seen, or when no renewal has succeeded within
// the renew deadline of the last one sent that did (the others count the
// lease duration from a moment after that one was sent).
func (e *Elector) renew(ctx context.Context, endLead context.CancelFunc) {
	for {
		dctx, cancel := context.WithDeadline(ctx, e.renewedAt.Add(e.o.RenewDeadline))
		renewed, gone := false, false
		for !renewed && !gone && sleep(dctx, e.o.RetryPeriod) {
			renewed, gone = e.tryRenew(dctx)
		}
		cancel()
		switch {
		case renewed:
			continue
		case ctx.Err() != nil:
			return // stopped while leading: release follows
		case gone:
			e.o.Logger.Warn("another replica holds the Lease: stopping leading", "holder", holderOf(e.lease))
		default:
			e.o.Logger.Error("could not renew the Lease within the renew deadline: stopping leading",
				"renew_deadline", e.o.RenewDeadline, "last_error", e.trouble)
		}
		endLead()
		return
	}
}

// tryRenew writes a new renew time on the Lease; gone reports that
// someone else holds it now.
func (e *Elector) tryRenew(ctx context.Context) (renewed, gone bool) {
	l := e.lease
	for range 2 {
		now := time.Now()
		spec := e.record(now)
		spec.AcquireTime, spec.LeaseTransitions = l.Spec.AcquireTime, l.Spec.LeaseTransitions
		err := e.write(ctx, l, spec)
		if err == nil {
			e.renewedAt = now
			return true, false
		}
		e.failed("renew the Lease", err)
		if !apierrors.IsConflict(err) {
			return false, false
		}
		// Someone wrote the Lease since this replica did: read it, and
		// renew only if it still names this replica.
		if l, err = e.leases.Get(ctx, e.o.LeaseName, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) { // deleted: stand again, as for a new Lease
				e.lease, e.mayHold = nil, false
				return false, true
			}
			e.failed("read the Lease", err)
			return false, false
		}
		e.see(l)
		if holderOf(l) != e.o.Identity {
			return false, true
		}
	}
	return false, false
}

// release lets go of the Lease if it may name this replica, so that
// another takes over at once: it clears the holder and sets a one-second
// duration, as client-go does. Called only when Lead is not running.
func (e *Elector) release() {
	if !e.mayHold {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.o.RenewDeadline)
	defer cancel()
	l := e.lease
	for ctx.Err() == nil {
		if l == nil || holderOf(l) != e.o.Identity {
			var err error
			if l, err = e.leases.Get(ctx, e.o.LeaseName, metav1.GetOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					e.mayHold = false
					return
				}
				e.o.Logger.Error("could not read the Lease to release it; the others take over when it expires", "err", err)
				return
			}
			e.see(l)
			if holderOf(l) != e.o.Identity {
				return
			}
		}
		now := metav1.NewMicroTime(time.Now())
		spec := coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To(int32(1)),
			AcquireTime: &now, RenewTime: ptr.To(now), LeaseTransitions: l.Spec.LeaseTransitions,
		}
		err := e.write(ctx, l, spec)
		if err == nil {
			e.o.Logger.Info("released the Lease")
			return
		}
		if !apierrors.IsConflict(err) {
			e.o.Logger.Error("could not release the Lease; the others take over when it expires", "err", err)
			return
		}
		l = nil // written since: read it again
	}
	e.o.Logger.Error("could not release the Lease within the renew deadline; the others take over when it expires")
}

// write replaces the Lease's spec, on the resourceVersion of base.
func (e *Elector) write(ctx context.Context, base *coordinationv1.Lease, spec coordinationv1.LeaseSpec) error {
	l := base.DeepCopy()
	l.Spec = spec
	got, err := e.leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		if !known(err) && ptr.Deref(spec.HolderIdentity, "") == e.o.Identity {
			e.mayHold = true
		}
		return err
	}
	e.ok()
	e.see(got)
	return nil
}

// see records a Lease read or written: the record's observation time
// moves only when the record changed.
func (e *Elector) see(l *coordinationv1.Lease) {
	e.lease = l
	e.mayHold = holderOf(l) == e.o.Identity
	if e.observedAt.IsZero() || !sameRecord(&e.observed, &l.Spec) {
		if h := holderOf(l); h != ptr.Deref(e.observed.HolderIdentity, "") && h != e.o.Identity {
			e.o.Logger.Debug("new Lease holder", "holder", h)
		}
		e.observed = *l.Spec.DeepCopy()
		e.observedAt = time.Now()
	}
}

// expiry is when the observed record's term runs out, by this replica's
// clock.
func (e *Elector) expiry() time.Time {
	return e.observedAt.Add(time.Duration(ptr.Deref(e.observed.LeaseDurationSeconds, 0)) * time.Second)
}

// record is the Lease's spec naming this replica from now.
func (e *Elector) record(now time.Time) coordinationv1.LeaseSpec {
	t := metav1.NewMicroTime(now)
	return coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(e.o.Identity),
		LeaseDurationSeconds: ptr.To(int32(e.o.LeaseDuration / time.Second)),
		AcquireTime:          &t,
		RenewTime:            ptr.To(t),
		LeaseTransitions:     ptr.To(int32(0)),
	}
}

// failed logs a failed call once, until calls succeed again.
func (e *Elector) failed(what string, err error) {
	msg := what + ": " + err.Error()
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		e.o.Logger.Debug("lost a race for the Lease", "call", what, "err", err)
		return
	}
	if msg != e.trouble {
		e.o.Logger.Warn("leader election: could not "+what, "err", err)
	}
	e.trouble = msg
}

// ok notes a successful call after failures.
func (e *Elector) ok() {
	if e.trouble != "" {
		e.o.Logger.Info("leader election: the API server answers again")
		e.trouble = ""
	}
}

func (e *Elector) change(leading bool) {
	e.leading.Store(leading)
	if leading {
		e.o.Logger.Info("leading: this replica holds the chat connections")
	} else {
		e.o.Logger.Info("stopped leading")
	}
	if e.o.OnChange != nil {
		e.o.OnChange(leading)
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l == nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// sameRecord compares the election's fields of two Lease specs.
func sameRecord(a, b *coordinationv1.LeaseSpec) bool {
	sameTime := func(x, y *metav1.MicroTime) bool {
		return x == nil && y == nil || x != nil && y != nil && x.Equal(y)
	}
	return ptr.Equal(a.HolderIdentity, b.HolderIdentity) &&
		ptr.Equal(a.LeaseDurationSeconds, b.LeaseDurationSeconds) &&
		ptr.Equal(a.LeaseTransitions, b.LeaseTransitions) &&
		ptr.Equal(a.PreferredHolder, b.PreferredHolder) &&
		ptr.Equal(a.Strategy, b.Strategy) &&
		sameTime(a.AcquireTime, b.AcquireTime) && sameTime(a.RenewTime, b.RenewTime)
}

// known reports whether a failed write surely did not happen: the API
// server refused it. A timeout or a broken connection leaves it unknown.
func known(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) ||
		apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsInvalid(err) ||
		apierrors.IsBadRequest(err)
}

// jitter is d stretched by up to jitterFactor, at random.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Float64()*jitterFactor*float64(d))
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Always leads from the start: the single replica without election.
type Always struct {
	// Lead runs until Run's context ends. Required.
	Lead     func(ctx context.Context)
	OnChange func(leading bool) // as Options.OnChange
	leading  atomic.Bool
}

// Run runs Lead until ctx ends.
func (a *Always) Run(ctx context.Context) error {
	if a.Lead == nil {
		return errors.New("leader: Always without a Lead function")
	}
	a.leading.Store(true)
	if a.OnChange != nil {
		a.OnChange(true)
	}
	a.Lead(ctx)
	a.leading.Store(false)
	if a.OnChange != nil {
		a.OnChange(false)
	}
	return nil
}

// IsLeader reports whether Lead is running.
func (a *Always) IsLeader() bool { return a.leading.Load() }

// ClientOptions select the cluster holding the Lease, as the kubernetes
// section of the configuration does.
type ClientOptions struct {
	Kubeconfig string // a kubeconfig file; empty: the default loading rules
	Context    string // a context in it; empty: the current one
	InCluster  bool   // the pod's service account
	UserAgent  string
	// Timeout bounds each HTTP request (the Elector also bounds each
	// call by the renew deadline); use the renew deadline. Zero means 10s.
	Timeout time.Duration
}

// NewClient returns a client for the Lease from a kubeconfig or the pod's
// service account.
func NewClient(o ClientOptions) (kube.Interface, error) {
	var cfg *rest.Config
	var err error
	if o.InCluster {
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("leader election: in-cluster kubernetes config: %w", err)
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Kubeconfig
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("leader election: kubeconfig: %w", err)
		}
	}
	return ClientFor(cfg, o.UserAgent, o.Timeout)
}

// ClientFor returns a client for the Lease from a REST config, with each
// call bounded by timeout (zero: 10s).
func ClientFor(cfg *rest.Config, userAgent string, timeout time.Duration) (kube.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg.Timeout = timeout
	cfg.UserAgent = userAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "parley"
	}
	c, err := kube.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election: kubernetes client: %w", err)
	}
	return c, nil
}
