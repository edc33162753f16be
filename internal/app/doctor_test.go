package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
	"github.com/parley-chatops/parley/internal/testenv/promtest"
)

// Secret values of the doctor tests' configurations; none may appear in
// what the doctor prints.
const (
	doctorLokiToken = "loki-" + "SECRET-token-0451"
	doctorAMToken   = "am-" + "SECRET-token-0452"
	doctorLLMKey    = "sk-" + "SECRET-llm-key-0453"
)

// runCLI runs the parley command line in-process.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errb.String()
}

// fakeLoki answers Loki's labels API as Loki documents it, for the tenant
// and token given; anything else is 401.
func fakeLoki(t *testing.T, tenant, token string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/loki/api/v1/labels" || r.Header.Get("X-Scope-OrgID") != tenant || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no org id", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":["app","level","namespace"]}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// doctorSetup is a deployment for the doctor to examine: a service
// account on the test cluster (with the rights grant gives it), the fake
// Slack and Discord, a real Prometheus and Alertmanager, a fake Loki and
// model endpoint, and a SQLite database.
type doctorSetup struct {
	dir, ns, kubeconfig, dbPath string
	slack                       *chattest.Slack
	discord                     *chattest.Discord
	promURL, lokiURL, amURL     string
	llmURL                      string
	env                         map[string]string
}

func newDoctorSetup(t *testing.T, lokiToken string, llm llmtest.Handler, amWebhook string) *doctorSetup {
	t.Helper()
	kc := kubetest.Shared(t)
	s := &doctorSetup{dir: t.TempDir(), slack: chattest.NewSlack(t), discord: chattest.NewDiscord(t)}
	s.ns = kc.NewNamespace(t, "doctor")
	s.kubeconfig = filepath.Join(s.dir, "kubeconfig")
	if err := kubetest.WriteKubeconfig(s.kubeconfig, kc.ServiceAccountConfig(t, s.ns, "parley")); err != nil {
		t.Fatal(err)
	}
	s.promURL = promtest.StartPrometheus(t, promtest.Config{}).URL
	s.amURL = promtest.StartAlertmanager(t, promtest.AlertmanagerConfig{WebhookURL: amWebhook}).URL
	s.lokiURL = fakeLoki(t, "ops", doctorLokiToken).URL
	s.llmURL = llmtest.NewOpenAI(t, llm).BaseURL()
	s.dbPath = filepath.Join(s.dir, "parley.db")
	db, err := store.Open(context.Background(), s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(db, audit.Options{})
	for _, typ := range []audit.Type{audit.MessageReceived, audit.IntentRouted} {
		if _, err := rec.Record(context.Background(), audit.Event{Type: typ, Subject: "slack:UALICE", Text: "status of checkout"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s.env = map[string]string{
		"SLACK_BOT_TOKEN": chattest.SlackBotToken, "SLACK_APP_TOKEN": chattest.SlackAppToken,
		"DISCORD_TOKEN": chattest.DiscordToken, "LOKI_TOKEN": lokiToken, "AM_TOKEN": doctorAMToken, "LLM_KEY": doctorLLMKey,
	}
	return s
}

// grant gives the service account rights in the setup's namespace.
func (s *doctorSetup) grant(t *testing.T, rules ...rbacv1.PolicyRule) {
	t.Helper()
	kubetest.Shared(t).Grant(t, s.ns, kubetest.ServiceAccountSubject(s.ns, "parley"), rules...)
}

// accessRules are kubernetes.Access() as RBAC rules: exactly what the
// actions use, no more.
func accessRules() []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range kubernetes.Access() {
		res := r.Resource
		if r.Subresource != "" {
			res += "/" + r.Subresource
		}
		out = append(out, rbacv1.PolicyRule{APIGroups: []string{r.Group}, Resources: []string{res}, Verbs: []string{r.Verb}})
	}
	return out
}

func (s *doctorSetup) config(t *testing.T) string {
	t.Helper()
	path := filepath.Join(s.dir, "parley.yaml")
	src := fmt.Sprintf(`
database: %q
kubernetes:
  kubeconfig: %q
  namespaces: [%s]
  impersonate: {"slack:UALICE": {user: alice, groups: [sre]}}
prometheus: {url: %q}
loki: {url: %q, tenant: ops, bearer_token: {env: LOKI_TOKEN}}
alertmanager: {url: %q}
router:
  mode: hybrid
  llm: {provider: openai, base_url: %q, model: gpt-test, api_key: {env: LLM_KEY}, timeout: 5s, max_retries: 0}
slack: {bot_token: {env: SLACK_BOT_TOKEN}, app_token: {env: SLACK_APP_TOKEN}, api_url: %q}
discord: {token: {env: DISCORD_TOKEN}, application_id: %q, guild_ids: [%q], api_url: %q}
channels: [{id: "slack:C0OPS", namespace: %s}]
incidents: {auth: {bearer_token: {env: AM_TOKEN}}, default_channel: "slack:C0OPS"}
leader_election: {lease_name: parley, lease_namespace: %s}
`, s.dbPath, s.kubeconfig, s.ns, s.promURL, s.lokiURL, s.amURL, s.llmURL, s.slack.URL(), chattest.DiscordAppID, chattest.DiscordGuild, s.discord.URL(), s.ns, s.ns)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lines maps each check's name to its status mark ("ok", "FAIL", "skip").
var doctorLineRE = regexp.MustCompile(`(?m)^(ok|FAIL|skip)\s{2,}(\S+(?: \S+)*?)\s{2,}`)

func doctorMarks(out string) map[string]string {
	marks := map[string]string{}
	for _, m := range doctorLineRE.FindAllStringSubmatch(out, -1) {
		marks[m[2]] = m[1]
	}
	return marks
}

func (s *doctorSetup) noSecrets(t *testing.T, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		for _, secret := range []string{chattest.SlackBotToken, chattest.SlackAppToken, chattest.DiscordToken, doctorLokiToken, doctorAMToken, doctorLLMKey, "wrong-" + doctorLokiToken} {
			if strings.Contains(out, secret) {
				t.Errorf("the doctor printed a secret:\n%s", out)
			}
		}
	}
}

// TestDoctorPasses: a deployment set up as the docs say passes every
// check, with a service account granted exactly kubernetes.Access() (so
// the list is enough for the doctor) plus its Lease and impersonation.
func TestDoctorPasses(t *testing.T) {
	s := newDoctorSetup(t, doctorLokiToken, func(r llmtest.Request) llmtest.Response {
		return llmtest.OpenAIToolCall(r, "help", `{}`)
	}, "http://parley.parley.svc:8080/webhooks/alertmanager")
	s.grant(t, append(accessRules(), rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}})...)
	kubetest.Shared(t).Grant(t, "", kubetest.ServiceAccountSubject(s.ns, "parley"),
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"alice"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"sre"}})
	s.discord.AddCommand(chattest.DiscordGuild, "parley", "Ask Parley")

	code, out, errOut := runCLI(t, s.env, "doctor", "--config", s.config(t)) // alertmanager.url from the config
	if code != 0 {
		t.Fatalf("doctor exited %d:\n%s%s", code, out, errOut)
	}
	marks := doctorMarks(out)
	for _, name := range []string{"config", "policy", "actions", "database", "audit chain", "slack token", "slack scopes", "slack socket mode",
		"discord token", "discord intents", "discord commands", "prometheus", "loki", "alertmanager", "kubernetes", "kubernetes rbac",
		"leader election", "kubernetes impersonation", "llm"} {
		if marks[name] != "ok" {
			t.Errorf("%s: %q, want ok\n%s", name, marks[name], out)
		}
	}
	if !strings.Contains(out, "audit log OK: 2 events") || !strings.Contains(out, fmt.Sprintf("all %d rights the actions use, in %s", len(kubernetes.Access()), s.ns)) {
		t.Errorf("details missing:\n%s", out)
	}
	s.noSecrets(t, out, errOut)
}

