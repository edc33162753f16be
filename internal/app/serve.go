package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/leader"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// mux routes each reply to the adapter of its platform.
type mux struct {
	mu       sync.RWMutex
	adapters map[string]chat.Sender
}

func (m *mux) add(name string, s chat.Sender) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adapters == nil {
		m.adapters = map[string]chat.Sender{}
	}
	m.adapters[name] = s
}

// Send implements chat.Sender.
func (m *mux) Send(ctx context.Context, r chat.Reply) (string, error) {
	m.mu.RLock()
	s, ok := m.adapters[r.Platform]
	m.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("no %q adapter is connected for this reply", r.Platform)
	}
	return s.Send(ctx, r)
}

// FindPosted implements incident.Finder with the reply's adapter, when
// that adapter can look for a message by its idempotency key; "" when it
// cannot (the incident manager then posts again).
func (m *mux) FindPosted(ctx context.Context, r chat.Reply, since time.Time) (string, error) {
	m.mu.RLock()
	s, ok := m.adapters[r.Platform]
	m.mu.RUnlock()
	if f, can := s.(incident.Finder); ok && can {
		return f.FindPosted(ctx, r, since)
	}
	return "", nil
}

// cmdServe runs Parley as a service: chat adapters from the configuration,
// the HTTP server (health, readiness, webhooks), and the confirmation
// sweeper, until a signal ends it.
//
// With leader_election, several replicas run at once: every one serves
// HTTP (followers are ready: they answer webhooks and /metrics, and the
// Slack Events API), takes Alertmanager notifications into the shared
// store, sweeps and recovers confirmations and keeps its claims alive,
// all safe on the shared PostgreSQL store; only the elected leader holds
// the chat connections (Slack Socket Mode, the Discord gateway) and
// delivers incident messages from the store. parley_leader says which
// replica leads.
//
// A chat platform that is down, at start or later, does not stop serve:
// its adapter is started again with a backoff, /readyz says it is down,
// and incident messages wait in the outbox until they are delivered or
// expire (incidents.expire_after).
func cmdServe(ctx context.Context, args []string, env Env) error {
	fs := newFlags("serve", env)
	configFile := fs.String("config", "", "configuration file (default: embedded defaults)")
	actionsDir := fs.String("actions", "", "folder of user-defined actions (default: actions_dir of --config)")
	allowDamaged := fs.Bool(allowDamagedFlag, false, allowDamagedUsage)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	if *actionsDir != "" {
		cfg.ActionsDir = *actionsDir
	}
	log := newLogger(env, cfg.Log.Level, cfg.Log.Format)
	senders := &mux{}
	metrics := telemetry.New(telemetry.Options{RuntimeCollectors: true})
	p, err := Build(ctx, Options{Config: cfg, Logger: log, Now: env.now, Metrics: metrics, Getenv: env.getenv, AllowDamagedAudit: *allowDamaged}, senders)
	if err != nil {
		return err
	}
	defer func() {
		if err := p.Close(context.WithoutCancel(ctx)); err != nil {
			log.Error("closing the store and audit sinks failed", "err", err)
		}
	}()
	adapters, handlers, err := buildAdapters(ctx, cfg, p, log)
	if err != nil {
		return err
	}
	for _, a := range adapters {
		senders.add(a.Name(), a)
	}
	sink, err := buildWebhookSink(cfg, log)
	if err != nil {
		return err
	}
	if sink != nil {
		senders.add(sink.Name(), sink) // it only sends: nothing to run
	}
	// Recovery tells channels what became of interrupted requests,
	// through the adapters, which send only while they run (Slack's
	// outbox): it runs once the adapters this replica runs are up, and
	// every message waits for it, so that none is handled before what a
	// stopped process left is settled.
	recovered := make(chan struct{})
	handler := afterRecovery{next: p.Pipeline, recovered: recovered}
	// The chat connections run only while this replica leads: with
	// several replicas, exactly one holds the Slack socket and the Discord
	// gateway; without leader election, this one always does. The first
	// failure of any part ends serve.
	errc := make(chan error, 1)
	incidents, err := buildIncidents(p, senders, metrics, log)
	if err != nil {
		return err
	}
	leaderOnly, everyReplica := splitByLeadership(adapters)
	status := newAdapterStatus(env.now, metrics)
	if incidents != nil {
		status.onUp = func(string) { incidents.Retry() }
	}
	for _, a := range leaderOnly {
		status.add(a, true)
	}
	for _, a := range everyReplica {
		status.add(a, false)
	}
	chats := &chatRunner{adapters: leaderOnly, handler: handler, status: status, errc: errc, incidents: incidents, log: log}
	el, err := newElector(cfg, chats.lead, metrics, log)
	if err != nil {
		return err
	}
	if incidents != nil {
		// Every replica takes notifications into the shared store; the
		// leader merges them and posts.
		handlers[webhookPath] = incidents.Handler()
	}

	ready := &atomic.Bool{}
	// Ready once started, the adapters that serve on every replica (the
	// Events API) have started or failed to, and the store answers. A
	// chat adapter that is down does not make the replica unready (the
	// webhook must still be reached): the answer says it is down.
	readyNow := func() (bool, []string) { return ready.Load() && !status.starting(), status.lines() }
	srv, ln, err := openHTTP(cfg, p, metrics, handlers, readyNow, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			report(errc, fmt.Errorf("http server: %w", err))
		}
	})
	wg.Go(func() {
		if err := el.Run(ctx); err != nil {
			report(errc, err)
		}
	})
	wg.Go(func() { runEveryReplica(ctx, everyReplica, handler, p, status, log) })
	wg.Go(func() { status.watch(ctx) })
	wg.Go(func() {
		defer close(recovered)
		// A follower does not run the leader's adapters; a single
		// replica always leads.
		up := func() bool {
			return adaptersRunning(everyReplica) &&
				(cfg.LeaderElection != nil && !el.IsLeader() || adaptersRunning(leaderOnly))
		}
		for deadline := time.Now().Add(recoverWait); !up() && time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(20 * time.Millisecond)
		}
		if !up() {
			log.Warn("chat adapters not running yet; recovering anyway (notices they cannot take are audited as undelivered)")
		}
		if err := p.Pipeline.Recover(ctx); err != nil {
			report(errc, err)
		}
	})
	// Confirmations: expire overdue ones; keep this replica's claims alive
	// and pick up those of a replica that died (several replicas share
	// PostgreSQL; with SQLite there is one process and this is cheap).
	wg.Go(func() {
		if err := p.Confirmations.KeepAlive(ctx, 0); err != nil {
			log.Warn("confirmation heartbeat stopped", "err", err)
		}
	})
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.Pipeline.Sweep(ctx)
				if n%6 == 5 {
					if err := p.Pipeline.Recover(ctx); err != nil {
						log.Warn("recovering interrupted confirmations failed", "err", err)
					}
				}
			}
		}
	})
	ready.Store(true)
	log.Info("parley serving", "listen", ln.Addr().String(), "adapters", len(adapters),
		"leader_election", cfg.LeaderElection != nil, "version", Version)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	ready.Store(false)
	cancel()
	shutdown, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("http server did not stop cleanly; open connections were cut", "err", err)
	}
	wg.Wait()
	log.Info("parley stopped")
	return runErr
}

