// Package config loads Parley's configuration file: which backends and chat
// platforms to connect, how channels are bound, where state lives. It is
// strict in the Alertmanager manner: unknown keys are errors with their
// line, every section validates itself, combinations are checked, and
// secrets are never read from the file itself — only from environment
// variables or files it names — and print as <secret>.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Config is the whole file.
type Config struct {
	// Listen is the HTTP address for health, metrics and webhooks.
	Listen string `yaml:"listen"`
	// Database is the SQLite file for audit and confirmations (store
	// driver sqlite, the default).
	Database string `yaml:"database"`
	// Store selects the database for durable state.
	Store Store `yaml:"store"`
	// Policy is a policy file; empty means the embedded default.
	Policy string `yaml:"policy"`
	// Trail renders every audit step into the request's thread.
	Trail bool `yaml:"trail"`
	Log   Log  `yaml:"log"`

	// ActionsDir is a folder of user-defined actions, one YAML file each
	// (actions/useraction); empty means none.
	ActionsDir string `yaml:"actions_dir"`

	Router     Router     `yaml:"router"`
	Evals      Evals      `yaml:"evals"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	Prometheus Prometheus `yaml:"prometheus"`
	Loki       Loki       `yaml:"loki"`
	Slack      *Slack     `yaml:"slack"`
	Discord    *Discord   `yaml:"discord"`
	Channels   []Channel  `yaml:"channels"`
	// Incidents turns Alertmanager webhooks into incident messages; nil
	// leaves the webhook unmounted.
	Incidents *Incidents `yaml:"incidents"`
	// LeaderElection lets several replicas run at once: they elect one
	// leader through a Kubernetes Lease, and only the leader holds the
	// chat connections. nil (no section) means no election: this process
	// is the only replica and always leads.
	LeaderElection *LeaderElection `yaml:"leader_election"`
	// Server tunes the HTTP listener (timeouts, concurrency).
	Server Server `yaml:"server"`
	// Audit tunes the audit log's start-up check.
	Audit Audit `yaml:"audit"`

	// Alertmanager is the API the alertmanager.* actions use (alerts,
	// silences); see alertmanager.go.
	Alertmanager Alertmanager `yaml:"alertmanager"`

	file string
	// actionLines[i][j] is the line of Channels[i].Actions[j] in the file
	// (0 when unknown), for CheckActions.
	actionLines [][]int
}

// Router selects how messages become intents.
type Router struct {
	// Mode is rules (default, offline), llm, or hybrid (rules when
	// confident, the model otherwise, rules again if the model fails).
	Mode string `yaml:"mode"`
	// Threshold is the rules router's confidence at or above which hybrid
	// mode does not ask the model (default 0.75).
	Threshold float64 `yaml:"threshold"`
	LLM       *LLM    `yaml:"llm"`
}

// LLM configures the model endpoint.
type LLM struct {
	Provider string `yaml:"provider"` // openai | azure | anthropic
	BaseURL  string `yaml:"base_url"` // OpenAI-compatible endpoints: vLLM, llama.cpp, LocalAI, Ollama /v1
	Model    string `yaml:"model"`
	// APIKey is required, except for an OpenAI-compatible base_url that
	// takes none (a local Ollama, llama.cpp or vLLM): then no
	// Authorization header is sent.
	APIKey     Secret   `yaml:"api_key"`
	APIVersion string   `yaml:"api_version"` // Azure
	Timeout    Duration `yaml:"timeout"`
	MaxRetries int      `yaml:"max_retries"`
	// MaxTokensField names the completion limit in OpenAI-compatible
	// requests: max_completion_tokens (default; OpenAI's current field) or
	// max_tokens (the older one, which Ollama, llama.cpp and many servers
	// read).
	MaxTokensField string `yaml:"max_tokens_field"`
	// Variants split traffic between prompt versions (prompts/router/NAME.tmpl).
	Variants []Variant                `yaml:"variants"`
	CacheTTL Duration                 `yaml:"cache_ttl"`
	Prices   map[string]llmcost.Price `yaml:"prices"`
	Budget   llmcost.Limits           `yaml:"budget"`
}

// Values of LLM.MaxTokensField.
const (
	MaxCompletionTokens = "max_completion_tokens"
	MaxTokens           = "max_tokens"
)

// Variant is a prompt variant and its share of traffic.
type Variant struct {
	Name   string `yaml:"name"`
	Weight int    `yaml:"weight"`
}

// Store drivers.
const (
	StoreSQLite   = "sqlite"   // the Database file: one replica
	StorePostgres = "postgres" // a PostgreSQL database shared by every replica
)

// Store selects where audit events and pending confirmations live.
type Store struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string for driver postgres, e.g.
	// postgres://parley@db:5432/parley?sslmode=verify-full. It usually
	// holds a password, so it is a secret: env or file.
	DSN Secret `yaml:"dsn"`
}

// Evals configures the evaluation runner (evaluation.run / status).
type Evals struct {
	// Dir holds suites/, datasets/ and prompts/ (default "evals").
	Dir string `yaml:"dir"`
	// ReportsDir receives run reports (default "reports/evals"); they are
	// served at /reports/ on the listen address.
	ReportsDir string `yaml:"reports_dir"`
	// ReportsURL is the public URL of /reports/ for links in chat.
	ReportsURL string `yaml:"reports_url"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Kubernetes selects the cluster.
type Kubernetes struct {
	// Sandbox runs against the in-memory demo cluster (the default when
	// no kubeconfig and not in-cluster).
	Sandbox bool `yaml:"sandbox"`
	// Manifests for the sandbox; empty means the built-in demo shop.
	Manifests  string   `yaml:"manifests"`
	Kubeconfig string   `yaml:"kubeconfig"`
	Context    string   `yaml:"context"`
	InCluster  bool     `yaml:"in_cluster"`
	Timeout    Duration `yaml:"timeout"`
	Namespaces []string `yaml:"namespaces"`
	// Impersonate maps chat subjects to Kubernetes identities, so the
	// cluster's RBAC is a second lock behind Parley's policy.
	Impersonate map[string]Identity `yaml:"impersonate"`
}

// Identity is a Kubernetes user and groups to impersonate.
type Identity struct {
	User   string   `yaml:"user"`
	Groups []string `yaml:"groups"`
}

// Prometheus is the metrics backend.
type Prometheus struct {
	URL           string            `yaml:"url"`
	Timeout       Duration          `yaml:"timeout"`
	DefaultWindow Duration          `yaml:"default_window"`
	BearerToken   Secret            `yaml:"bearer_token"`
	Templates     map[string]string `yaml:"templates"`
}

// Loki is the logs backend (queries and, optionally, audit push).
type Loki struct {
	URL               string   `yaml:"url"`
	Tenant            string   `yaml:"tenant"`
	Timeout           Duration `yaml:"timeout"`
	BearerToken       Secret   `yaml:"bearer_token"`
	Selector          string   `yaml:"selector"`    // stream selector template, default {app="{{.Service}}"}
	LevelLabel        string   `yaml:"level_label"` // match levels on this label instead of a line filter
	DefaultWindow     Duration `yaml:"default_window"`
	DefaultLimit      int      `yaml:"default_limit"`
	GrafanaURL        string   `yaml:"grafana_url"`
	GrafanaDatasource string   `yaml:"grafana_datasource"`
	// PushAudit also sends every audit event to Loki ({app="parley"}).
	PushAudit bool `yaml:"push_audit"`
	// PushURL overrides where audit events go (a Loki-compatible receiver
	// such as VictoriaLogs' /insert/loki/api/v1/push); default URL.
	PushURL string `yaml:"push_url"`
}

// Slack connects a Slack workspace.
type Slack struct {
	Mode          string `yaml:"mode"` // socket (default) | events
	BotToken      Secret `yaml:"bot_token"`
	AppToken      Secret `yaml:"app_token"`
	SigningSecret Secret `yaml:"signing_secret"`
	// APIURL sends Web API calls to this base URL instead of
	// https://slack.com/api/ (an egress proxy, a test server).
	APIURL string `yaml:"api_url"`
}

// Discord connects a Discord application.
type Discord struct {
	Token         Secret   `yaml:"token"`
	ApplicationID string   `yaml:"application_id"`
	GuildIDs      []string `yaml:"guild_ids"`
	// APIURL sends REST calls meant for https://discord.com to this base
	// URL instead (an egress proxy, a test server).
	APIURL string `yaml:"api_url"`
}

// Channel binds a chat channel: its default namespace, the actions it
// offers, and whether the audit trail is rendered there.
type Channel struct {
	ID        string   `yaml:"id"` // platform:channel-id
	Namespace string   `yaml:"namespace"`
	Actions   []string `yaml:"actions"`
}

// Incidents configures the Alertmanager webhook (POST /webhooks/alertmanager)
// and where each alert group's message goes.
type Incidents struct {
	// Auth is how Alertmanager proves itself: its http_config
	// authorization (bearer token) or basic_auth. Required.
	Auth IncidentAuth `yaml:"auth"`
	// Routes send a group to a channel; the first whose every matcher
	// matches the group's common labels wins.
	Routes []IncidentRoute `yaml:"routes"`
	// DefaultChannel receives groups no route matches.
	DefaultChannel string `yaml:"default_channel"`
	// MaxBody is the largest webhook body accepted, in bytes (default
	// 1 MiB); a larger one is answered 413.
	MaxBody int64 `yaml:"max_body"`
	// GroupWait is the least time between two edits of a group's message:
	// changes within it are coalesced, the latest state wins (default 3s).
	// The first message of a group is never delayed.
	GroupWait Duration `yaml:"group_wait"`
	// ExpireAfter is how long an incident message that cannot be
	// delivered (the chat platform is down) is retried before it is given
	// up, counted (parley_incident_expired_total) and audited
	// (incident.expired). Default 1h; between 1m and 7d.
	ExpireAfter Duration `yaml:"expire_after"`
	// QueueSize bounds the notifications stored and not yet merged, all
	// replicas together (default 256): past it the webhook answers 503
	// with Retry-After and Alertmanager retries.
	QueueSize int `yaml:"queue_size"`
	// DigestAfter is how many groups of one channel may wait for their
	// first message before new groups are listed in one alert-storm
	// digest message instead of a message each (default 3).
	DigestAfter int `yaml:"digest_after"`
	// WebhookSink POSTs the messages of channels "webhook:NAME" as signed
	// JSON to one URL, for teams without Slack or Discord.
	WebhookSink *WebhookSink `yaml:"webhook_sink"`
}

// WebhookSink is the outgoing webhook: a URL and the secret that signs
// each request (X-Parley-Signature, HMAC-SHA256; see docs/webhook-sink.md).
type WebhookSink struct {
	URL     string   `yaml:"url"`
	Secret  Secret   `yaml:"secret"`
	Timeout Duration `yaml:"timeout"` // each POST (default 10s)
}

// IncidentAuth is a bearer token or basic auth; exactly one.
type IncidentAuth struct {
	BearerToken Secret     `yaml:"bearer_token"`
	Basic       *BasicAuth `yaml:"basic"`
}

// BasicAuth is a user and a password secret.
type BasicAuth struct {
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
}

// IncidentRoute maps label matchers to a channel. A matcher value is an
// exact label value, or a regular expression after "=~" (anchored, as in
// Alertmanager): {severity: page, service: "=~checkout|payments"}.
type IncidentRoute struct {
	Match   map[string]string `yaml:"match"`
	Channel string            `yaml:"channel"` // platform:channel-id
}

// LeaderElection configures the election of the replica that holds the
// chat connections (Slack Socket Mode, the Discord gateway). The section's
// presence turns it on; the Helm chart renders lease_name and
// lease_namespace when leaderElection.enabled is set. Every replica serves
// HTTP, sweeps confirmations and keeps its claims alive, led or not.
//
// The Lease is read and written with the cluster connection of the
// kubernetes section (kubeconfig, context or in_cluster) as Parley itself,
// never an impersonated user; kubeconfig here overrides it, for a sandbox
// deployment whose actions use no real cluster.
type LeaderElection struct {
	// LeaseName is the coordination.k8s.io Lease (a DNS subdomain name).
	// Required.
	LeaseName string `yaml:"lease_name"`
	// LeaseNamespace holds the Lease; empty means $POD_NAMESPACE (the
	// chart sets it from the downward API). Required one way or the other.
	LeaseNamespace string `yaml:"lease_namespace"`
	// Identity names this replica in the Lease; empty means $POD_NAME,
	// else the host name. Replicas running at once must differ.
	Identity string `yaml:"identity"`
	// LeaseDuration is how long a lease not renewed keeps others waiting:
	// the longest takeover after a leader dies without releasing it
	// (default 15s). A leader that stops cleanly releases it at once.
	LeaseDuration Duration `yaml:"lease_duration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops leading (default 10s); shorter than LeaseDuration, so a cut-off
	// leader drops its chat connections before anyone else may take over.
	RenewDeadline Duration `yaml:"renew_deadline"`
	// RetryPeriod is how often candidates try to acquire and the leader
	// renews (default 2s).
	RetryPeriod Duration `yaml:"retry_period"`
	// Kubeconfig reaches the cluster holding the Lease when the kubernetes
	// section has none (sandbox); empty means the kubernetes section's.
	Kubeconfig string `yaml:"kubeconfig"`
}

// Leader election defaults, as Kubernetes' own controllers use them.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Environment variables the Helm chart sets from the downward API; they
// default the Lease namespace and the replica's identity.
const (
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
)

// Incident defaults and bounds.
const (
	DefaultIncidentMaxBody     = 1 << 20
	DefaultIncidentGroupWait   = 3 * time.Second
	DefaultIncidentExpireAfter = time.Hour
	DefaultIncidentQueueSize   = 256
	DefaultIncidentDigestAfter = 3
	DefaultWebhookSinkTimeout  = 10 * time.Second
)

// Secret is a credential read from an environment variable or a file,
// never from the configuration itself. It prints as <secret>.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`

	value string
}

// Value returns the secret.
func (s Secret) Value() string { return s.value }

// Set reports whether the secret has a value.
func (s Secret) Set() bool { return s.value != "" }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "<secret>"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret{<secret>}` }

// MarshalYAML prints <secret> and where it comes from, never the value.
func (s Secret) MarshalYAML() (any, error) {
	switch {
	case s.Env != "":
		return "<secret> (env " + s.Env + ")", nil
	case s.File != "":
		return "<secret> (file " + s.File + ")", nil
	}
	return nil, nil
}

// secretHint is how a configuration names a secret.
const secretHint = "{env: VARIABLE} (an environment variable) or {file: PATH} (a file holding it, such as a mounted Kubernetes secret)"

// UnmarshalYAML reads {env: VAR} or {file: PATH}. Anything else, a value
// written inline above all, is refused without repeating any part of it:
// a configuration error is printed, logged and pasted into tickets. The
// refusal is a *yaml.TypeError, so the decoder goes on and reports the
// file's other problems too.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if err := s.decode(n); err != nil {
		return &yaml.TypeError{Errors: []string{err.Error()}}
	}
	return nil
}

func (s *Secret) decode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*s = Secret{}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a secret is never written in the configuration file; name where Parley reads it: %s", n.Line, secretHint)
	}
	var out Secret
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *string
		switch k.Value {
		case "env":
			dst = &out.Env
		case "file":
			dst = &out.File
		default:
			return fmt.Errorf("line %d: a secret takes env or file, not %q; write %s", k.Line, clipKey(k.Value), secretHint)
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || strings.TrimSpace(v.Value) == "" {
			return fmt.Errorf("line %d: %s: want the name of a variable or a path; write %s", v.Line, k.Value, secretHint)
		}
		if *dst != "" {
			return fmt.Errorf("line %d: %s given twice", k.Line, k.Value)
		}
		*dst = v.Value
	}
	*s = out
	return nil
}

// clipKey bounds a key quoted in an error (a key is not a secret, but a
// value pasted where a key goes might be).
func clipKey(k string) string {
	if len(k) > 20 {
		return "a key of " + fmt.Sprint(len(k)) + " characters"
	}
	return k
}

// yamlValueRE matches the excerpt of a value the YAML decoder quotes in
// its type errors ("cannot unmarshal !!str `xoxb-12...` into int").
var yamlValueRE = regexp.MustCompile("!!([a-z]+) `[^`]*`")

// decodeError is a YAML decoding error without the excerpts of values it
// quotes: a secret pasted into the wrong field must not be printed either.
func decodeError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return yamlValueRE.ReplaceAllStringFunc(msg, func(m string) string {
		switch tag := yamlValueRE.FindStringSubmatch(m)[1]; tag {
		case "str":
			return "text"
		case "int", "float":
			return "a number"
		case "bool":
			return "true or false"
		case "map":
			return "a mapping"
		case "seq":
			return "a list"
		default:
			return "a " + tag + " value"
		}
	})
}

// Duration is a time.Duration written like "10s" or "1m".
type Duration time.Duration

// UnmarshalYAML parses a Go or Prometheus duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		pv, perr := action.ParseDuration(s)
		if perr != nil {
			return fmt.Errorf("line %d: invalid duration %q", n.Line, s)
		}
		v = pv
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Load reads and validates a configuration file. getenv resolves secrets
// (os.Getenv in production).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse decodes and validates a configuration. Errors name the file and,
// where the YAML decoder knows it, the line.
func Parse(data []byte, file string, getenv func(string) string) (*Config, error) {
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB", file)
	}
	c := &Config{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", file, decodeError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s: only one YAML document is allowed", file)
	}
	c.actionLines = channelActionLines(data)
	c.defaults()
	if getenv == nil {
		getenv = os.Getenv
	}
	c.LeaderElection.fromEnv(getenv)
	if err := c.resolveSecrets(getenv); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// channelActionLines finds the line of each channels[i].actions[j] entry.
