package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/store"
)

// cmdDoctor checks, one line each, everything Parley needs to work with
// the configuration given: the files load; the database opens and the
// audit chain verifies; the chat platforms accept the tokens, with the
// scopes, intents and commands Parley needs; Prometheus, Loki and
// Alertmanager answer; the Kubernetes cluster answers and grants the
// rights the actions use in every bound namespace (SelfSubjectAccessReview)
// and the impersonation configured; the model endpoint answers. A failing
// check says how to fix it, and the exit status is 1. A check that cannot
// run says why. Nothing is changed anywhere, and no secret is printed.
func cmdDoctor(ctx context.Context, args []string, env Env) error {
	fs := newFlags("doctor", env)
	configFile := fs.String("config", "", "configuration file (required)")
	amURL := fs.String("alertmanager", "", "Alertmanager's URL, to check that it answers and sends to Parley's webhook")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *configFile == "" {
		return fmt.Errorf("%w: --config FILE is required: the doctor checks a configuration", errUsage)
	}
	d := &doctor{out: env.Stdout, timeout: *timeout, http: &http.Client{Timeout: *timeout}}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		d.fail("config", err, "fix the lines named above, then run parley config validate --config "+*configFile)
		return d.finish()
	}
	d.secrets = secretsOf(cfg)
	d.pass("config", *configFile+" loads")
	d.run(ctx, cfg, *amURL)
	return d.finish()
}

// doctor runs checks and prints one line (and a fix) for each.
type doctor struct {
	out     io.Writer
	timeout time.Duration
	http    *http.Client
	secrets []string

	passed, failed, skipped int
}

func (d *doctor) run(ctx context.Context, cfg *config.Config, amURL string) {
	d.policy(cfg)
	p := d.build(ctx, cfg)
	if p != nil {
		defer p.Close(context.WithoutCancel(ctx))
	}
	d.database(ctx, cfg)
	d.slack(ctx, cfg)
	d.discord(ctx, cfg)
	d.prometheus(ctx, cfg)
	d.loki(ctx, cfg)
	d.alertmanager(ctx, cfg, amURL)
	d.kubernetes(ctx, cfg, p)
	d.llm(ctx, cfg)
}

// line prints a result; every text goes through redact.
func (d *doctor) line(mark, name, text string, more ...string) {
	fmt.Fprintf(d.out, "%-4s  %-26s %s\n", mark, name, d.redact(text))
	for _, m := range more {
		if m != "" {
			fmt.Fprintf(d.out, "      %-26s %s\n", "", d.redact(m))
		}
	}
}

func (d *doctor) pass(name, detail string) {
	d.passed++
	d.line("ok", name, detail)
}

func (d *doctor) fail(name string, err error, fix string, detail ...string) {
	d.failed++
	d.line("FAIL", name, err.Error(), append(detail, "fix: "+fix)...)
}

// skip reports a check that did not run: not configured, or unable to.
func (d *doctor) skip(name, why string) {
	d.skipped++
	d.line("skip", name, why)
}

func (d *doctor) report(c chat.Check) {
	switch {
	case c.Skipped != "":
		d.skip(c.Name, c.Skipped)
	case c.Err != nil:
		d.fail(c.Name, c.Err, c.Fix, c.Detail)
	default:
		d.pass(c.Name, c.Detail)
	}
}

