package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/actions/evaluation"
	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/actions/loki"
	"github.com/parley-chatops/parley/actions/prometheus"
	"github.com/parley-chatops/parley/actions/useraction"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/audit/lokisink"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/dedupe"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/pipeline"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// Options select the parts of one Parley instance.
type Options struct {
	// Config is the configuration; nil means config.Default() (sandbox
	// cluster, embedded policy, no backends, no chat platforms).
	Config *config.Config
	Logger *slog.Logger
	Now    func() time.Time
	// Metrics receives Parley's own metrics; nil records none.
	Metrics *telemetry.Metrics
	// Getenv resolves the secrets user-defined actions name; nil means
	// os.Getenv.
	Getenv func(string) string
	// AllowDamagedAudit starts Parley although the database or the audit
	// chain failed the start-up check, recording that (--allow-damaged-audit).
	AllowDamagedAudit bool
	// AuditCommitWindow is how long audit events nobody waits for yet may
	// wait to share a commit (audit.Options.CommitWindow); 0 means the
	// default.
	AuditCommitWindow time.Duration
}

// Parley is one wired instance: everything a chat adapter needs.
type Parley struct {
	DB            *store.DB
	Audit         *audit.Recorder
	Confirmations *confirm.Store
	Policy        *policy.Policy
	Actions       *action.Registry
	Router        intent.Router
	Inventory     intent.InventorySource
	Sandbox       *kubernetes.Sandbox // nil against a real cluster
	Pipeline      *pipeline.Pipeline
	Evals         *evals.Runner
	// Kube gives Parley's own Kubernetes client (subject "") and the
	// per-user ones; Config is the configuration the instance runs with.
	Kube   kubernetes.ClientFor
	Config *config.Config
	// Spend is the ledger of model calls (nil without an LLM), shared by
	// the router and every summary.
	Spend *llmcost.Ledger

	defs  *definitions // what was loaded from files: specs, policy, routes, prompts
	sinks []audit.Sink // secondary audit destinations, closed after the recorder
}

// newSandbox starts the in-memory cluster from manifests or the demo shop.
func newSandbox(path string, now func() time.Time) (*kubernetes.Sandbox, error) {
	data := kubernetes.DemoManifests()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("sandbox: kubernetes.manifests: %w (fix the path, or remove the setting for the demo shop)", err)
		}
		data = b
	}
	return kubernetes.NewSandboxWithClock(now, data)
}

// buildActions registers every action, explicitly, in catalog order (the
// registry must hold exactly the catalog's actions). Integrations that are
// not configured still register, and answer with how to configure them.
func buildActions(cfg *config.Config, specs []action.Spec, k8sOpts kubernetes.Options, inv intent.InventorySource, help *pipeline.Help, evalActs, user []action.Action, spend *llmcost.Ledger, metrics *telemetry.Metrics, log *slog.Logger) (*action.Registry, error) {
	k8s, err := kubernetes.Actions(k8sOpts)
	if err != nil {
		return nil, err
	}
	prom, err := prometheus.New(prometheusOptions(cfg, k8sOpts.Now, log))
	if err != nil {
		return nil, err
	}
	lokiOpts := lokiOptions(cfg, k8sOpts.Now, log)
	if err := lokiOpts.Validate(); err != nil {
		return nil, fmt.Errorf("loki: %w", err)
	}
	oncall, err := onCallActions(cfg, k8sOpts)
	if err != nil {
		return nil, err
	}
	acts := []action.Action{help, prom, loki.New(lokiOpts)}
	acts = append(acts, k8s...)
	acts = append(acts, oncall...)
	acts = append(acts, evalActs...)
	// incident.diagnose consults the read actions registered above.
	base, err := action.NewRegistry(acts...)
	if err != nil {
		return nil, err
	}
	diag := &incident.Diagnose{Inventory: inv, Sources: diagnoseSources(base), Logger: log}
	if l := cfg.Router.LLM; l != nil { // a model writes the diagnosis, as in the incident channels
		lo, err := llmOptions(l, spend, metrics, log, k8sOpts.Now)
		if err != nil {
			return nil, err
		}
		if diag.Summarizer, err = llm.NewSummarizer(lo); err != nil {
			return nil, err
		}
	}
	reg, err := action.NewRegistry(append(append(acts, diag), user...)...)
	if err != nil {
		return nil, err
	}
	if got, want := specNames(reg.Specs()), specNames(specs); !slices.Equal(got, want) {
		return nil, fmt.Errorf("the registered actions %v are not the catalog's %v: register each action where its spec is listed", got, want)
	}
	return reg, nil
}

