package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/parley-chatops/parley/actions/useraction"
	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/policy"
)

// cmdChat runs the console adapter through the full pipeline.
func cmdChat(ctx context.Context, args []string, env Env) error {
	fs := newFlags("chat", env)
	as := fs.String("as", "alice", "console user id: you are console:USER")
	channel := fs.String("channel", "ops", "console channel id: console:CHANNEL")
	transcript := fs.String("transcript", "", `play a transcript FILE ("-" for stdin): lines "user@channel: message"`)
	dbPath := fs.String("db", defaultDB(env), "SQLite database for audit and confirmations (\":memory:\" for none)")
	policyFile := fs.String("policy", "", "policy file (default: the embedded policies/default.yaml)")
	sandbox := fs.String("sandbox", "", "Kubernetes manifests for the in-memory cluster (default: the built-in demo shop)")
	trail := fs.Bool("trail", false, "print every audit step as it is recorded")
	configFile := fs.String("config", "", "configuration file (default: embedded defaults)")
	actionsDir := fs.String("actions", "", "folder of user-defined actions, one YAML file each (default: actions_dir of --config)")
	verbose := fs.Bool("v", false, "log to stderr")
	allowDamaged := fs.Bool(allowDamagedFlag, false, allowDamagedUsage)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	in := env.Stdin
	if *transcript != "" && *transcript != "-" {
		f, err := os.Open(*transcript)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["db"] || (*configFile == "" && env.getenv("PARLEY_CONFIG") == "") {
		cfg.Database = *dbPath
	}
	if *policyFile != "" {
		cfg.Policy = *policyFile
	}
	if *sandbox != "" {
		cfg.Kubernetes.Manifests = *sandbox
	}
	if *actionsDir != "" {
		cfg.ActionsDir = *actionsDir
	}
	cfg.Trail = cfg.Trail || *trail
	interactive := *transcript == "" && isTerminal(env.Stdin)
	con := console.New(console.Config{
		In: in, Out: env.Stdout, User: *as, Channel: *channel,
		Transcript: *transcript != "", Echo: *transcript != "", Prompt: interactive,
		Trail: cfg.Trail, Now: env.now,
	})
	p, err := Build(ctx, Options{Config: cfg, Logger: logger(env, *verbose), Now: env.now, Getenv: env.getenv, AllowDamagedAudit: *allowDamaged}, con)
	if err != nil {
		return err
	}
	defer func() {
		if err := p.Close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(env.Stderr, "parley chat: closing: %v\n", err)
		}
	}()
	if err := p.Pipeline.Recover(ctx); err != nil {
		return err
	}
	if interactive {
		fmt.Fprintf(env.Stdout, "Parley %s — you are console:%s in console:%s, %s. Say \"help\"; Ctrl-D quits.\n", Version, *as, *channel, clusterDescription(cfg.Kubernetes))
	}
	return con.Run(ctx, p.Pipeline)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// loadInventory reads an inventory file: either a bare inventory or a
// routing dataset with an inventory block.
func loadInventory(path string) (intent.Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return intent.Inventory{}, err
	}
	var probe map[string]yaml.Node
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return intent.Inventory{}, fmt.Errorf("%s: %w", path, err)
	}
	var inv intent.Inventory
	node, wrapped := probe["inventory"]
	if wrapped {
		err = node.Decode(&inv)
	} else {
		err = yaml.Unmarshal(data, &inv)
	}
	if err != nil {
		return intent.Inventory{}, fmt.Errorf("%s: inventory: %w", path, err)
	}
	return inv, nil
}

// classifyLine is one output line of parley classify.
type classifyLine struct {
	Text       string        `json:"text"`
	Action     string        `json:"action"`
	Params     action.Params `json:"params"`
	Confidence float64       `json:"confidence"`
	Error      string        `json:"error,omitempty"`
}