func (d *doctor) finish() error {
	fmt.Fprintf(d.out, "\n%d passed, %d failed, %d not run\n", d.passed, d.failed, d.skipped)
	if d.failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func (d *doctor) redact(s string) string {
	for _, sec := range d.secrets {
		s = strings.ReplaceAll(s, sec, "<secret>")
	}
	return s
}

// secretsOf collects every secret value of the configuration, however
// deep (a new config.Secret field is covered without a change here), so
// that no line the doctor prints can show one.
func secretsOf(cfg *config.Config) []string {
	var out []string
	secretType := reflect.TypeOf(config.Secret{})
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if v.Type() == secretType {
				if s := v.Interface().(config.Secret).Value(); len(s) >= 4 {
					out = append(out, s)
				}
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(v.MapIndex(k))
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(cfg))
	// The longest first, so a secret that contains another is hidden whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

func (d *doctor) policy(cfg *config.Config) {
	user, err := offlineSpecs(cfg.ActionsDir)
	if err != nil {
		d.fail("policy", err, "fix the action files at the lines named (parley config validate --config FILE)")
		return
	}
	if _, err := loadPolicy(cfg.Policy, append(builtin.Specs(), user...)); err != nil {
		d.fail("policy", err, "fix the policy file at the lines named; parley policy check explains a decision rule by rule")
		return
	}
	where := cfg.Policy
	if where == "" {
		where = "the embedded default policy"
	}
	d.pass("policy", where+" loads")
}

// build wires Parley as serve does, on a throwaway in-memory database so
// that the real one is not touched: actions, router and model settings
// load. It returns nil when that fails.
func (d *doctor) build(ctx context.Context, cfg *config.Config) *Parley {
	probe := *cfg
	probe.Store = config.Store{Driver: config.StoreSQLite}
	probe.Database = ":memory:"
	probe.Loki.PushAudit = false // no audit is written here
	p, err := Build(ctx, Options{Config: &probe, Logger: slog.New(slog.DiscardHandler)}, discardSender{})
	if err != nil {
		d.fail("actions", err, "fix the setting the error names (parley config validate --config FILE)")
		return nil
	}
	d.pass("actions", fmt.Sprintf("%d actions load: %s", len(p.Actions.Specs()), strings.Join(specNames(p.Actions.Specs()), ", ")))
	return p
}

// discardSender is the doctor's chat.Sender: it never sends.
type discardSender struct{}

func (discardSender) Send(context.Context, chat.Reply) (string, error) {
	return "", errors.New("the doctor sends nothing")
}

// database opens the real store read-only in spirit (it applies no
// migration a running Parley would not) and verifies the audit chain.
func (d *doctor) database(ctx context.Context, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, max(d.timeout, 30*time.Second))
	defer cancel()
	var (
		db  *store.DB
		err error
	)
	if cfg.Store.Driver == config.StorePostgres {
		db, err = store.OpenPostgres(ctx, cfg.Store.DSN.Value())
	} else {
		if _, serr := os.Stat(cfg.Database); serr != nil {
			d.skip("database", fmt.Sprintf("cannot run here: %s: %v (run the doctor where parley serve runs, e.g. kubectl exec)", cfg.Database, serr))
			d.skip("audit chain", "cannot run: no database")
			return
		}
		db, err = store.Open(ctx, cfg.Database)
	}
	if err != nil {
		d.fail("database", err, "check store.dsn (host, credentials, sslmode) or the database path and its permissions")
		d.skip("audit chain", "cannot run: the database did not open")
		return
	}
	defer db.Close()
	v, _ := db.SchemaVersion(ctx)
	d.pass("database", fmt.Sprintf("%s opens (schema version %d)", cfg.Store.Driver, v))
	res, err := audit.New(db, audit.Options{}).Verify(ctx)
	switch {
	case err != nil:
		d.fail("audit chain", err, "the database could not be read; check its health")
	case !res.OK:
		d.fail("audit chain", res.Err(), "someone changed or removed audit rows: parley audit verify says which; compare with a published anchor (--anchor SEQ:HASH) and investigate")
	default:
		d.pass("audit chain", res.String())
	}
}

func (d *doctor) slack(ctx context.Context, cfg *config.Config) {
	s := cfg.Slack
	if s == nil {
		d.skip("slack", "not configured (no slack section)")
		return
	}
	for _, c := range slack.Diagnose(ctx, slack.Options{
		BotToken: s.BotToken.Value(), AppToken: s.AppToken.Value(), SigningSecret: s.SigningSecret.Value(),
		Mode: s.Mode, APIURL: s.APIURL, CallTimeout: d.timeout, Logger: slog.New(slog.DiscardHandler),
	}) {
		d.report(c)
	}
}

func (d *doctor) discord(ctx context.Context, cfg *config.Config) {
	c := cfg.Discord
	if c == nil {
		d.skip("discord", "not configured (no discord section)")
		return
	}
	for _, r := range discord.Diagnose(ctx, discord.Options{
		Token: c.Token.Value(), ApplicationID: c.ApplicationID, GuildIDs: c.GuildIDs, APIURL: c.APIURL,
		CallTimeout: d.timeout, StartTimeout: d.timeout,
	}) {
		d.report(r)
	}
}

// get calls url with the bearer token (and headers) and returns the body
// of a 2xx answer, or an error saying what came back.
func (d *doctor) get(ctx context.Context, u, bearer string, header map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s", redactQuery(u), resp.Status)
	}
	return body, nil
}

func redactQuery(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the URL"
	}
	p.RawQuery = ""
	return p.String()
}

func joinURL(base, path string) string { return strings.TrimSuffix(base, "/") + path }