// Build wires one Parley instance around a chat sender: the store, audit
// recorder, confirmations, policy, actions, router and pipeline. Adapters
// feed Parley.Pipeline; replies go to sender. Close releases it.
func Build(ctx context.Context, o Options, sender chat.Sender) (*Parley, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = config.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	k8sOpts := kubernetes.Options{Now: o.Now, Timeout: cfg.Kubernetes.Timeout.Std(), Namespaces: cfg.Kubernetes.Namespaces}
	var sb *kubernetes.Sandbox
	var err error
	// sandboxReady is closed once the sandbox is built (or failed: sbErr),
	// on another goroutine while the rest is wired; it is the slowest part
	// of a start. Whatever asks it for a client first waits for it, and
	// Build does before it returns.
	var sandboxReady chan struct{}
	var sbErr error
	if cfg.Kubernetes.Sandbox {
		sandboxReady = make(chan struct{})
		go func() {
			defer close(sandboxReady)
			sb, sbErr = newSandbox(cfg.Kubernetes.Manifests, o.Now)
		}()
		k8sOpts.Clients = func(subject string) (kube.Interface, error) {
			<-sandboxReady
			if sbErr != nil {
				return nil, sbErr
			}
			return sb.Client(), nil
		}
	} else {
		ids := map[string]kubernetes.Identity{}
		for subject, id := range cfg.Kubernetes.Impersonate {
			ids[subject] = kubernetes.Identity{User: id.User, Groups: id.Groups}
		}
		k8sOpts.Clients, err = kubernetes.NewClients(kubernetes.ClusterOptions{
			Kubeconfig: cfg.Kubernetes.Kubeconfig, Context: cfg.Kubernetes.Context,
			InCluster: cfg.Kubernetes.InCluster, Impersonate: ids, UserAgent: "parley/" + Version,
		})
		if err != nil {
			return nil, err
		}
	}
	defs, err := loadDefinitions(cfg, useraction.Options{
		Getenv: o.Getenv, Kube: useraction.KubeClients(k8sOpts.Clients), Logger: o.Logger.With("component", "useraction"),
	})
	if err != nil {
		return nil, err
	}
	pol, user, specs := defs.policy, defs.user, defs.specs
	db, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var sinks []audit.Sink
	if cfg.Loki.PushAudit {
		push := cfg.Loki.PushURL
		if push == "" {
			push = cfg.Loki.URL
		}
		sink, err := lokisink.New(lokisink.Options{
			URL: push, TenantID: cfg.Loki.Tenant, BearerToken: cfg.Loki.BearerToken.Value(),
			Logger: o.Logger.With("component", "audit-loki"),
		})
		if err != nil {
			return nil, errors.Join(err, db.Close())
		}
		sinks = append(sinks, sink)
	}
	// On an in-memory database the log lives in the recorder, copied to the
	// database behind the requests (audit.Options.WriteBehind).
	rec := audit.New(db, audit.Options{Now: o.Now, Logger: o.Logger, Sinks: sinks, CommitWindow: o.AuditCommitWindow, WriteBehind: true})
	// fail releases what was opened; a failure to close is reported with
	// the error that stopped the start.
	fail := func(err error) (*Parley, error) {
		return nil, errors.Join(err, rec.Close(ctx), db.Close())
	}
	if err := checkIntegrity(ctx, cfg, db, rec); err != nil {
		var d *damage
		if !errors.As(err, &d) || !o.AllowDamagedAudit {
			return fail(err)
		}
		if err := acceptDamage(ctx, rec, d, o.Logger); err != nil {
			return fail(err)
		}
	}
	copts := confirm.Options{Now: o.Now, Logger: o.Logger}
	if cfg.LeaderElection != nil {
		copts.Replica = cfg.LeaderElection.Identity // the pod name: a restarted pod recovers its own claims
	}
	confirms := confirm.New(db, copts)
	// Events taken by any replica (or by this one before a restart) are
	// not handled again when the platform redelivers them.
	shared, err := dedupe.New(db, dedupe.Options{})
	if err != nil {
		return fail(err)
	}
	seen := dedupe.Durable{Store: shared, Platforms: platforms()}
	k8sInv, err := kubernetes.NewInventory(k8sOpts)
	if err != nil {
		return fail(err)
	}
	runner, evalActs, err := buildEvals(ctx, cfg, db, specs, o.Logger, o.Now)
	if err != nil {
		return fail(err)
	}
	failRunning := func(err error) (*Parley, error) {
		return fail(errors.Join(err, runner.Close(context.WithoutCancel(ctx))))
	}
	inv := intent.NewCached(&withEvals{src: k8sInv, dir: cfg.Evals.Dir}, 15*time.Second, o.Now)
	bindings := bindingsOf(cfg)
	help := &pipeline.Help{Policy: pol, Bindings: bindings}
	var spend *llmcost.Ledger
	if l := cfg.Router.LLM; l != nil {
		if spend, err = spendLedger(l, db, o.Now); err != nil {
			return failRunning(err)
		}
	}
	reg, err := buildActions(cfg, specs, k8sOpts, inv, help, evalActs, user, spend, o.Metrics, o.Logger)
	if err != nil {
		return failRunning(err)
	}
	help.Specs = reg.Specs
	metrics := o.Metrics
	// the registered specs: some depend on the configuration (kubernetes.logs
	// takes "logs" alone when no log store is configured)
	router, filter, err := buildRouter(cfg, reg.Specs(), spend, metrics, o.Logger, o.Now)
	if err != nil {
		return failRunning(err)
	}
	pl, err := pipeline.New(pipeline.Config{
		Trail: cfg.Trail, Bindings: bindings, Now: o.Now, Logger: o.Logger, RouterName: rules.Source,
		FilterCatalog: filter, Metrics: metrics,
	}, pipeline.Deps{
		Router: router, Actions: reg, Inventory: inv, Policy: pol,
		Audit: rec, Confirmations: confirms, Sender: sender, CancelEval: runner.Cancel,
		SeenEvents: seen,
	})
	if err != nil {
		return failRunning(err)
	}
	if sandboxReady != nil {
		<-sandboxReady
		if sbErr != nil {
			return failRunning(sbErr)
		}
		if left := sb.Unserved(); len(left) > 0 {
			o.Logger.Warn("the sandbox left out objects of API groups it does not serve; no action reads them",
				"count", len(left), "objects", strings.Join(left, "; "))
		}
	}
	return &Parley{DB: db, Audit: rec, Confirmations: confirms, Policy: pol, Actions: reg,
		Router: router, Inventory: inv, Sandbox: sb, Pipeline: pl, Evals: runner, Kube: k8sOpts.Clients, Config: cfg, Spend: spend, defs: defs, sinks: sinks}, nil
}