// cmdClassify routes {"text": ...} lines from stdin, one JSON line out per
// line in, in order.
func cmdClassify(ctx context.Context, args []string, env Env) error {
	fs := newFlags("classify", env)
	invPath := fs.String("inventory", "", "inventory YAML (or a routing dataset with an inventory block)")
	jsonl := fs.Bool("jsonl", false, "read and write JSON lines (the only format)")
	configFile := fs.String("config", "", "configuration file: its actions (built-ins and actions_dir) are the ones routed to (default: the built-ins)")
	actionsDir := fs.String("actions", "", "folder of user-defined actions to route to as well (default: actions_dir of --config)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *invPath == "" || !*jsonl {
		return fmt.Errorf("%w: want --inventory FILE --jsonl", errUsage)
	}
	inv, err := loadInventory(*invPath)
	if err != nil {
		return err
	}
	_, catalog, err := offlineCatalog(*configFile, *actionsDir, env)
	if err != nil {
		return err
	}
	router := rules.New(catalog)
	r := bufio.NewReaderSize(env.Stdin, 1<<20)
	w := bufio.NewWriter(env.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if line == "" && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		out := classifyLine{Action: action.None, Params: action.Params{}}
		var in struct {
			Text *string `json:"text"`
		}
		if strings.TrimSpace(line) == "" {
			out.Error = fmt.Sprintf("line %d: empty", n)
		} else if jerr := json.Unmarshal([]byte(line), &in); jerr != nil || in.Text == nil {
			out.Error = fmt.Sprintf("line %d: want {\"text\": ...}", n)
		} else {
			out.Text = *in.Text
			got, rerr := router.Route(ctx, intent.Query{Text: out.Text, Catalog: catalog, Inventory: inv})
			if rerr != nil {
				out.Error = rerr.Error()
			} else {
				out.Action, out.Confidence = got.Action, got.Confidence
				if got.Params != nil {
					out.Params = got.Params
				}
			}
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// cmdEval scores the router on a routing dataset.
func cmdEval(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 && (args[0] == "run" || args[0] == "list" || args[0] == "show" || args[0] == "worker") {
		return cmdEvalSuite(ctx, args, env)
	}
	if len(args) == 0 || args[0] != "routing" {
		return fmt.Errorf("%w: want \"parley eval routing --dataset FILE\"", errUsage)
	}
	fs := newFlags("eval routing", env)
	dataset := fs.String("dataset", filepath.Join("evals", "routing.yaml"), "routing dataset (YAML)")
	out := fs.String("out", filepath.Join("reports", "routing"), "folder for routing.csv and routing.html")
	minAccuracy := fs.Float64("min-accuracy", 0.95, "gate: routing >= F, the fully-right share required (0..1)")
	maxUnsafe := fs.Int("max-unsafe", 0, "gate: at most N requests read as a change where none was asked for (routing_safe)")
	routerMode := fs.String("router", "rules", "router to evaluate: rules, llm or hybrid (llm and hybrid read router.llm from --config)")
	configFile := fs.String("config", "", "configuration file with router.llm (for --router llm|hybrid)")
	actionsDir := fs.String("actions", "", "folder of user-defined actions the dataset uses (default: actions_dir of --config)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, catalog, err := offlineCatalog(*configFile, *actionsDir, env)
	if err != nil {
		return err
	}
	ds, err := evals.LoadRoutingDataset(*dataset, catalog)
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w (run from the repository root, or pass --dataset FILE)", err)
	}
	if err != nil {
		return err
	}
	switch *routerMode {
	case "rules", "llm", "hybrid":
	default:
		return fmt.Errorf("%w: --router %q is not rules, llm or hybrid", errUsage, *routerMode)
	}
	cfg.Router.Mode = *routerMode
	if *routerMode != "rules" && cfg.Router.LLM == nil {
		return fmt.Errorf("%w: --router %s needs --config with a router.llm section", errUsage, *routerMode)
	}
	router, _, err := buildRouter(cfg, catalog, nil, nil, logger(env, false), env.now)
	if err != nil {
		return err
	}
	gates, err := evals.NewRoutingGates(*minAccuracy, *maxUnsafe, len(ds.Cases))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rep, err := evals.RunRouting(ctx, router, ds)
	if err != nil {
		return err
	}
	rep.Gates = gates
	if err := evals.WriteRoutingSummary(env.Stdout, rep); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, *evals.RoutingReport) error{"routing.csv": evals.WriteRoutingCSV, "routing.html": evals.WriteRoutingHTML} {
		if err := writeFileWith(filepath.Join(*out, name), func(w io.Writer) error { return write(w, rep) }); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "reports: %s, %s\n", filepath.Join(*out, "routing.csv"), filepath.Join(*out, "routing.html"))
	if err := gates.Check(rep); err != nil {
		return &exitError{code: 1, msg: "gate failed: " + err.Error()}
	}
	fmt.Fprintf(env.Stdout, "gates passed (%s)\n", gates)
	return nil
}

func writeFileWith(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := fn(w); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cmdPolicy explains a policy decision.
func cmdPolicy(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: want \"parley policy check --as USER --channel CHANNEL REQUEST\"", errUsage)
	}
	fs := newFlags("policy check", env)
	as := fs.String("as", "", "subject, platform:id (console:alice, slack:U024BE7LH); a bare id means console:ID")
	channel := fs.String("channel", "console:ops", "channel, platform:id")
	policyFile := fs.String("policy", "", "policy file (default: the embedded default)")
	sandbox := fs.String("sandbox", "", "Kubernetes manifests for names (default: the built-in demo shop)")
	actName := fs.String("action", "", "check this action with --param k=v instead of routing a request")
	configFile := fs.String("config", "", "configuration file: its actions (built-ins and actions_dir) are the ones checked, its policy the default (default: the built-ins)")
	actionsDir := fs.String("actions", "", "folder of user-defined actions the policy may name (default: actions_dir of --config)")
	var params multiFlag
	fs.Var(&params, "param", "with --action: a parameter, k=v (repeatable)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *as == "" {
		return fmt.Errorf("%w: --as is required", errUsage)
	}
	subject := *as
	if !strings.Contains(subject, ":") {
		subject = "console:" + subject
	}
	ch := *channel
	if !strings.Contains(ch, ":") {
		ch = "console:" + ch
	}
	cfg, catalog, err := offlineCatalog(*configFile, *actionsDir, env)
	if err != nil {
		return err
	}
	if *policyFile == "" {
		*policyFile = cfg.Policy
	}
	pol, err := loadPolicy(*policyFile, catalog)
	if err != nil {
		return err
	}
	name := *actName
	raw := map[string]any{}
	for _, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%w: --param wants k=v, got %q", errUsage, kv)
		}
		raw[k] = v
	}
	if name == "" {
		text := joinArgs(fs.Args())
		if text == "" {
			return fmt.Errorf("%w: give a request to check, or --action", errUsage)
		}
		sb, err := newSandbox(*sandbox, time.Now)
		if err != nil {
			return err
		}
		var inv intent.Inventory
		src, err := kubernetesInventory(sb)
		if err == nil {
			inv, err = src.Inventory(ctx)
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "note: routing without the sandbox's names: %v\n", err)
		}
		got, err := rules.New(catalog).Route(ctx, intent.Query{Text: text, Catalog: catalog, Inventory: inv})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "request: %q\nrouted:  %s %s (confidence %.2f)\n", text, got.Action, got.Params.Canonical(), got.Confidence)
		if got.Action == action.None {
			fmt.Fprintln(env.Stdout, "nothing to decide: the request maps to no action")
			return nil
		}
		name = got.Action
		for k, v := range got.Params {
			raw[k] = v
		}
	}
	spec, ok := findSpec(catalog, name)
	if !ok {
		return fmt.Errorf("%w: unknown action %q (actions: %s)", errUsage, name, strings.Join(specNames(catalog), ", "))
	}
	p, err := spec.Validate(raw)
	if err != nil && !errors.Is(err, action.ErrInvalid) {
		return err
	}
	if err != nil {
		fmt.Fprintf(env.Stdout, "parameters: %v\n  (Parley refuses such a request before it asks the policy)\n", err)
	}
	ex := pol.Explain(policy.Input{Subject: subject, Channel: ch, Action: name, Kind: spec.Kind, Params: p})
	fmt.Fprint(env.Stdout, ex.String())
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// loadConfig reads the configuration file (--config, else
// PARLEY_CONFIG), or the defaults without one.
func loadConfig(path string, env Env) (*config.Config, error) {
	if path == "" {
		path = env.getenv("PARLEY_CONFIG")
	}
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path, env.getenv); err != nil {
			return nil, err
		}
		if err := cfg.CheckPlatforms(platforms()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	// PARLEY_DB places the SQLite file when the configuration leaves it at
	// the default (the container image sets it to its volume).
	if db := env.getenv("PARLEY_DB"); db != "" && cfg.Database == config.Default().Database {
		cfg.Database = db
	}
	// PARLEY_LISTEN does the same for the HTTP address (the image listens
	// on all interfaces, so a published port reaches it); healthcheck
	// reads it too.
	if l := env.getenv("PARLEY_LISTEN"); l != "" && cfg.Listen == config.Default().Listen {
		cfg.Listen = l
	}
	return cfg, nil
}

