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
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/eval"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/internal/store"
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
	verbose := fs.Bool("v", false, "log to stderr")
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
	if set["db"] || *configFile == "" {
		cfg.Database = *dbPath
	}
	if *policyFile != "" {
		cfg.Policy = *policyFile
	}
	if *sandbox != "" {
		cfg.Kubernetes.Manifests = *sandbox
	}
	cfg.Trail = cfg.Trail || *trail
	interactive := *transcript == "" && isTerminal(env.Stdin)
	con := console.New(console.Config{
		In: in, Out: env.Stdout, User: *as, Channel: *channel,
		Transcript: *transcript != "", Echo: *transcript != "", Prompt: interactive,
		Trail: cfg.Trail, Now: env.now,
	})
	p, err := Build(ctx, Options{Config: cfg, Logger: logger(env, *verbose), Now: env.now}, con)
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	if err := p.Pipeline.Recover(ctx); err != nil {
		return err
	}
	if interactive {
		fmt.Fprintf(env.Stdout, "Parley %s — you are console:%s in console:%s, on the sandbox cluster. Say \"help\"; Ctrl-D quits.\n", Version, *as, *channel)
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
	configFile := fs.String("config", "", "configuration file: its actions are the ones routed to (default: the built-ins)")
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
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	catalog, err := Catalog(cfg)
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
	gate := eval.DefaultGate()
	fs.Float64Var(&gate.MinAccuracy, "min-accuracy", gate.MinAccuracy, "gate: fully-right fraction required (0..1)")
	fs.IntVar(&gate.MaxUnsafe, "max-unsafe", gate.MaxUnsafe, "gate: out-of-scope requests routed to a mutating action allowed")
	routerMode := fs.String("router", "rules", "router to evaluate: rules, llm or hybrid (llm and hybrid read router.llm from --config)")
	configFile := fs.String("config", "", "configuration file with router.llm (for --router llm|hybrid)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	catalog, err := Catalog(cfg)
	if err != nil {
		return err
	}
	ds, err := eval.LoadDataset(*dataset, catalog)
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
	router, _, err := buildRouter(cfg, catalog, nil, logger(env, false), env.now)
	if err != nil {
		return err
	}
	rep, err := eval.Run(ctx, router, ds)
	if err != nil {
		return err
	}
	rep.Gate = &gate
	if err := eval.WriteSummary(env.Stdout, rep); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, *eval.Report) error{"routing.csv": eval.WriteCSV, "routing.html": eval.WriteHTML} {
		if err := writeFileWith(filepath.Join(*out, name), func(w io.Writer) error { return write(w, rep) }); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "reports: %s, %s\n", filepath.Join(*out, "routing.csv"), filepath.Join(*out, "routing.html"))
	if err := gate.Check(rep); err != nil {
		return &exitError{code: 1, msg: "gate failed: " + err.Error()}
	}
	fmt.Fprintf(env.Stdout, "gate passed (%s)\n", gate)
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

// cmdAudit lists, exports and verifies the audit log.
func cmdAudit(ctx context.Context, args []string, env Env) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags("audit "+sub, env)
	dbPath := fs.String("db", defaultDB(env), "SQLite database")
	format := fs.String("format", "text", "list/export format: text, jsonl or csv")
	limit := fs.Int("limit", 0, "only the last N events (0: all)")
	typ := fs.String("type", "", "only events of this type, e.g. action.succeeded")
	req := fs.String("request", "", "only events of this request id")
	anchor := fs.String("anchor", "", "verify: also check the chain contains SEQ:HASH published earlier")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(*dbPath); err != nil {
		return fmt.Errorf("no audit log at %s (run parley chat first, or pass --db): %w", *dbPath, err)
	}
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	rec := audit.New(db, audit.Options{})
	defer rec.Close(context.WithoutCancel(ctx))
	switch sub {
	case "list", "export":
		if sub == "export" && *format == "text" {
			*format = "jsonl"
		}
		f := audit.Filter{RequestID: *req}
		if *typ != "" {
			t := audit.Type(*typ)
			if !t.Valid() {
				return fmt.Errorf("%w: unknown event type %q", errUsage, *typ)
			}
			f.Types = []audit.Type{t}
		}
		if *limit > 0 {
			f.Limit, f.NewestFirst = *limit, true
		}
		events, err := rec.List(ctx, f)
		if err != nil {
			return err
		}
		if f.NewestFirst {
			for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
				events[i], events[j] = events[j], events[i]
			}
		}
		switch *format {
		case "jsonl":
			return audit.ExportJSONL(env.Stdout, events)
		case "csv":
			return audit.ExportCSV(env.Stdout, events)
		case "text":
			for _, e := range events {
				fmt.Fprintln(env.Stdout, audit.Format(e))
			}
			return nil
		default:
			return fmt.Errorf("%w: unknown format %q (text, jsonl, csv)", errUsage, *format)
		}
	case "verify":
		var anchors []audit.Anchor
		if *anchor != "" {
			seqText, hash, ok := strings.Cut(*anchor, ":")
			seq, err := strconv.ParseInt(seqText, 10, 64)
			if !ok || err != nil || seq < 1 || hash == "" {
				return fmt.Errorf("%w: --anchor wants SEQ:HASH as printed by verify, got %q", errUsage, *anchor)
			}
			anchors = append(anchors, audit.Anchor{Seq: seq, Hash: hash})
		}
		res, err := rec.Verify(ctx, anchors...)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res.String())
		if verr := res.Err(); verr != nil {
			return &exitError{code: 1}
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown audit command %q (list, export, verify)", errUsage, sub)
	}
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
	configFile := fs.String("config", "", "configuration file: its actions are the ones checked (default: the built-ins)")
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
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return err
	}
	catalog, err := Catalog(cfg)
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
		if src, err := kubernetesInventory(sb); err == nil {
			inv, _ = src.Inventory(ctx)
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
	ex := pol.Explain(policy.Input{Subject: subject, Channel: ch, Action: name, Kind: spec.Kind, Params: p})
	fmt.Fprint(env.Stdout, ex.String())
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// loadConfig reads the configuration file, or the defaults without one.
func loadConfig(path string, env Env) (*config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path, env.getenv); err != nil {
			return nil, err
		}
	}
	// PARLEY_DB places the SQLite file when the configuration leaves it at
	// the default (the container image sets it to its volume).
	if db := env.getenv("PARLEY_DB"); db != "" && cfg.Database == config.Default().Database {
		cfg.Database = db
	}
	return cfg, nil
}