// openStore opens the database the configuration names.
func openStore(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	if cfg.Store.Driver == config.StorePostgres {
		return store.OpenPostgres(ctx, cfg.Store.DSN.Value())
	}
	return store.Open(ctx, cfg.Database)
}

// bindingsOf turns the configured channels into pipeline bindings.
func bindingsOf(cfg *config.Config) map[string]pipeline.Binding {
	out := map[string]pipeline.Binding{}
	for _, ch := range cfg.Channels {
		out[ch.ID] = pipeline.Binding{Namespace: ch.Namespace, Actions: ch.Actions}
	}
	return out
}

// Close releases the instance.
func (p *Parley) Close(ctx context.Context) error {
	errs := []error{p.Evals.Close(ctx), p.Audit.Close(ctx)}
	for _, s := range p.sinks {
		if c, ok := s.(interface{ Close(context.Context) error }); ok {
			errs = append(errs, c.Close(ctx))
		}
	}
	return errors.Join(append(errs, p.DB.Close())...)
}

// diagnoseSources are the read actions incident.diagnose and the incident
// channels gather evidence from, each called under its own deadline.
func diagnoseSources(acts *action.Registry) []incident.Source {
	src := func(title, name string, fn func(service, ns, window string) (action.Params, bool)) incident.Source {
		a, _ := acts.Get(name)
		return incident.Source{Title: title, Action: a, Params: fn}
	}
	return []incident.Source{
		src("Error rate", action.PrometheusQuery, func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "error_rate", "window": w}, true
		}),
		src("Latency p99", action.PrometheusQuery, func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "metric": "latency_p99", "window": w}, true
		}),
		src("Error logs", action.LokiQuery, func(s, _, w string) (action.Params, bool) {
			return action.Params{"service": s, "level": "error", "window": w, "limit": 5}, true
		}),
		src("Kubernetes", action.KubernetesStatus, func(s, ns, _ string) (action.Params, bool) {
			if ns == "" {
				return nil, false
			}
			return action.Params{"deployment": s, "namespace": ns}, true
		}),
	}
}

