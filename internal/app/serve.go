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
// HTTP (followers are ready: they answer webhooks and /metrics), sweeps
// and recovers confirmations and keeps its claims alive, all safe on the
// shared PostgreSQL store; only the elected leader runs the chat adapters.
// parley_leader says which replica leads.
func cmdServe(ctx context.Context, args []string, env Env) error {
	fs := newFlags("serve", env)
	configFile := fs.String("config", "", "configuration file (default: embedded defaults)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	log := newLogger(env, cfg.Log.Level, cfg.Log.Format)
	senders := &mux{}
	metrics := telemetry.New(telemetry.Options{RuntimeCollectors: true})
	p, err := Build(ctx, Options{Config: cfg, Logger: log, Now: env.now, Metrics: metrics}, senders)
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	if err := p.Pipeline.Recover(ctx); err != nil {
		return err
	}
	adapters, handlers, err := buildAdapters(ctx, cfg, p, log)
	if err != nil {
		return err
	}
	for _, a := range adapters {
		senders.add(a.Name(), a)
	}
	// The chat connections run only while this replica leads: with
	// several replicas, exactly one holds the Slack socket and the Discord
	// gateway; without leader election, this one always does. The first
	// failure of any part ends serve.
	errc := make(chan error, 1)
	incidents, err := buildIncidents(p, senders, metrics, log)
	if err != nil {
		return err
	}
	chats := &chatRunner{adapters: adapters, handler: p.Pipeline, metrics: metrics, errc: errc, incidents: incidents}
	el, err := newElector(cfg, chats.lead, metrics, log)
	if err != nil {
		return err
	}
	if incidents != nil {
		// Only the leader posts incident messages (it holds the chat
		// connections); a follower answers 503 and Alertmanager retries,
		// reaching the leader through the Service.
		webhook := incidents.Handler()
		handlers["POST /webhooks/alertmanager"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !el.IsLeader() {
				w.Header().Set("Retry-After", "2")
				http.Error(w, "this replica does not lead; retry", http.StatusServiceUnavailable)
				return
			}
			webhook.ServeHTTP(w, r)
		})
	}

	ready := &atomic.Bool{}
	httpMux := http.NewServeMux()
	httpMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})
	httpMux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := p.DB.SQL().PingContext(r.Context()); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	httpMux.Handle("GET /metrics", metrics.Handler())
	httpMux.Handle("GET /reports/", http.StripPrefix("/reports", evals.ReportsHandler(cfg.Evals.ReportsDir)))
	for path, h := range handlers {
		httpMux.Handle(path, h)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: httpMux, ReadHeaderTimeout: 10 * time.Second}

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
	_ = srv.Shutdown(shutdown)
	wg.Wait()
	log.Info("parley stopped")
	return runErr
}

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
	wg.Wait()
}

// report passes err on unless an earlier failure already is: the first
// one ends serve, and no sender blocks.
func report(errc chan<- error, err error) {
	select {
	case errc <- err:
	default:
	}
}

func newLogger(env Env, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(env.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.Stderr, opts))
}

// cmdConfig validates or prints a configuration file.
func cmdConfig(_ context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "validate" && args[0] != "show") {
		return fmt.Errorf("%w: want \"parley config validate|show --config FILE\"", errUsage)
	}
	fs := newFlags("config "+args[0], env)
	configFile := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if args[0] == "show" {
		return cfg.Dump(env.Stdout)
	}
	specs, err := Catalog(cfg)
	if err == nil {
		err = checkConfig(cfg, specs)
	}
	if err == nil {
		_, err = loadPolicy(cfg.Policy, specs)
	}
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(env.Stdout, "%s: ok\n", cfg.File())
	return nil
}
