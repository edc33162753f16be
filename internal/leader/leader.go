// Package leader elects the one Parley replica that holds the chat
// connections (Slack Socket Mode, the Discord gateway) when several run at
// once. It wraps client-go's leader election on a coordination.k8s.io
// Lease: a candidate acquires the Lease when it is free or has not been
// renewed for its duration, the leader renews it every retry period, and a
// leader that cannot renew within the renew deadline stops leading (before
// the lease expires for the others, so two replicas never lead at once as
// long as clocks run at the same rate).
//
// Lead runs while this replica leads, under a context that ends when the
// leadership does. The Elector waits for Lead to return before it lets go
// of the Lease, so a replica that stops cleanly has closed its chat
// connections before it releases the Lease, and another replica takes over
// within a retry period; a replica that dies leaves the Lease to expire,
// and the takeover takes up to the lease duration plus a retry period.
//
// Always is the stand-in for a single replica without election.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Options configure an Elector.
type Options struct {
	// Client reaches the API server holding the Lease, as Parley itself
	// (never an impersonated user). Its calls should have a deadline:
	// NewClient sets one.
	Client kubernetes.Interface
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
	case o.RetryPeriod <= 0 || float64(o.RenewDeadline) <= leaderelection.JitterFactor*float64(o.RetryPeriod):
		bad("retry period %s must be positive and under the renew deadline %s / %.1f", o.RetryPeriod, o.RenewDeadline, leaderelection.JitterFactor)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Elector takes part in the election for one Lease.
type Elector struct {
	o       Options
	lock    *resourcelock.LeaseLock
	leading atomic.Bool
}

// New returns an Elector; Run takes part in the election.
func New(o Options) (*Elector, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.LeaseNamespace, Name: o.LeaseName},
		Client:     o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	o.Logger = o.Logger.With("lease", o.LeaseNamespace+"/"+o.LeaseName, "identity", o.Identity)
	return &Elector{o: o, lock: lock}, nil
}

// IsLeader reports whether Lead is running on this replica.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// Identity is this replica's name in the Lease.
func (e *Elector) Identity() string { return e.o.Identity }

// Run takes part in the election until ctx ends: whenever this replica
// wins, it runs Lead until the leadership is lost, then stands again. It
// returns nil once ctx has ended, Lead has returned and (unless
// KeepLeaseOnStop) the Lease has been released.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := e.term(ctx); err != nil {
			return err
		}
		if ctx.Err() == nil {
			// Lost the lease (the API server unreachable, or another took
			// it): stand again after a pause, as a follower.
			e.o.Logger.Warn("leadership lost; standing again")
			select {
			case <-ctx.Done():
			case <-time.After(e.o.RetryPeriod):
			}
		}
	}
	return nil
}

// term runs one client-go election: it waits to acquire the Lease, runs
// Lead while it is held, and returns when ctx ends or the Lease is lost.
func (e *Elector) term(ctx context.Context) error {
	// client-go starts OnStartedLeading on a goroutine of its own that it
	// does not wait for; this one only hands its context over, and Lead
	// runs here, on Run's goroutine, where it is waited for.
	started := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.lock,
		LeaseDuration:   e.o.LeaseDuration,
		RenewDeadline:   e.o.RenewDeadline,
		RetryPeriod:     e.o.RetryPeriod,
		ReleaseOnCancel: !e.o.KeepLeaseOnStop,
		Name:            e.o.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { started <- lctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	// The election's own context ends only after Lead has returned, so
	// the Lease is renewed while Lead winds down and released after it.
	ectx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(ectx)
	}()

	var lctx context.Context
	select {
	case lctx = <-started:
	case <-ctx.Done():
	case <-done:
		// NewLeaderElector checked everything that could end Run early;
		// only ectx ends it, and that has not happened yet.
	}
	if lctx != nil {
		leadCtx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(lctx, cancel)
		e.change(true)
		e.o.Lead(leadCtx)
		e.change(false)
		stop()
		cancel()
	}
	stopElection()
	<-done
	return nil
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
	// Timeout bounds each API call (client-go's acquire loop sets none of
	// its own); use the renew deadline. Zero means 10s.
	Timeout time.Duration
}

// NewClient returns a client for the Lease from a kubeconfig or the pod's
// service account.
func NewClient(o ClientOptions) (kubernetes.Interface, error) {
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
func ClientFor(cfg *rest.Config, userAgent string, timeout time.Duration) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg.Timeout = timeout
	cfg.UserAgent = userAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "parley"
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election: kubernetes client: %w", err)
	}
	return c, nil
}