func kubernetesInventory(sb *kubernetes.Sandbox) (intent.InventorySource, error) {
	return kubernetes.NewInventory(kubernetes.Options{Clients: sb.Clients()})
}

// buildEvals opens the evaluation store and runner (resuming runs a
// restart interrupted) and returns evaluation.run and evaluation.status.
// Router-target suites route with the rules router over the catalog.
func buildEvals(ctx context.Context, cfg *config.Config, db *store.DB, specs []action.Spec, log *slog.Logger, now func() time.Time) (*evals.Runner, []action.Action, error) {
	evStore, err := evals.OpenStore(ctx, db.SQL(), evals.StoreOptions{Rebind: db.Dialect().Rebind, Now: now})
	if err != nil {
		return nil, nil, err
	}
	ro := evals.RunnerOptions{
		Store: evStore, Dir: cfg.Evals.Dir, ReportsDir: cfg.Evals.ReportsDir, ReportsURL: cfg.Evals.ReportsURL,
		Logger: log.With("component", "evals"), Now: now,
		Router: rules.New(specs), Catalog: specs,
	}
	if err := evalModel(cfg, &ro); err != nil {
		return nil, nil, err
	}
	runner, err := evals.NewRunner(ro)
	if err != nil {
		return nil, nil, err
	}
	if ids, err := runner.Resume(ctx); err != nil {
		log.Warn("resuming evaluation runs failed", "err", err)
	} else if len(ids) > 0 {
		log.Info("resumed evaluation runs", "runs", ids)
	}
	run, status, err := evaluation.New(evaluation.Options{Runner: runner, Logger: log.With("action", "evaluation"), Now: now})
	if err != nil {
		return nil, nil, errors.Join(err, runner.Close(ctx))
	}
	return runner, []action.Action{run, status}, nil
}

// withEvals adds the evaluation suites and variants found in the evals
// folder to the cluster's inventory, so the router resolves their names.
type withEvals struct {
	src intent.InventorySource
	dir string
}

func (w *withEvals) Inventory(ctx context.Context) (intent.Inventory, error) {
	inv, err := w.src.Inventory(ctx)
	suites, variants, everr := evaluation.Inventory(w.dir)
	switch {
	case everr == nil:
		inv.EvalSuites, inv.EvalVariants = suites, variants
	case errors.Is(everr, fs.ErrNotExist):
		everr = nil // no evals folder here: no suites to name
	}
	return inv, errors.Join(err, everr)
}
