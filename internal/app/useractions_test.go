package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/pipeline"
)

// exampleActions is the repository's examples/actions folder.
const exampleActions = "../../examples/actions"

// cdnToken is what the tests give CDN_TOKEN; built from parts.
var cdnToken = strings.Join([]string{"cdn", "app", "0a1b2c3d4e"}, "-")

func runMain(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	code := Main(ctx, args, env)
	return code, out.String(), errb.String()
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const badAction = `name: kubernetes.scale
summary: Shadows a built-in.
kind: mutating
examples: [{text: scale it}]
run: {http: {method: POST, url: "https://x.example.com/"}}
`

func TestConfigValidateLoadsActions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml":       "actions_dir: " + exampleActions + "\n",
		"bad/scale.yaml":    badAction,
		"badcfg.yaml":       "actions_dir: BAD\n",
		"missing/cdn.yaml":  "",
		"empty-config.yaml": "listen: 127.0.0.1:0\n",
	})
	cfg := filepath.Join(dir, "config.yaml")
	code, out, errOut := runMain(t, map[string]string{"CDN_TOKEN": cdnToken}, "config", "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "actions: 3 user-defined actions in "+exampleActions) {
		t.Fatalf("valid: exit %d\n%s%s", code, out, errOut)
	}
	// The secret the CDN action names is missing: reported by name.
	code, _, errOut = runMain(t, nil, "config", "validate", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "cdn-purge.yaml:24: run.http.headers.Authorization.secret.env: environment variable CDN_TOKEN is empty or unset") {
		t.Errorf("missing secret: exit %d\n%s", code, errOut)
	}
	// --actions overrides actions_dir; a clash with a built-in is file:line.
	code, _, errOut = runMain(t, nil, "config", "validate", "--config", filepath.Join(dir, "empty-config.yaml"), "--actions", filepath.Join(dir, "bad"))
	if code != 1 || !strings.Contains(errOut, "scale.yaml:1: name: kubernetes.scale is a built-in action") {
		t.Errorf("clash: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, cdnToken) {
		t.Error("a secret in the output")
	}
}

func TestServeRefusesBadActions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml":    fmt.Sprintf("listen: 127.0.0.1:0\ndatabase: %s\n", filepath.Join(t.TempDir(), "p.db")),
		"bad/scale.yaml": badAction,
	})
	code, _, errOut := runMain(t, nil, "serve", "--config", filepath.Join(dir, "config.yaml"), "--actions", filepath.Join(dir, "bad"))
	if code != 1 || !strings.Contains(errOut, "scale.yaml:1: name: kubernetes.scale is a built-in action") {
		t.Fatalf("serve: exit %d\n%s", code, errOut)
	}
}

const userPolicy = `groups:
  sre: [console:alice, console:bob]
rules:
  - name: anyone may read
    actions: [help, oncall.who]
    effect: allow
  - name: a second sre confirms a purge
    subjects: [group:sre]
    actions: [cdn.purge]
    when: params.site != "shop" || params.path != "/"
    effect: confirm
    approvers: [group:sre]
    distinct_approver: true
default: deny
`

func TestPolicyCheckUserActions(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.yaml": userPolicy})
	pol := filepath.Join(dir, "policy.yaml")
	check := func(as string, params ...string) string {
		t.Helper()
		args := []string{"policy", "check", "--actions", exampleActions, "--policy", pol, "--as", as, "--action", "cdn.purge"}
		for _, p := range params {
			args = append(args, "--param", p)
		}
		code, out, errOut := runMain(t, nil, args...)
		if code != 0 {
			t.Fatalf("policy check exit %d\n%s%s", code, out, errOut)
		}
		return out
	}
	// No CDN_TOKEN is set: checking a policy reads no secret.
	if out := check("eve", "site=blog"); !strings.Contains(out, "deny") {
		t.Errorf("eve:\n%s", out)
	}
	if out := check("alice", "site=blog"); !strings.Contains(out, "a second sre confirms a purge") || !strings.Contains(out, "confirm") {
		t.Errorf("alice:\n%s", out)
	}
	// The CEL condition sees the default path.
	if out := check("alice", "site=shop"); strings.Contains(out, "decision: confirm") {
		t.Errorf("alice, whole shop cache:\n%s", out)
	}
	if out := check("alice", "site=intranet"); !strings.Contains(out, "site must be one of shop, blog, docs") || !strings.Contains(out, "refuses such a request before it asks the policy") {
		t.Errorf("out of the enum:\n%s", out)
	}
	// Without --actions the policy names an action that does not exist.
	code, _, errOut := runMain(t, nil, "policy", "check", "--policy", pol, "--as", "alice", "--action", "help")
	if code != 1 || !strings.Contains(errOut, "oncall.who") {
		t.Errorf("without --actions: exit %d\n%s", code, errOut)
	}
}

