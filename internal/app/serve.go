package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	k8s "k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/incident"
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

// cmdServe runs Parley as a service: chat adapters from the configuration,
// the HTTP server (health, readiness, webhooks), and the confirmation
// sweeper, until a signal ends it.
//
// With leader_election, several replicas run at once: every one serves
// HTTP (followers are ready: they answer webhooks and /metrics, and the
// Slack Events API), sweeps and recovers confirmations and keeps its
// claims alive, all safe on the shared PostgreSQL store; only the elected
// leader holds the chat connections (Slack Socket Mode, the Discord
// gateway). parley_leader says which replica leads.
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
	chats := &chatRunner{adapters: leaderOnly, handler: handler, metrics: metrics, errc: errc, incidents: incidents}
	el, err := newElector(cfg, chats.lead, metrics, log)
	if err != nil {
		return err
	}
	if incidents != nil {
		// Only the leader posts incident messages (it holds the chat
		// connections); a follower answers 503 and Alertmanager retries,
		// reaching the leader through the Service.
		webhook := incidents.Handler()
		handlers[webhookPath] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !el.IsLeader() {
				w.Header().Set("Retry-After", "2")
				http.Error(w, "this replica does not lead; retry", http.StatusServiceUnavailable)
				return
			}
			webhook.ServeHTTP(w, r)
		})
	}

	ready := &atomic.Bool{}
	// Ready once started and every adapter that serves on every replica
	// (the Events API) takes events.
	readyNow := func() bool { return ready.Load() && adaptersRunning(everyReplica) }
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
	wg.Go(func() { runEveryReplica(ctx, everyReplica, handler, p, metrics, errc, log) })
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

// openHTTP opens serve's one listener with its routes and limits.
func openHTTP(cfg *config.Config, p *Parley, metrics *telemetry.Metrics, handlers map[string]http.Handler,
	ready func() bool, log *slog.Logger) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return newHTTPServer(cfg.Server, serveMux(cfg, p, metrics, handlers, ready, log), log), ln, nil
}

// serveMux routes serve's HTTP endpoints, each with its body limit; the
// probes answer whatever else is going on, every other route passes the
// gate on unauthenticated concurrency.
func serveMux(cfg *config.Config, p *Parley, metrics *telemetry.Metrics, adapters map[string]http.Handler,
	ready func() bool, log *slog.Logger) *http.ServeMux {
	g := newGate(cfg.Server.MaxUnauthenticated, log.With("component", "http"))
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", limitBody(maxQueryBody, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})))
	mux.Handle("GET /readyz", limitBody(maxQueryBody, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := p.DB.SQL().PingContext(r.Context()); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})))
	mux.Handle("GET /metrics", g.wrap(limitBody(maxQueryBody, metrics.Handler())))
	mux.Handle("GET /reports/", g.wrap(limitBody(maxQueryBody, http.StripPrefix("/reports", evals.ReportsHandler(cfg.Evals.ReportsDir)))))
	for path, h := range adapters {
		limit := int64(maxAdapterBody)
		if path == webhookPath && cfg.Incidents != nil {
			limit = cfg.Incidents.MaxBody
		}
		mux.Handle(path, g.wrap(limitBody(limit, h)))
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
func leaderClient(cfg *config.Config) (k8s.Interface, error) {
	le, k := cfg.LeaderElection, cfg.Kubernetes
	o := leader.ClientOptions{Kubeconfig: le.Kubeconfig, UserAgent: "parley/" + Version, Timeout: le.RenewDeadline.Std()}
	if le.Kubeconfig == "" {
		o.Kubeconfig, o.Context, o.InCluster = k.Kubeconfig, k.Context, k.InCluster
	}
	return leader.NewClient(o)
}

// leaderOptions maps the leader_election section to the elector's options.
func leaderOptions(le *config.LeaderElection, client k8s.Interface, lead func(context.Context), metrics *telemetry.Metrics, log *slog.Logger) leader.Options {
	return leader.Options{
		Client: client, LeaseName: le.LeaseName, LeaseNamespace: le.LeaseNamespace, Identity: le.Identity,
		LeaseDuration: le.LeaseDuration.Std(), RenewDeadline: le.RenewDeadline.Std(), RetryPeriod: le.RetryPeriod.Std(),
		Lead: lead, OnChange: metrics.IsLeader, Logger: log.With("component", "leader"),
	}
}

// chatRunner runs the chat adapters, on the leader only.
type chatRunner struct {
	adapters []chat.Adapter
	handler  chat.Handler
	metrics  *telemetry.Metrics
	// errc receives an adapter's failure, which ends serve (the pod
	// restarts).
	errc      chan<- error
	incidents *incident.Manager // nil without an incidents section
}

// lead runs every adapter until ctx ends (the leadership or the process
// does) and returns when all have stopped, so that a replica hands over
// its chat connections closed.
func (r *chatRunner) lead(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range r.adapters {
		wg.Go(func() {
			r.metrics.ChatConnected(a.Name(), true)
			defer r.metrics.ChatConnected(a.Name(), false)
			if err := a.Run(ctx, r.handler); err != nil && ctx.Err() == nil {
				report(r.errc, fmt.Errorf("%s adapter: %w", a.Name(), err))
			}
		})
	}
	// The incident manager posts to chat too: on the leader only, so one
	// replica edits each alert group's message.
	if r.incidents != nil {
		wg.Go(func() {
			if err := r.incidents.Run(ctx); err != nil && ctx.Err() == nil {
				report(r.errc, fmt.Errorf("incidents: %w", err))
			}
		})
	}
	// Lead for as long as the leadership lasts, even with nothing to run
	// (only Events API adapters, which run on every replica): returning
	// early would hand the Lease back at once, over and over.
	<-ctx.Done()
	wg.Wait()
	// Leadership lasts until ctx ends, even with nothing to run (no chat
	// platform configured, or an adapter that stopped without an error):
	// returning early would release the Lease and campaign again every
	// retry period.
	<-ctx.Done()
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
