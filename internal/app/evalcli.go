package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/store"
)

// cmdEvalSuite runs evaluation suites (internal/evals):
//
//	parley eval run SUITE [--variant V] [--baseline B] [--out DIR] [--evals DIR] [--config FILE] [--db FILE]
//	parley eval list [--evals DIR] [--db FILE]
//	parley eval show RUN [--db FILE]
//	parley eval worker --suite S --run ID --shard N --shards M [--variant V] [--baseline B] [--namespace NS]
//
// run exits 0 when every gate passes, 1 when one fails.
func cmdEvalSuite(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want \"parley eval run|list|show|worker\"", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags("eval "+sub, env)
	evalsDir := fs.String("evals", "evals", "evals folder (suites/, datasets/, prompts/)")
	dbPath := fs.String("db", defaultDB(env), "SQLite database holding the runs")
	configFile := fs.String("config", "", "configuration file; router.llm gives the model endpoint, key and prices")
	verbose := fs.Bool("v", false, "log to stderr")
	var variant, baseline, out, suite, ns, kubeconfig *string
	var runID, shard, shards *int
	switch sub {
	case "run":
		variant = fs.String("variant", "", "variant to evaluate (default: the baseline alone)")
		baseline = fs.String("baseline", "", "variant to compare against (default: the suite's)")
		out = fs.String("out", filepath.Join("reports", "evals"), "folder for run-ID/report.csv and report.html")
	case "list", "show":
	case "worker":
		suite = fs.String("suite", "", "suite")
		variant = fs.String("variant", "", "variant")
		baseline = fs.String("baseline", "", "baseline")
		runID = fs.Int("run", 0, "run id")
		shard = fs.Int("shard", -1, "shard index (default $JOB_COMPLETION_INDEX)")
		shards = fs.Int("shards", 1, "number of shards")
		ns = fs.String("namespace", "", "namespace of the result ConfigMap (default: the pod's)")
		kubeconfig = fs.String("kubeconfig", "", "kubeconfig (default: in-cluster)")
	default:
		return fmt.Errorf("%w: unknown eval command %q (routing, run, list, show, worker)", errUsage, sub)
	}
	// The suite or run may come before or after the flags.
	var pos []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[:1], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	log := logger(env, *verbose)
	dbFile := *dbPath
	if sub == "worker" {
		dbFile = store.Memory // a worker keeps nothing: its results go to a ConfigMap
	}
	db, err := store.Open(ctx, dbFile)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := evals.OpenStore(ctx, db.SQL(), evals.StoreOptions{Rebind: db.Dialect().Rebind, Now: env.now})
	if err != nil {
		return err
	}
	specs, err := Catalog(cfg)
	if err != nil {
		return err
	}
	ro := evals.RunnerOptions{Store: st, Dir: *evalsDir, Logger: log, Now: env.now, Router: rules.New(specs), Catalog: specs}
	if err := evalModel(cfg, &ro); err != nil {
		return err
	}
	if out != nil {
		ro.ReportsDir = *out
	}
	r, err := evals.NewRunner(ro)
	if err != nil {
		return err
	}
	defer r.Close(context.WithoutCancel(ctx))

	switch sub {
	case "run":
		if len(pos) != 1 {
			return fmt.Errorf("%w: want \"parley eval run SUITE [--variant V] [--baseline B]\"", errUsage)
		}
		req := evals.RunRequest{Suite: pos[0], Variant: *variant, Baseline: *baseline, RequestedBy: "cli", Runner: evals.RunnerLocal}
		s, ds, v, b, err := r.Prepare(req)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, evals.EstimateRun(s, ds, v, b, ro.Prices).String())
		last := -1
		run, sum, err := r.Run(ctx, req, func(p evals.Progress) {
			if p.Finished {
				return
			}
			if pct := p.Done * 10 / max(1, p.Total); pct != last || p.Done == p.Total {
				last = pct
				fmt.Fprintln(env.Stderr, p.String())
			}
		})
		if err != nil && sum == nil {
			return err
		}
		if werr := evals.WriteText(env.Stdout, sum); werr != nil {
			return werr
		}
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("run %d: %v", run.ID, err)}
		}
		if !sum.GatesPassed {
			return &exitError{code: 1, msg: fmt.Sprintf("run %d: gate failed", run.ID)}
		}
		return nil
	case "list":
		return evalList(ctx, env, r)
	case "show":
		if len(pos) != 1 {
			return fmt.Errorf("%w: want \"parley eval show RUN\"", errUsage)
		}
		id, err := strconv.Atoi(strings.TrimPrefix(pos[0], "#"))
		if err != nil || id < 1 {
			return fmt.Errorf("%w: run %q is not a run number", errUsage, pos[0])
		}
		run, err := st.GetRun(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "run %d: %s %s, %d/%d answers, requested by %s at %s\n", run.ID, run.Suite, run.Status, run.Done, run.Total,
			run.RequestedBy, run.Created.Format("2006-01-02 15:04:05Z"))
		if run.Error != "" {
			fmt.Fprintf(env.Stdout, "error: %s\n", run.Error)
		}
		if run.Summary != nil {
			return evals.WriteText(env.Stdout, run.Summary)
		}
		return nil
	default: // worker
		if *shard < 0 {
			if *shard, err = strconv.Atoi(env.getenv("JOB_COMPLETION_INDEX")); err != nil {
				return fmt.Errorf("%w: --shard or $JOB_COMPLETION_INDEX is required", errUsage)
			}
		}
		if *suite == "" || *runID < 1 {
			return fmt.Errorf("%w: --suite and --run are required", errUsage)
		}
		client, namespace, err := workerClient(*kubeconfig, *ns)
		if err != nil {
			return err
		}
		results, err := r.RunShard(ctx, *runID, evals.RunRequest{Suite: *suite, Variant: *variant, Baseline: *baseline}, *shard, *shards)
		if err != nil {
			return err
		}
		return evals.WriteShard(ctx, client, namespace, *runID, *shard, results)
	}
}