// The document already decoded, so a failure here only loses lines.
func channelActionLines(data []byte) [][]int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	channels := mappingValue(doc.Content[0], "channels")
	if channels == nil || channels.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([][]int, len(channels.Content))
	for i, ch := range channels.Content {
		if acts := mappingValue(ch, "actions"); acts != nil && acts.Kind == yaml.SequenceNode {
			for _, a := range acts.Content {
				out[i] = append(out[i], a.Line)
			}
		}
	}
	return out
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// CheckActions reports channel bindings that name an action not in known
// (the names of the registry's actions: built-in and user-defined), each
// as file:line. The configuration alone cannot tell: which actions exist
// depends on the actions loaded with it.
func (c *Config) CheckActions(known []string) error {
	var errs []error
	for i, ch := range c.Channels {
		for j, a := range ch.Actions {
			if slices.Contains(known, a) {
				continue
			}
			where := c.file
			if i < len(c.actionLines) && j < len(c.actionLines[i]) && c.actionLines[i][j] > 0 {
				where = fmt.Sprintf("%s:%d", c.file, c.actionLines[i][j])
			}
			errs = append(errs, fmt.Errorf("%s: channels[%d].actions: unknown action %q (known: %s)", where, i, a, strings.Join(known, ", ")))
		}
	}
	return errors.Join(errs...)
}