func (d *doctor) prometheus(ctx context.Context, cfg *config.Config) {
	pc := cfg.Prometheus
	if pc.URL == "" {
		d.skip("prometheus", "not configured (prometheus.url)")
		return
	}
	body, err := d.get(ctx, joinURL(pc.URL, "/api/v1/status/buildinfo"), pc.BearerToken.Value(), nil)
	var info struct {
		Status string `json:"status"`
		Data   struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	if err == nil {
		err = json.Unmarshal(body, &info)
		if err == nil && info.Status != "success" {
			err = fmt.Errorf("status %q", info.Status)
		}
	}
	if err != nil {
		d.fail("prometheus", err, "check prometheus.url (the server's base URL, as in the UI) and prometheus.bearer_token, and that Parley may reach it (NetworkPolicy, proxy)")
		return
	}
	d.pass("prometheus", fmt.Sprintf("%s answers (Prometheus %s)", pc.URL, info.Data.Version))
}

func (d *doctor) loki(ctx context.Context, cfg *config.Config) {
	lc := cfg.Loki
	if lc.URL == "" {
		d.skip("loki", "not configured (loki.url)")
		return
	}
	header := map[string]string{}
	if lc.Tenant != "" {
		header["X-Scope-OrgID"] = lc.Tenant
	}
	body, err := d.get(ctx, joinURL(lc.URL, "/loki/api/v1/labels"), lc.BearerToken.Value(), header)
	var labels struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err == nil {
		err = json.Unmarshal(body, &labels)
		if err == nil && labels.Status != "success" {
			err = fmt.Errorf("status %q", labels.Status)
		}
	}
	if err != nil {
		d.fail("loki", err, "check loki.url (the base URL of Loki's HTTP API), loki.tenant and loki.bearer_token")
		return
	}
	d.pass("loki", fmt.Sprintf("%s answers (%d labels)", lc.URL, len(labels.Data)))
}

// alertmanager checks that Alertmanager answers (with the credentials of
// the alertmanager: block, which the alerts and silence actions use) and,
// when incidents are configured, that its configuration sends to Parley's
// webhook. --alertmanager names another URL (an Alertmanager Parley only
// receives from).
func (d *doctor) alertmanager(ctx context.Context, cfg *config.Config, amURL string) {
	var bearer string
	header := map[string]string{}
	if amURL == "" {
		amURL = cfg.Alertmanager.URL
		bearer = cfg.Alertmanager.Auth.BearerToken.Value()
		if b := cfg.Alertmanager.Auth.Basic; b != nil {
			header["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(b.User+":"+b.Password.Value()))
		}
	}
	switch {
	case amURL == "" && cfg.Incidents == nil:
		d.skip("alertmanager", "not configured (no alertmanager or incidents section)")
		return
	case amURL == "":
		d.skip("alertmanager", "cannot run: set alertmanager.url or give --alertmanager URL to check that Alertmanager answers and sends to /webhooks/alertmanager")
		return
	}
	body, err := d.get(ctx, joinURL(amURL, "/api/v2/status"), bearer, header)
	var st struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
		VersionInfo struct {
			Version string `json:"version"`
		} `json:"versionInfo"`
	}
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	if err != nil {
		d.fail("alertmanager", err, "check the URL and that the doctor may reach Alertmanager")
		return
	}
	if cfg.Incidents != nil && !strings.Contains(st.Config.Original, "/webhooks/alertmanager") {
		d.fail("alertmanager", errors.New("alertmanager answers but no receiver sends to Parley's /webhooks/alertmanager"),
			"add a receiver with webhook_configs: [{url: http://PARLEY:8080/webhooks/alertmanager, http_config: {authorization: {credentials_file: …}}}] and route alerts to it")
		return
	}
	if cfg.Incidents == nil {
		d.pass("alertmanager", fmt.Sprintf("%s answers (Alertmanager %s)", amURL, st.VersionInfo.Version))
		return
	}
	d.pass("alertmanager", fmt.Sprintf("%s answers (Alertmanager %s) and a receiver sends to Parley", amURL, st.VersionInfo.Version))
}

// llm sends the model one small routing request, directly (the hybrid
// router would hide a failure behind the rules router).
func (d *doctor) llm(ctx context.Context, cfg *config.Config) {
	l := cfg.Router.LLM
	if cfg.Router.Mode == "rules" || l == nil {
		d.skip("llm", "not configured (router.mode rules)")
		return
	}
	model, err := buildLLM(l, builtin.Specs(), nil, nil, nil, slog.New(slog.DiscardHandler), time.Now) // no ledger: a probe is not charged to a user
	if err != nil {
		d.fail("llm", err, "fix router.llm")
		return
	}
	help, _ := findSpec(builtin.Specs(), action.Help)
	ctx, cancel := context.WithTimeout(ctx, max(d.timeout, l.Timeout.Std()))
	defer cancel()
	in, err := model.Route(ctx, intent.Query{Text: "what can you do?", Catalog: []action.Spec{help}, RequestID: "doctor", Subject: "doctor:doctor", Channel: "doctor:doctor"})
	if err != nil {
		d.fail("llm", err, "check router.llm: provider, base_url, model name and api_key; the error says what the endpoint answered")
		return
	}
	detail := fmt.Sprintf("%s %s answers (routed to %s)", l.Provider, l.Model, in.Action)
	if in.Usage != nil {
		detail += fmt.Sprintf(", %d+%d tokens", in.Usage.PromptTokens, in.Usage.CompletionTokens)
	}
	d.pass("llm", detail)
}