// readiness says whether serve is ready, and how each chat adapter is.
type readiness func() (ready bool, adapters []string)

// openHTTP opens serve's one listener with its routes and limits.
func openHTTP(cfg *config.Config, p *Parley, metrics *telemetry.Metrics, handlers map[string]http.Handler,
	ready readiness, log *slog.Logger) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return newHTTPServer(cfg.Server, serveMux(cfg, p, metrics, handlers, ready, log), log), ln, nil
}

// serveMux routes serve's HTTP endpoints, each with its body limit; the
// probes answer whatever else is going on, every other route but the
// Alertmanager webhook passes the gate on unauthenticated concurrency. The
// webhook checks its credentials (a header) before it reads anything and
// bounds its authenticated requests itself, so a storm of unauthenticated
// posts takes no slot an authenticated one needs.
func serveMux(cfg *config.Config, p *Parley, metrics *telemetry.Metrics, adapters map[string]http.Handler,
	ready readiness, log *slog.Logger) *http.ServeMux {
	g := newGate(cfg.Server.MaxUnauthenticated, log.With("component", "http"))
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", limitBody(maxQueryBody, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})))
	mux.Handle("GET /readyz", limitBody(maxQueryBody, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, lines := ready()
		detail := ""
		if len(lines) > 0 {
			detail = "\n" + strings.Join(lines, "\n")
		}
		if !ok {
			http.Error(w, "starting"+detail, http.StatusServiceUnavailable)
			return
		}
		if err := p.DB.SQL().PingContext(r.Context()); err != nil {
			http.Error(w, "store unavailable"+detail, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ready"+detail)
	})))
	mux.Handle("GET /metrics", g.wrap(limitBody(maxQueryBody, metrics.Handler())))
	mux.Handle("GET /reports/", g.wrap(limitBody(maxQueryBody, http.StripPrefix("/reports", evals.ReportsHandler(cfg.Evals.ReportsDir)))))
	for path, h := range adapters {
		if path == webhookPath && cfg.Incidents != nil {
			mux.Handle(path, limitBody(cfg.Incidents.MaxBody, h))
			continue
		}
		mux.Handle(path, g.wrap(limitBody(maxAdapterBody, h)))
	}
	return mux
}

// webhookPath is the Alertmanager webhook's route.
const webhookPath = "POST /webhooks/alertmanager"