// Default is the configuration used without a file: the sandbox cluster,
// the embedded policy, the console.
func Default() *Config {
	c := &Config{file: "(defaults)"}
	c.defaults()
	return c
}

// File is where the configuration came from.
func (c *Config) File() string { return c.file }

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Database == "" {
		c.Database = ".parley/parley.db"
	}
	if c.Store.Driver == "" {
		c.Store.Driver = StoreSQLite
	}
	c.Server.defaults()
	c.Audit.defaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Evals.Dir == "" {
		c.Evals.Dir = "evals"
	}
	if c.Evals.ReportsDir == "" {
		c.Evals.ReportsDir = "reports/evals"
	}
	if c.Router.Mode == "" {
		c.Router.Mode = "rules"
	}
	if c.Router.Threshold == 0 {
		c.Router.Threshold = 0.75
	}
	if l := c.Router.LLM; l != nil {
		if l.Timeout == 0 {
			l.Timeout = Duration(20 * time.Second)
		}
		if l.CacheTTL == 0 {
			l.CacheTTL = Duration(10 * time.Minute)
		}
	}
	k := &c.Kubernetes
	if k.Kubeconfig == "" && !k.InCluster {
		k.Sandbox = true
	}
	if k.Timeout == 0 {
		k.Timeout = Duration(10 * time.Second)
	}
	if c.Prometheus.Timeout == 0 {
		c.Prometheus.Timeout = Duration(10 * time.Second)
	}
	if c.Loki.Timeout == 0 {
		c.Loki.Timeout = Duration(10 * time.Second)
	}
	c.Alertmanager.defaults()
	if c.Slack != nil && c.Slack.Mode == "" {
		c.Slack.Mode = "socket"
	}
	if le := c.LeaderElection; le != nil {
		if le.LeaseDuration == 0 {
			le.LeaseDuration = Duration(DefaultLeaseDuration)
		}
		if le.RenewDeadline == 0 {
			le.RenewDeadline = Duration(DefaultRenewDeadline)
		}
		if le.RetryPeriod == 0 {
			le.RetryPeriod = Duration(DefaultRetryPeriod)
		}
	}
	if in := c.Incidents; in != nil {
		if in.MaxBody == 0 {
			in.MaxBody = DefaultIncidentMaxBody
		}
		if in.GroupWait == 0 {
			in.GroupWait = Duration(DefaultIncidentGroupWait)
		}
		if in.ExpireAfter == 0 {
			in.ExpireAfter = Duration(DefaultIncidentExpireAfter)
		}
		if in.QueueSize == 0 {
			in.QueueSize = DefaultIncidentQueueSize
		}
		if in.DigestAfter == 0 {
			in.DigestAfter = DefaultIncidentDigestAfter
		}
		if ws := in.WebhookSink; ws != nil && ws.Timeout == 0 {
			ws.Timeout = Duration(DefaultWebhookSinkTimeout)
		}
	}
}