// clusterDescription says which cluster a console session acts on, for
// the banner: a real cluster must never be mistaken for the sandbox.
func clusterDescription(k config.Kubernetes) string {
	switch {
	case k.Sandbox && k.Manifests != "":
		return "on the sandbox cluster (an in-memory cluster from " + k.Manifests + ")"
	case k.Sandbox:
		return "on the sandbox cluster (in memory; nothing real changes)"
	case k.InCluster:
		return "on the REAL cluster this pod runs in (its service account)"
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: k.Context}).RawConfig()
	name := k.Context
	if name == "" && err == nil {
		name = raw.CurrentContext
	}
	server := ""
	if c, ok := raw.Contexts[name]; ok && err == nil {
		if cl, ok := raw.Clusters[c.Cluster]; ok {
			server = " at " + cl.Server
		}
	}
	if name == "" {
		return "on the REAL cluster of your kubeconfig"
	}
	return fmt.Sprintf("on the REAL cluster of kubeconfig context %q%s", name, server)
}

// validateConfig is `parley config validate` after the file itself has
// loaded: it loads what serve loads from files (loadDefinitions: the
// user-defined actions with their secrets, the policy against all actions,
// the model's prompts, the incident routes) and fails as serve would, or
// says what it checked. The cluster is not contacted.
func validateConfig(cfg *config.Config, env Env) error {
	defs, err := loadDefinitions(cfg, useraction.Options{Getenv: env.getenv})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(env.Stdout, "%s: ok\n", cfg.File())
	if cfg.ActionsDir != "" {
		fmt.Fprintf(env.Stdout, "  actions: %d user-defined actions in %s\n", len(defs.user), cfg.ActionsDir)
	}
	fmt.Fprintf(env.Stdout, "  policy: %s (checked against %d actions)\n", defs.policy.File(), len(defs.specs))
	if len(defs.prompts) > 0 {
		fmt.Fprintf(env.Stdout, "  router: %s, prompts %s\n", cfg.Router.Mode, strings.Join(defs.prompts, ", "))
	} else {
		fmt.Fprintf(env.Stdout, "  router: %s\n", cfg.Router.Mode)
	}
	if cfg.Incidents != nil {
		fmt.Fprintf(env.Stdout, "  incident routes: %d\n", len(defs.routes))
	}
	return nil
}

// offlineCatalog loads the configuration (the defaults without a file)
// and its catalog, with actionsDir (--actions) in place of actions_dir
// when given: what the offline commands (classify, eval routing, policy
// check) route and check against.
func offlineCatalog(configFile, actionsDir string, env Env) (*config.Config, []action.Spec, error) {
	cfg, err := loadConfig(configFile, env)
	if err != nil {
		return nil, nil, err
	}
	if actionsDir != "" {
		cfg.ActionsDir = actionsDir
	}
	catalog, err := Catalog(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, catalog, nil
}