// evalModel takes the model endpoint, key and prices for evaluations
// from router.llm.
func evalModel(cfg *config.Config, ro *evals.RunnerOptions) error {
	l := cfg.Router.LLM
	if l == nil {
		return nil
	}
	// the same client, retries and timeout as the router's
	o, err := llmOptions(l, nil, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	c, err := llm.NewClient(o)
	if err != nil {
		return err
	}
	m, err := evals.NewLLM(map[string]*llm.Client{l.Provider: c})
	if err != nil {
		return err
	}
	ro.LLM, ro.Prices = m, llmcost.Prices(l.Prices)
	return nil
}

func evalList(ctx context.Context, env Env, r *evals.Runner) error {
	cat, cerr := r.Catalog()
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tTARGET\tVARIANTS\tRUNNER")
	if cat != nil {
		for _, s := range cat.Suites {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Target.Type, strings.Join(s.VariantNames(), ", "), s.Runner)
		}
	}
	tw.Flush()
	runs, err := r.Store().ListRuns(ctx, "", 20)
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		fmt.Fprintln(env.Stdout)
		tw = tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSUITE\tVARIANT\tBASELINE\tSTATUS\tANSWERS\tRESULT")
		for _, run := range runs {
			res := ""
			if run.Summary != nil {
				res = run.Summary.Headline()
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", run.ID, run.Suite, run.Variant, run.Baseline, run.Status, run.Done, run.Total, res)
		}
		tw.Flush()
	}
	return cerr
}

// workerClient is the worker pod's Kubernetes client and namespace.
func workerClient(kubeconfig, ns string) (kube.Interface, string, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, "", fmt.Errorf("eval worker: kubernetes client: %w", err)
	}
	if ns == "" {
		b, rerr := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if rerr != nil {
			return nil, "", errors.New("eval worker: --namespace is required outside a pod")
		}
		ns = strings.TrimSpace(string(b))
	}
	c, err := kube.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("eval worker: kubernetes client: %w", err)
	}
	return c, ns, nil
}