func (c *Config) resolveSecrets(getenv func(string) string) error {
	var errs []error
	resolve := func(name string, s *Secret) {
		if s.Env != "" && s.File != "" {
			errs = append(errs, fmt.Errorf("%s: give env or file, not both", name))
			return
		}
		switch {
		case s.Env != "":
			if getenv == nil {
				getenv = os.Getenv
			}
			s.value = strings.TrimSpace(getenv(s.Env))
			if s.value == "" {
				errs = append(errs, fmt.Errorf("%s: environment variable %s is empty or unset", name, s.Env))
			}
		case s.File != "":
			b, err := os.ReadFile(s.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
			s.value = strings.TrimSpace(string(b))
			if s.value == "" {
				errs = append(errs, fmt.Errorf("%s: file %s is empty", name, s.File))
			}
		}
	}
	resolve("store.dsn", &c.Store.DSN)
	resolve("prometheus.bearer_token", &c.Prometheus.BearerToken)
	if c.Router.LLM != nil {
		resolve("router.llm.api_key", &c.Router.LLM.APIKey)
	}
	resolve("loki.bearer_token", &c.Loki.BearerToken)
	c.Alertmanager.resolveSecrets(resolve)
	if c.Slack != nil {
		resolve("slack.bot_token", &c.Slack.BotToken)
		resolve("slack.app_token", &c.Slack.AppToken)
		resolve("slack.signing_secret", &c.Slack.SigningSecret)
	}
	if c.Discord != nil {
		resolve("discord.token", &c.Discord.Token)
	}
	if in := c.Incidents; in != nil {
		resolve("incidents.auth.bearer_token", &in.Auth.BearerToken)
		if in.Auth.Basic != nil {
			resolve("incidents.auth.basic.password", &in.Auth.Basic.Password)
		}
		if in.WebhookSink != nil {
			resolve("incidents.webhook_sink.secret", &in.WebhookSink.Secret)
		}
	}
	return errors.Join(errs...)
}

var (
	// channelRE is the shape of a platform:id reference; CheckPlatforms
	// checks the platform and its id syntax against the descriptors.
	channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9_.-]{1,64}$`)
	listenRE  = regexp.MustCompile(`^[A-Za-z0-9_.\-\[\]:]*:[0-9]{1,5}$`)
)

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !listenRE.MatchString(c.Listen) {
		bad("listen: %q is not host:port", c.Listen)
	}
	errs = append(errs, c.Server.validate()...)
	errs = append(errs, c.Audit.validate()...)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format: %q is not text or json", c.Log.Format)
	}
	switch c.Router.Mode {
	case "rules":
	case "llm", "hybrid":
		if c.Router.LLM == nil {
			bad("router.llm: mode %s needs an llm section (provider, model, api_key)", c.Router.Mode)
		}
	default:
		bad("router.mode: %q is not rules, llm or hybrid", c.Router.Mode)
	}
	if c.Router.Threshold < 0 || c.Router.Threshold > 1 {
		bad("router.threshold: %v is not between 0 and 1", c.Router.Threshold)
	}
	if l := c.Router.LLM; l != nil {
		if !slices.Contains([]string{"openai", "azure", "anthropic"}, l.Provider) {
			bad("router.llm.provider: %q is not openai, azure or anthropic", l.Provider)
		}
		if l.Model == "" {
			bad("router.llm.model: required")
		}
		switch {
		case l.Provider != "openai" && !l.APIKey.Set():
			bad("router.llm.api_key: required for %s", l.Provider)
		case l.Provider == "openai" && l.BaseURL == "" && !l.APIKey.Set():
			bad("router.llm.api_key: required for api.openai.com (only an OpenAI-compatible base_url may take none)")
		}
		switch l.MaxTokensField {
		case "", MaxCompletionTokens, MaxTokens:
			if l.MaxTokensField != "" && l.Provider == "anthropic" {
				bad("router.llm.max_tokens_field: only for openai and azure (anthropic always sends max_tokens)")
			}
		default:
			bad("router.llm.max_tokens_field: %q is not %s or %s", l.MaxTokensField, MaxCompletionTokens, MaxTokens)
		}
		for i, v := range l.Variants {
			if v.Name == "" || v.Weight < 0 {
				bad("router.llm.variants[%d]: a name and a non-negative weight are required", i)
			}
		}
	}
	switch c.Store.Driver {
	case StoreSQLite:
		if c.Store.DSN.Env != "" || c.Store.DSN.File != "" {
			bad("store.dsn: only for driver postgres (driver sqlite uses database)")
		}
	case StorePostgres:
		if !c.Store.DSN.Set() {
			bad("store.dsn: required for driver postgres (env or file)")
		} else if dsn := c.Store.DSN.Value(); strings.Contains(dsn, "://") &&
			!strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			// Never quote the value: it holds a password.
			bad("store.dsn: a URL must start with postgres:// or postgresql://")
		}
	default:
		bad("store.driver: %q is not sqlite or postgres", c.Store.Driver)
	}
	k := c.Kubernetes
	if k.InCluster && k.Kubeconfig != "" {
		bad("kubernetes: in_cluster and kubeconfig exclude each other")
	}
	if k.Sandbox && (k.InCluster || k.Kubeconfig != "") {
		bad("kubernetes: sandbox excludes in_cluster and kubeconfig")
	}
	if k.Manifests != "" && !k.Sandbox {
		bad("kubernetes.manifests: only for the sandbox")
	}
	for subject, id := range k.Impersonate {
		if !channelRE.MatchString(subject) {
			bad("kubernetes.impersonate: %q is not platform:id", subject)
		}
		if id.User == "" {
			bad("kubernetes.impersonate[%s]: user is required", subject)
		}
	}
	checkURL := func(name, u string) {
		if u == "" {
			return
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("%s: %q is not an http(s) URL", name, u)
			return
		}
		if p.User != nil {
			bad("%s: credentials in the URL are not allowed; use bearer_token with env or file", name)
		}
	}
	checkURL("prometheus.url", c.Prometheus.URL)
	checkURL("loki.url", c.Loki.URL)
	checkURL("loki.grafana_url", c.Loki.GrafanaURL)
	checkURL("loki.push_url", c.Loki.PushURL)
	checkURL("evals.reports_url", c.Evals.ReportsURL)
	if c.Slack != nil {
		checkURL("slack.api_url", c.Slack.APIURL)
	}
	if c.Discord != nil {
		checkURL("discord.api_url", c.Discord.APIURL)
	}
	if c.Router.LLM != nil {
		checkURL("router.llm.base_url", c.Router.LLM.BaseURL)
	}
	errs = append(errs, c.Alertmanager.validate(checkURL)...)
	if c.Loki.PushAudit && c.Loki.URL == "" && c.Loki.PushURL == "" {
		bad("loki.push_audit needs loki.url")
	}
	if s := c.Slack; s != nil {
		if !s.BotToken.Set() {
			bad("slack.bot_token: required (env: SLACK_BOT_TOKEN or file)")
		}
		switch s.Mode {
		case "socket":
			if !s.AppToken.Set() {
				bad("slack.app_token: Socket Mode needs an app-level token (xapp-) with connections:write")
			}
		case "events":
			if !s.SigningSecret.Set() {
				bad("slack.signing_secret: the Events API needs the app's signing secret")
			}
		default:
			bad("slack.mode: %q is not socket or events", s.Mode)
		}
	}
	if d := c.Discord; d != nil {
		if !d.Token.Set() {
			bad("discord.token: required (env: DISCORD_TOKEN or file)")
		}
		if d.ApplicationID == "" {
			bad("discord.application_id: required for the /parley command")
		}
	}
	if in := c.Incidents; in != nil {
		errs = append(errs, in.validate()...)
	}
	if le := c.LeaderElection; le != nil {
		errs = append(errs, le.validate(k)...)
	}
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		if !channelRE.MatchString(ch.ID) {
			bad("channels[%d].id: %q is not platform:channel-id", i, ch.ID)
		}
		if seen[ch.ID] {
			bad("channels[%d].id: %s bound twice", i, ch.ID)
		}
		seen[ch.ID] = true
	}
	return errors.Join(errs...)
}

// labelNameRE is a Prometheus label name.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (in *Incidents) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	a := in.Auth
	switch {
	case a.BearerToken.Set() && a.Basic != nil:
		bad("incidents.auth: give bearer_token or basic, not both")
	case a.Basic != nil:
		if a.Basic.User == "" || strings.Contains(a.Basic.User, ":") {
			bad("incidents.auth.basic.user: required, without a colon")
		}
		if !a.Basic.Password.Set() {
			bad("incidents.auth.basic.password: required (env or file)")
		}
	case !a.BearerToken.Set():
		bad("incidents.auth: a bearer_token or basic auth is required (env or file); the webhook is never open")
	}
	if len(in.Routes) == 0 && in.DefaultChannel == "" {
		bad("incidents: give routes or a default_channel, or alerts have nowhere to go")
	}
	if in.DefaultChannel != "" && !channelRE.MatchString(in.DefaultChannel) {
		bad("incidents.default_channel: %q is not platform:channel-id", in.DefaultChannel)
	}
	for i, r := range in.Routes {
		if !channelRE.MatchString(r.Channel) {
			bad("incidents.routes[%d].channel: %q is not platform:channel-id", i, r.Channel)
		}
		if len(r.Match) == 0 {
			bad("incidents.routes[%d].match: at least one label matcher is required", i)
		}
		for name, v := range r.Match {
			if !labelNameRE.MatchString(name) {
				bad("incidents.routes[%d].match: %q is not a label name", i, name)
			}
			if re, ok := strings.CutPrefix(v, "=~"); ok {
				if _, err := regexp.Compile("^(?:" + re + ")$"); err != nil {
					bad("incidents.routes[%d].match.%s: bad regular expression: %v", i, name, err)
				}
			}
		}
	}
	if in.MaxBody < 1<<10 || in.MaxBody > 64<<20 {
		bad("incidents.max_body: %d bytes is not between 1 KiB and 64 MiB", in.MaxBody)
	}
	if w := in.GroupWait.Std(); w < 0 || w > 10*time.Minute {
		bad("incidents.group_wait: %s is not between 0 and 10m", w)
	}
	if e := in.ExpireAfter.Std(); e < time.Minute || e > 7*24*time.Hour {
		bad("incidents.expire_after: %s is not between 1m and 7d", e)
	}
	if in.QueueSize < 1 || in.QueueSize > 100000 {
		bad("incidents.queue_size: %d is not between 1 and 100000", in.QueueSize)
	}
	if in.DigestAfter < 1 || in.DigestAfter > 1000 {
		bad("incidents.digest_after: %d is not between 1 and 1000", in.DigestAfter)
	}
	if ws := in.WebhookSink; ws != nil {
		u, err := url.Parse(ws.URL)
		if ws.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("incidents.webhook_sink.url: an absolute http(s) URL is required")
		} else if u.User != nil {
			bad("incidents.webhook_sink.url: credentials in the URL are not allowed (the secret signs each request)")
		}
		switch {
		case !ws.Secret.Set():
			bad("incidents.webhook_sink.secret: required (env or file): it signs every request")
		case len(ws.Secret.Value()) < 16:
			bad("incidents.webhook_sink.secret: at least 16 characters")
		}
		if t := ws.Timeout.Std(); t <= 0 || t > time.Minute {
			bad("incidents.webhook_sink.timeout: %s is not between 0 and 1m", t)
		}
	}
	return errs
}

// fromEnv fills the namespace and identity the file leaves empty from the
// pod's environment (the host name for the identity when not in a pod).
func (le *LeaderElection) fromEnv(getenv func(string) string) {
	if le == nil {
		return
	}
	if le.LeaseNamespace == "" {
		le.LeaseNamespace = strings.TrimSpace(getenv(EnvPodNamespace))
	}
	if le.Identity == "" {
		le.Identity = strings.TrimSpace(getenv(EnvPodName))
	}
	if le.Identity == "" {
		le.Identity, _ = os.Hostname()
	}
}

var (
	// dnsSubdomainRE is a Kubernetes object name (RFC 1123 subdomain).
	dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// dnsLabelRE is a namespace name (RFC 1123 label).
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// leaderJitter is client-go's leaderelection.JitterFactor: the renew
// deadline must exceed the retry period times it.
const leaderJitter = 1.2

func (le *LeaderElection) validate(k Kubernetes) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if le.LeaseName == "" {
		bad("leader_election.lease_name: required")
	} else if len(le.LeaseName) > 253 || !dnsSubdomainRE.MatchString(le.LeaseName) {
		bad("leader_election.lease_name: %q is not a Kubernetes object name (lower-case DNS subdomain)", le.LeaseName)
	}
	if le.LeaseNamespace == "" {
		bad("leader_election.lease_namespace: required (or set %s)", EnvPodNamespace)
	} else if len(le.LeaseNamespace) > 63 || !dnsLabelRE.MatchString(le.LeaseNamespace) {
		bad("leader_election.lease_namespace: %q is not a namespace name", le.LeaseNamespace)
	}
	if le.Identity == "" {
		bad("leader_election.identity: required when neither %s nor the host name gives one", EnvPodName)
	} else if len(le.Identity) > 253 || strings.ContainsFunc(le.Identity, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		bad("leader_election.identity: %q must be printable ASCII without spaces, at most 253 bytes", le.Identity)
	}
	lease, renew, retry := le.LeaseDuration.Std(), le.RenewDeadline.Std(), le.RetryPeriod.Std()
	switch {
	case retry <= 0 || renew <= 0 || lease <= 0:
		bad("leader_election: lease_duration, renew_deadline and retry_period must be positive")
	case lease < time.Second || lease > 5*time.Minute:
		// The Lease stores whole seconds.
		bad("leader_election.lease_duration: %s is not between 1s and 5m", lease)
	case renew >= lease:
		bad("leader_election.renew_deadline: %s must be shorter than lease_duration %s, so a cut-off leader stops before another may start", renew, lease)
	case float64(renew) <= leaderJitter*float64(retry):
		bad("leader_election.retry_period: %s must be shorter than renew_deadline %s / %.1f", retry, renew, leaderJitter)
	}
	if le.Kubeconfig == "" && k.Sandbox {
		bad("leader_election: the Lease needs a real cluster: set kubernetes.in_cluster or kubernetes.kubeconfig, or leader_election.kubeconfig")
	}
	return errs
}

// Dump writes the configuration as YAML with secrets shown as their
// source only.
func (c *Config) Dump(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	return enc.Close()
}