// elector decides when this replica leads: *leader.Elector with several
// replicas, *leader.Always with one.
type elector interface {
	Run(ctx context.Context) error
	IsLeader() bool
}

// newElector returns the election the configuration asks for, with lead
// run while this replica leads and the parley_leader gauge following it.
func newElector(cfg *config.Config, lead func(context.Context), metrics *telemetry.Metrics, log *slog.Logger) (elector, error) {
	if cfg.LeaderElection == nil {
		return &leader.Always{Lead: lead, OnChange: metrics.IsLeader}, nil
	}
	client, err := leaderClient(cfg)
	if err != nil {
		return nil, err
	}
	return leader.New(leaderOptions(cfg.LeaderElection, client, lead, metrics, log))
}

// leaderClient connects to the cluster holding the Lease: the one of
// leader_election.kubeconfig, else the kubernetes section's, as Parley
// itself (no impersonation). Each call is bounded by the renew deadline.
func leaderClient(cfg *config.Config) (kube.Interface, error) {
	le, k := cfg.LeaderElection, cfg.Kubernetes
	o := leader.ClientOptions{Kubeconfig: le.Kubeconfig, UserAgent: "parley/" + Version, Timeout: le.RenewDeadline.Std()}
	if le.Kubeconfig == "" {
		o.Kubeconfig, o.Context, o.InCluster = k.Kubeconfig, k.Context, k.InCluster
	}
	return leader.NewClient(o)
}

// leaderOptions maps the leader_election section to the elector's options.
func leaderOptions(le *config.LeaderElection, client kube.Interface, lead func(context.Context), metrics *telemetry.Metrics, log *slog.Logger) leader.Options {
	return leader.Options{
		Client: client, LeaseName: le.LeaseName, LeaseNamespace: le.LeaseNamespace, Identity: le.Identity,
		LeaseDuration: le.LeaseDuration.Std(), RenewDeadline: le.RenewDeadline.Std(), RetryPeriod: le.RetryPeriod.Std(),
		Lead: lead, OnChange: metrics.IsLeader, Logger: log.With("component", "leader"),
	}
}

// chatRunner runs the chat adapters and the incident outbox, on the
// leader only.
type chatRunner struct {
	adapters []chat.Adapter
	handler  chat.Handler
	status   *adapterStatus
	// errc receives a failure that ends serve (the pod restarts): the
	// incident manager's. A chat adapter's failure does not end serve: it
	// is started again (supervise).
	errc      chan<- error
	incidents *incident.Manager // nil without an incidents section
	log       *slog.Logger
}

// lead runs every adapter until ctx ends (the leadership or the process
// does) and returns when all have stopped, so that a replica hands over
// its chat connections closed.
func (r *chatRunner) lead(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range r.adapters {
		wg.Go(func() { supervise(ctx, a, r.handler, r.status, r.log) })
	}
	// The incident manager delivers incident messages: on the leader
	// only, so one replica edits each alert group's message; every
	// replica's webhook feeds it through the store.
	if r.incidents != nil {
		wg.Go(func() {
			if err := r.incidents.Run(ctx); err != nil && ctx.Err() == nil {
				report(r.errc, fmt.Errorf("incidents: %w", err))
			}
		})
	}
	// Leadership lasts until ctx ends, even with nothing to run (no chat
	// platform configured, or only Events API adapters, which run on every
	// replica): returning early would release the Lease and campaign again
	// every retry period.
	<-ctx.Done()
	wg.Wait()
}

// recoverWait bounds how long serve's first recovery waits for the chat
// adapters to run.
const recoverWait = 30 * time.Second

// afterRecovery hands messages on once the start-up recovery is done.
type afterRecovery struct {
	next      chat.Handler
	recovered <-chan struct{}
}

func (h afterRecovery) Handle(ctx context.Context, msg chat.Message) {
	select {
	case <-h.recovered:
	case <-ctx.Done():
		return
	}
	h.next.Handle(ctx, msg)
}

// report passes err on unless an earlier failure already is: the first
// one ends serve, and no sender blocks.
func report(errc chan<- error, err error) {
	select {
	case errc <- err:
	default:
	}
}

// cmdConfig validates or prints a configuration file.
func cmdConfig(_ context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "validate" && args[0] != "show") {
		return fmt.Errorf("%w: want \"parley config validate|show --config FILE\"", errUsage)
	}
	fs := newFlags("config "+args[0], env)
	configFile := fs.String("config", "", "configuration file")
	actionsDir := fs.String("actions", "", "folder of user-defined actions (default: actions_dir of --config)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if *actionsDir != "" {
		cfg.ActionsDir = *actionsDir
	}
	if args[0] == "show" {
		return cfg.Dump(env.Stdout)
	}
	return validateConfig(cfg, env)
}