func TestClassifyAndEvalLoadActions(t *testing.T) {
	dir := writeFiles(t, map[string]string{"bad/scale.yaml": badAction})
	inv := "../../evals/routing-extra/user-actions.yaml"
	for _, args := range [][]string{
		{"classify", "--inventory", inv, "--jsonl", "--actions", filepath.Join(dir, "bad")},
		{"eval", "routing", "--dataset", inv, "--out", t.TempDir(), "--actions", filepath.Join(dir, "bad")},
	} {
		code, _, errOut := runMain(t, nil, args...)
		if code != 1 || !strings.Contains(errOut, "scale.yaml:1: name: kubernetes.scale is a built-in action") {
			t.Errorf("%s: exit %d\n%s", args[0], code, errOut)
		}
	}
	code, out, errOut := runMain(t, nil, "classify", "--inventory", inv, "--jsonl", "--actions", exampleActions)
	if code != 0 || errOut != "" {
		t.Errorf("classify with the examples: exit %d\n%s%s", code, out, errOut)
	}
}

// TestUserActionsInTheInstance: the actions of actions_dir are in the
// registry beside the built-ins, help lists those the user may run, and a
// missing secret stops the instance from starting.
func TestUserActionsInTheInstance(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.yaml": userPolicy})
	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "p.db")
	cfg.Policy = filepath.Join(dir, "policy.yaml")
	cfg.ActionsDir = exampleActions
	out := &recorder{}
	p, err := Build(context.Background(), Options{Config: cfg, Getenv: func(k string) string {
		return map[string]string{"CDN_TOKEN": cdnToken}[k]
	}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, name := range []string{"cdn.purge", "emails.drain", "oncall.who", "kubernetes.scale"} {
		if _, ok := p.Actions.Get(name); !ok {
			t.Errorf("registry lacks %s", name)
		}
	}
	h := &harness{t: t, p: p, out: out, clock: &clock{t: time.Now()}}
	helpRows := func(user string) string {
		h.say(user, "ops", "help")
		out.mu.Lock()
		defer out.mu.Unlock()
		for i := len(out.replies) - 1; i >= 0; i-- {
			if tb := out.replies[i].Table; tb != nil {
				return fmt.Sprint(tb.Rows)
			}
		}
		return ""
	}
	if rows := helpRows("eve"); !strings.Contains(rows, "oncall.who Show who is on call for a service right now, and their backup. who is on call for payments") || strings.Contains(rows, "cdn.purge") {
		t.Errorf("help for eve should list oncall.who and not cdn.purge:\n%s", rows)
	}
	if rows := helpRows("alice"); !strings.Contains(rows, "cdn.purge") {
		t.Errorf("help for alice lacks cdn.purge:\n%s", rows)
	}
	// Missing the secret: the instance does not start.
	cfg2 := *cfg
	cfg2.Database = filepath.Join(t.TempDir(), "q.db")
	if _, err := Build(context.Background(), Options{Config: &cfg2, Getenv: func(string) string { return "" }}, &recorder{}); err == nil ||
		!strings.Contains(err.Error(), "environment variable CDN_TOKEN is empty or unset") {
		t.Errorf("built without the CDN token: %v", err)
	}
}

// TestUserActionsThroughThePipeline drives the real pipeline with "run"
// button clicks (a suggested action: the same validation, policy,
// confirmation and audit as a typed request, without a router): a value
// outside the enum is refused before the policy with what is allowed; a
// read action runs against a local HTTP server (httptest on 127.0.0.1)
// and replies through its template; a mutating one asks for a second
// person and is sent once.
func TestUserActionsThroughThePipeline(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/api/v2/purge/") {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"id": "p-9"}`)
			return
		}
		io.WriteString(w, `{"primary": {"name": "Ada", "contact": "@ada", "until": "18:00"}, "secondary": {"name": "Lin"}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	for _, name := range []string{"cdn-purge.yaml", "oncall-who.yaml"} {
		b, err := os.ReadFile(filepath.Join(exampleActions, name))
		if err != nil {
			t.Fatal(err)
		}
		src := strings.NewReplacer("https://cdn.internal.example.com", srv.URL, "https://oncall.internal.example.com", srv.URL).Replace(string(b))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	polDir := writeFiles(t, map[string]string{"policy.yaml": userPolicy})
	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "p.db")
	cfg.Policy = filepath.Join(polDir, "policy.yaml")
	cfg.ActionsDir = dir
	out := &recorder{}
	p, err := Build(context.Background(), Options{Config: cfg, Getenv: func(k string) string {
		return map[string]string{"CDN_TOKEN": cdnToken}[k]
	}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	h := &harness{t: t, p: p, out: out, clock: &clock{t: time.Now()}}
	click := func(user, name string, params map[string]any) string {
		h.seq++
		p.Pipeline.Handle(context.Background(), chat.Message{
			Platform: chat.Console, Channel: "ops", Thread: "ops", User: user, EventID: fmt.Sprintf("c-%d", h.seq), Time: time.Now(),
			Action: &chat.ButtonClick{Action: "run", Value: encodeSuggestion(t, pipeline.Suggestion{Action: name, Params: params})},
		})
		got, n := out.since(h.n)
		h.n = n
		return got
	}
	sent := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }

	got := click("alice", "cdn.purge", map[string]any{"site": "intranet"})
	mustContain(t, got, "site must be one of shop, blog, docs", "Nothing was run")
	if n := len(h.events(audit.PolicyDecided)); n != 0 {
		t.Errorf("an invalid value reached the policy (%d decisions)", n)
	}

	got = click("eve", "oncall.who", map[string]any{"service": "payments"})
	mustContain(t, got, "On call for payments: Ada (@ada) until 18:00; backup Lin.")
	if s := sent(); len(s) != 1 || s[0] != "GET /api/v1/services/payments/oncall?at=now" {
		t.Errorf("requests = %v", s)
	}

	got = click("eve", "cdn.purge", map[string]any{"site": "shop"})
	mustContain(t, got, "may not run cdn.purge")
	got = click("alice", "cdn.purge", map[string]any{"site": "docs", "path": "/assets"})
	mustContain(t, got, "This will send POST "+srv.URL+`/api/v2/purge/docs, Authorization: Bearer <secret>, body {"site":"docs","path":"/assets","requested_by":"parley"}.`,
		"A member of sre other than you must reply")
	code := mustCode(t, got)
	mustContain(t, h.say("alice", "ops", "confirm "+code), "cannot confirm")
	mustContain(t, h.say("bob", "ops", "confirm "+code), "Purged the docs cache under /assets (purge id p-9).")
	mustContain(t, h.say("bob", "ops", "confirm "+code), "runs at most once")
	if s := sent(); len(s) != 2 || s[1] != "POST /api/v2/purge/docs" {
		t.Errorf("requests = %v; want the lookup and exactly one purge", s)
	}
	for _, e := range h.events(audit.ActionSucceeded) {
		if strings.Contains(fmt.Sprint(e), cdnToken) {
			t.Fatal("the token is in the audit log")
		}
	}
}
