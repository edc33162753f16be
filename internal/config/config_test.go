package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tokenValue = "fake-slack-bot-SECRETVALUE"

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFullConfig(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "discord.token")
	if err := os.WriteFile(tokFile, []byte("discord-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
listen: 0.0.0.0:9090
database: /var/lib/parley/parley.db
trail: true
log: {level: debug, format: json}
kubernetes:
  kubeconfig: /etc/kube/config
  timeout: 5s
  impersonate:
    slack:U024BE7LH: {user: alice, groups: [sre]}
prometheus:
  url: http://prometheus:9090
  templates: {error_rate: 'sum(rate(x{svc="{{.Service}}"}[{{.Window}}]))'}
loki: {url: http://loki:3100, push_audit: true}
slack:
  bot_token: {env: SLACK_BOT_TOKEN}
  app_token: {env: SLACK_APP_TOKEN}
discord:
  token: {file: %s}
  application_id: "1130000000000000000"
channels:
  - {id: "slack:C0OPS", namespace: prod, actions: [kubernetes.status, kubernetes.scale]}
`, tokFile)
	c, err := Parse([]byte(src), "parley.yaml", env(map[string]string{"SLACK_BOT_TOKEN": tokenValue, "SLACK_APP_TOKEN": "fake-slack-app-SECRET"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kubernetes.Sandbox || c.Kubernetes.Timeout.Std().Seconds() != 5 || c.Slack.Mode != "socket" {
		t.Errorf("kubernetes/slack = %+v %+v", c.Kubernetes, c.Slack)
	}
	if c.Slack.BotToken.Value() != tokenValue || c.Discord.Token.Value() != "discord-SECRET" {
		t.Error("secrets not resolved")
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	dump := b.String() + fmt.Sprintf("%v %+v %#v %s", c.Slack, c.Slack, c.Slack, c.Slack.BotToken)
	for _, secret := range []string{tokenValue, "fake-slack-app-SECRET", "discord-SECRET"} {
		if strings.Contains(dump, secret) {
			t.Fatalf("secret %q printed:\n%s", secret, dump)
		}
	}
	if !strings.Contains(dump, "<secret> (env SLACK_BOT_TOKEN)") {
		t.Errorf("dump does not name the secret's source:\n%s", dump)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("{}\n"), "empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Kubernetes.Sandbox || c.Listen != "127.0.0.1:8080" || c.Slack != nil {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"listen: x\n", `listen: "x" is not host:port`},
		{"lissen: :80\n", "line 1: field lissen not found"},
		{"prometheus:\n  url: http://p:9090\n  timeut: 5s\n", "line 3: field timeut not found"},
		{"prometheus: {url: 'ftp://x'}\n", "is not an http(s) URL"},
		{"prometheus: {url: 'http://u:p@x'}\n", "credentials in the URL are not allowed"},
		{"kubernetes: {timeout: soon}\n", `invalid duration "soon"`},
		{"kubernetes: {in_cluster: true, kubeconfig: /x}\n", "exclude each other"},
		{"slack: {bot_token: {env: NOPE}}\n", "environment variable NOPE is empty or unset"},
		{"slack: {bot_token: {env: A, file: /b}}\n", "env or file, not both"},
		{"slack: {bot_token: inline-token-text}\n", "line 1"},
		{"slack: {mode: rtm, bot_token: {env: T}}\n", `slack.mode: "rtm"`},
		{"slack: {bot_token: {env: T}}\n", "Socket Mode needs an app-level token"},
		{"discord: {token: {env: T}}\n", "discord.application_id: required"},
		{"discord: {token: {env: T}, application_id: '1', api_url: 'discord.example'}\n", "discord.api_url"},
		{"slack: {bot_token: {env: T}, app_token: {env: T}, api_url: 'ftp://slack.example/'}\n", "slack.api_url"},
		{"channels: [{id: general}]\n", `"general" is not platform:channel-id`},
		{"channels: [{id: 'slack:C1'}, {id: 'slack:C1'}]\n", "bound twice"},
		{"loki: {push_audit: true}\n", "push_audit needs loki.url"},
		{"router: {mode: llm}\n", "mode llm needs an llm section"},
		{"router: {mode: magic}\n", `router.mode: "magic"`},
		{"router: {mode: hybrid, llm: {provider: anthropic, model: claude}}\n", "router.llm.api_key: required for anthropic"},
		{"router: {mode: hybrid, llm: {provider: openai, model: m}}\n", "router.llm.api_key: required for api.openai.com"},
		{"router: {mode: hybrid, llm: {provider: openai, model: m, base_url: 'http://h/v1', max_tokens_field: max_toks}}\n", `router.llm.max_tokens_field: "max_toks"`},
		{"router: {mode: hybrid, llm: {provider: anthropic, model: m, api_key: {env: T}, max_tokens_field: max_tokens}}\n", "router.llm.max_tokens_field: only for openai and azure"},
		{"router: {mode: hybrid, llm: {provider: openai, model: m, base_url: 'http://k:s@h'}}\n", "router.llm.base_url"},
		{"router: {mode: hybrid, llm: {provider: cohere, model: m}}\n", `router.llm.provider: "cohere"`},
		{"a: 1\n---\nb: 2\n", "field a not found"},
		{"{}\n---\n{}\n", "only one YAML document"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "bad.yaml", env(map[string]string{"T": tokenValue}))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tt.src, err, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "bad.yaml:") {
			t.Errorf("error does not name the file: %v", err)
		}
		if strings.Contains(err.Error(), tokenValue) {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}

// TestCheckActions: which actions exist is known only with the registry,
// so channel bindings are checked after parsing, still naming file:line.
func TestCheckActions(t *testing.T) {
	src := "channels:\n  - id: 'slack:C1'\n    actions:\n      - kubernetes.status\n      - kubectl.delete\n  - id: 'slack:C2'\n    actions: [cdn.purge]\n"
	c, err := Parse([]byte(src), "bound.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"help", "kubernetes.status"}
	err = c.CheckActions(known)
	if err == nil {
		t.Fatal("unknown actions accepted")
	}
	for _, want := range []string{`bound.yaml:5: channels[0].actions: unknown action "kubectl.delete" (known: help, kubernetes.status)`,
		`bound.yaml:7: channels[1].actions: unknown action "cdn.purge"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckActions = %v\nwant it to contain %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"kubernetes.status"`) {
		t.Errorf("a known action reported: %v", err)
	}
	if err := c.CheckActions(append(known, "kubectl.delete", "cdn.purge")); err != nil {
		t.Errorf("all known: %v", err)
	}
}

func TestStore(t *testing.T) {
	const dsn = "postgres://parley:PG-SECRET-pw@db:5432/parley?sslmode=verify-full"
	getenv := env(map[string]string{"PARLEY_DSN": dsn, "BAD_DSN": "mysql://u:PG-SECRET-pw@h/db"})

	c, err := Parse([]byte("{}\n"), "empty.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != StoreSQLite || c.Store.DSN.Set() || c.Database != ".parley/parley.db" {
		t.Errorf("default store = %+v, database %q; want sqlite on .parley/parley.db", c.Store, c.Database)
	}

	c, err = Parse([]byte("store: {driver: postgres, dsn: {env: PARLEY_DSN}}\n"), "pg.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != StorePostgres || c.Store.DSN.Value() != dsn {
		t.Errorf("store = %+v, want postgres with the DSN from PARLEY_DSN", c.Store)
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	dump := b.String() + fmt.Sprintf("%v %+v %#v", c.Store, c.Store, c.Store)
	if strings.Contains(dump, "PG-SECRET-pw") {
		t.Fatalf("the DSN's password is printed:\n%s", dump)
	}
	if !strings.Contains(b.String(), "<secret> (env PARLEY_DSN)") {
		t.Errorf("dump does not name the DSN's source:\n%s", b.String())
	}

	for src, want := range map[string]string{
		"store: {driver: postgres}\n":                            "store.dsn: required for driver postgres",
		"store: {driver: mysql}\n":                               `store.driver: "mysql" is not sqlite or postgres`,
		"store: {dsn: {env: PARLEY_DSN}}\n":                      "store.dsn: only for driver postgres",
		"store: {driver: postgres, dsn: {env: BAD_DSN}}\n":       "must start with postgres://",
		"store: {driver: postgres, dsn: {env: UNSET}}\n":         "environment variable UNSET is empty or unset",
		"store: {driver: postgres, dsn: 'postgres://u:p@h/d'}\n": "line 1",
		"store: {driver: postgres, dns: {env: PARLEY_DSN}}\n":    "field dns not found",
	} {
		_, err := Parse([]byte(src), "bad.yaml", getenv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", src, err, want)
			continue
		}
		if strings.Contains(err.Error(), "PG-SECRET-pw") {
			t.Errorf("error reveals the DSN's password: %v", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:8080\nslack: {bot_token: {env: T}, app_token: {env: T}}\n"))
	f.Add([]byte("channels: [{id: 'slack:C1', namespace: prod}]\n"))
	f.Add([]byte("kubernetes: {timeout: 1d}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", env(map[string]string{"T": tokenValue}))
		if err != nil {
			if strings.Contains(err.Error(), tokenValue) {
				t.Fatalf("error reveals a secret: %v", err)
			}
			return
		}
		var b strings.Builder
		if err := c.Dump(&b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), tokenValue) {
			t.Fatal("dump reveals a secret")
		}
	})
}

func TestIncidents(t *testing.T) {
	getenv := env(map[string]string{"AM_TOKEN": "am-SECRET-token", "AM_PW": "am-SECRET-pw"})
	src := `
slack: {bot_token: {env: AM_TOKEN}, app_token: {env: AM_TOKEN}}
discord: {token: {env: AM_TOKEN}, application_id: "1130000000000000000"}
incidents:
  auth: {bearer_token: {env: AM_TOKEN}}
  routes:
    - {match: {team: payments}, channel: "slack:CPAY"}
    - {match: {service: "=~checkout|cart", severity: page}, channel: "discord:1130000000000000002"}
  default_channel: "slack:C0INCIDENTS"
`
	c, err := Parse([]byte(src), "parley.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	in := c.Incidents
	if in.Auth.BearerToken.Value() != "am-SECRET-token" || len(in.Routes) != 2 || in.Routes[1].Match["service"] != "=~checkout|cart" {
		t.Errorf("incidents = %+v", in)
	}
	if in.MaxBody != DefaultIncidentMaxBody || in.GroupWait.Std() != DefaultIncidentGroupWait || in.ExpireAfter.Std() != time.Hour ||
		in.QueueSize != DefaultIncidentQueueSize || in.DigestAfter != DefaultIncidentDigestAfter || in.WebhookSink != nil {
		t.Errorf("defaults: max_body %d, group_wait %s, expire_after %s, queue_size %d, digest_after %d, webhook_sink %v",
			in.MaxBody, in.GroupWait.Std(), in.ExpireAfter.Std(), in.QueueSize, in.DigestAfter, in.WebhookSink)
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "am-SECRET") || !strings.Contains(b.String(), "<secret> (env AM_TOKEN)") {
		t.Errorf("dump:\n%s", b.String())
	}

	c, err = Parse([]byte("slack: {bot_token: {env: AM_TOKEN}, app_token: {env: AM_TOKEN}}\nincidents: {auth: {basic: {user: am, password: {env: AM_PW}}}, default_channel: 'slack:C1', max_body: 65536, group_wait: 10s}\n"), "basic.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Incidents.Auth.Basic.Password.Value() != "am-SECRET-pw" || c.Incidents.MaxBody != 65536 || c.Incidents.GroupWait.Std().Seconds() != 10 {
		t.Errorf("basic incidents = %+v", c.Incidents)
	}
	c, err = Parse([]byte("incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:oncall', expire_after: 2h, queue_size: 1000, digest_after: 5,\n"+
		"  webhook_sink: {url: 'https://hooks.example.com/parley', secret: {env: SINK}}}\n"), "sink.yaml", env(map[string]string{"AM_TOKEN": "am-SECRET-token", "SINK": "sink-SECRET-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Incidents; in.ExpireAfter.Std() != 2*time.Hour || in.QueueSize != 1000 || in.DigestAfter != 5 || in.WebhookSink == nil ||
		in.WebhookSink.Secret.Value() != "sink-SECRET-0123456789" || in.WebhookSink.Timeout.Std() != DefaultWebhookSinkTimeout {
		t.Errorf("sink incidents = %+v", in)
	}
	b.Reset()
	if err := c.Dump(&b); err != nil || strings.Contains(b.String(), "sink-SECRET") {
		t.Errorf("dump shows the sink secret (%v):\n%s", err, b.String())
	}
	if c, _ := Parse([]byte("{}\n"), "none.yaml", getenv); c.Incidents != nil {
		t.Error("incidents set without a section")
	}

	for src, want := range map[string]string{
		"incidents: {default_channel: 'slack:C1'}\n":           "a bearer_token or basic auth is required",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}}\n": "give routes or a default_channel",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}, basic: {user: u, password: {env: AM_PW}}}, default_channel: 'slack:C1'}\n":                                  "not both",
		"incidents: {auth: {basic: {user: u}}, default_channel: 'slack:C1'}\n":                                                                                         "basic.password: required",
		"incidents: {auth: {basic: {user: 'a:b', password: {env: AM_PW}}}, default_channel: 'slack:C1'}\n":                                                             "without a colon",
		"incidents: {auth: {bearer_token: am-inline}, default_channel: 'slack:C1'}\n":                                                                                  "line 1",
		"incidents: {auth: {bearer_token: {env: UNSET}}, default_channel: 'slack:C1'}\n":                                                                               "UNSET is empty or unset",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: C1}\n":                                                                                    `default_channel: "C1" is not platform:channel-id`,
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, routes: [{match: {a: b}, channel: x}]}\n":                                                                  `routes[0].channel: "x"`,
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, routes: [{channel: 'slack:C1'}]}\n":                                                                        "routes[0].match: at least one",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, routes: [{match: {a: '=~('}, channel: 'slack:C1'}]}\n":                                                     "bad regular expression",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, routes: [{match: {a-b: c}, channel: 'slack:C1'}]}\n":                                                       `"a-b" is not a label name`,
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', max_body: 10}\n":                                                              "max_body: 10 bytes",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', group_wait: 1h}\n":                                                            "group_wait: 1h0m0s is not between",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', grup_wait: 1s}\n":                                                             "field grup_wait not found",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', expire_after: 10s}\n":                                                         "expire_after: 10s is not between 1m and 7d",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', queue_size: -1}\n":                                                            "queue_size: -1 is not between",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'slack:C1', digest_after: 5000}\n":                                                        "digest_after: 5000 is not between",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {secret: {env: AM_TOKEN}}}\n":                                  "webhook_sink.url: an absolute http(s) URL",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'ftp://h/x', secret: {env: AM_TOKEN}}}\n":                "webhook_sink.url",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'https://u:p@h/x', secret: {env: AM_TOKEN}}}\n":          "credentials in the URL",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'https://h/x'}}\n":                                       "webhook_sink.secret: required",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'https://h/x', secret: {env: AM_PW}}}\n":                 "at least 16 characters",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'https://h/x', secret: sink-inline-secret-0123}}\n":      "line 1",
		"incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: 'webhook:x', webhook_sink: {url: 'https://h/x', secret: {env: AM_TOKEN}, headers: {}}}\n": "field headers not found",
	} {
		_, err := Parse([]byte(src), "bad.yaml", getenv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", src, err, want)
			continue
		}
		if strings.Contains(err.Error(), "am-SECRET") {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}