// TestDoctorFailuresSayHowToFix: every broken part fails with what was
// found and a fix; the exit status is 1; no secret is printed.
func TestDoctorFailuresSayHowToFix(t *testing.T) {
	s := newDoctorSetup(t, "wrong-"+doctorLokiToken, func(r llmtest.Request) llmtest.Response {
		return llmtest.OpenAIError(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided")
	}, "http://somewhere.else:8080/hook")
	// Only reading deployments: the other rights are missing.
	s.grant(t, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list"}})
	s.slack.SetScopes("app_mentions:read,channels:history,chat:write,files:write,im:history,usergroups:read")
	s.slack.SetAppTokenOK(false)
	s.discord.SetAppFlags(0)
	cfg := s.config(t)
	// A hand edit of the audit log.
	db, err := store.Open(context.Background(), s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `UPDATE audit_events SET text = 'status of payments' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Prometheus where nothing listens.
	src, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(src, []byte(s.promURL), []byte(fmt.Sprintf("http://127.0.0.1:%d", freePort(t))), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, s.env, "doctor", "--config", cfg, "--alertmanager", s.amURL)
	if code != 1 {
		t.Fatalf("doctor exited %d, want 1:\n%s%s", code, out, errOut)
	}
	marks := doctorMarks(out)
	for name, want := range map[string]string{
		"audit chain": "FAIL", "slack scopes": "FAIL", "slack socket mode": "FAIL", "discord intents": "FAIL", "discord commands": "FAIL",
		"prometheus": "FAIL", "loki": "FAIL", "alertmanager": "FAIL", "kubernetes rbac": "FAIL", "leader election": "FAIL",
		"kubernetes impersonation": "FAIL", "llm": "FAIL",
		"config": "ok", "slack token": "ok", "discord token": "ok", "kubernetes": "ok",
	} {
		if marks[name] != want {
			t.Errorf("%s: %q, want %s", name, marks[name], want)
		}
	}
	for _, want := range []string{
		"the bot token lacks commands, groups:history, mpim:history",
		"Message Content Intent: on",
		"/parley is not registered guild " + chattest.DiscordGuild,
		"update deployments.apps/scale in " + s.ns + " (for kubernetes.scale)",
		"patch deployments.apps in " + s.ns + " (for kubernetes.restart)",
		"no receiver sends to Parley's /webhooks/alertmanager",
		"audit log failed verification at #1",
		"401",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Every failure is followed by its fix.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "FAIL") {
			continue
		}
		fixed := false
		for _, next := range lines[i+1:] {
			if !strings.HasPrefix(next, "      ") {
				break
			}
			fixed = fixed || strings.Contains(next, "fix: ")
		}
		if !fixed {
			t.Errorf("no fix for %q", l)
		}
	}
	if t.Failed() {
		t.Logf("doctor output:\n%s", out)
	}
	s.noSecrets(t, out, errOut)
}

// TestDoctorCannotRun: a check that cannot run says why; a configuration
// that does not load fails at once; --config is required.
func TestDoctorCannotRun(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("database: %q\nincidents: {auth: {bearer_token: {env: AM}}, default_channel: \"slack:C1\"}\nslack: {bot_token: {env: B}, app_token: {env: A}, api_url: \"http://127.0.0.1:%d/\"}\n",
		filepath.Join(dir, "missing", "parley.db"), freePort(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AM": doctorAMToken, "B": chattest.SlackBotToken, "A": chattest.SlackAppToken}
	code, out, _ := runCLI(t, env, "doctor", "--config", cfg)
	marks := doctorMarks(out)
	if code != 1 || marks["database"] != "skip" || marks["alertmanager"] != "skip" || marks["slack token"] != "FAIL" || marks["slack scopes"] != "skip" || marks["kubernetes"] != "skip" {
		t.Errorf("exit %d, marks %v:\n%s", code, marks, out)
	}
	for _, want := range []string{"cannot run here:", "cannot run: set alertmanager.url or give --alertmanager URL", "cannot run: auth.test failed", "Slack did not answer"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, chattest.SlackBotToken) || strings.Contains(out, doctorAMToken) {
		t.Errorf("a secret was printed:\n%s", out)
	}

	if err := os.WriteFile(cfg, []byte("listen: nowhere\nslack: {bot_token: {env: UNSET}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, nil, "doctor", "--config", cfg)
	if code != 1 || doctorMarks(out)["config"] != "FAIL" || !strings.Contains(out, "UNSET is empty or unset") || !strings.Contains(out, "1 failed") {
		t.Errorf("bad config: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "doctor"); code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("no --config: exit %d %q", code, errOut)
	}
}
