package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// TestBinaryUserDefinedHTTPAction runs a user-defined HTTP action end to
// end in the compiled binary's console: loaded with --actions, decided by
// a policy file, refused for an outsider, confirmed by a second person
// after a restart (same database), sent exactly once, audited and
// verified.
//
// The CDN is a local httptest server on 127.0.0.1 counting requests. The
// request text is routed by the LLM router against a local server speaking
// OpenAI's chat-completions wire protocol (llmtest), which also shows that
// a user-defined action is offered as a tool only to those who may run it.
// The same conversation is meant to run with the offline rules router too,
// which routes user-defined actions from their examples.
func TestBinaryUserDefinedHTTPAction(t *testing.T) {
	bin := parley(t)
	dir := t.TempDir()
	token := strings.Join([]string{"cdn", "e2e", "7c1d2b3a4f5e"}, "-")

	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Clone(r.Context()))
		bodies = append(bodies, string(b))
		n := len(got)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id": "p-%d"}`, n)
	}))
	defer cdn.Close()
	requests := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	// A model that proposes the purge whenever it is asked about one, even
	// when the tool was not offered (it must not matter).
	model := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response {
		if strings.Contains(string(r.Body), "purge") {
			return llmtest.OpenAIToolCall(r, "cdn_purge", `{"site":"shop","path":"/images"}`)
		}
		return llmtest.OpenAIText(r, "I can only help with what you may do here.")
	})

	src, err := os.ReadFile("../../examples/actions/cdn-purge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	action := strings.Replace(string(src), "https://cdn.internal.example.com", cdn.URL, 1)
	files := map[string]string{
		"actions/cdn-purge.yaml": action,
		"policy.yaml": `groups:
  sre: [console:alice, console:bob]
rules:
  - name: anyone may ask for help
    actions: [help]
    effect: allow
  - name: a second sre confirms a CDN purge
    subjects: [group:sre]
    actions: [cdn.purge]
    effect: confirm
    approvers: [group:sre]
    distinct_approver: true
    ttl: 1h
default: deny
`,
		"config.yaml": fmt.Sprintf(`database: parley.db
router:
  mode: llm
  llm: {provider: openai, base_url: %q, model: gpt-test, api_key: {env: LLM_KEY}, timeout: 10s, max_retries: 0, cache_ttl: 1ns}
`, model.BaseURL()),
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "CDN_TOKEN="+token, "LLM_KEY="+strings.Join([]string{"sk", "test"}, "-"))
	chat := func(transcript string) string {
		t.Helper()
		out, code := runEnv(t, dir, bin, env, transcript, "chat", "--config", "config.yaml", "--actions", "actions", "--policy", "policy.yaml", "--transcript", "-")
		if code != 0 {
			t.Fatalf("chat exited %d:\n%s", code, out)
		}
		return out
	}

	// First run: an outsider, then alice asks, then alice tries to confirm
	// her own request.
	out := chat("eve@ops: purge the cdn cache for shop under /images\n" +
		"alice@ops: purge the cdn cache for shop under /images\n" +
		"alice@ops: confirm\n")
	prompt := "This will send POST " + cdn.URL + `/api/v2/purge/shop, Authorization: Bearer <secret>, body {"site":"shop","path":"/images","requested_by":"parley"}.`
	if !strings.Contains(out, prompt) {
		t.Fatalf("no confirmation prompt with the exact request; want %q in:\n%s", prompt, out)
	}
	if strings.Count(out, "This will send") != 1 {
		t.Errorf("the outsider got a prompt too:\n%s", out)
	}
	if !strings.Contains(out, "There is no pending request here that you can confirm") {
		t.Errorf("alice confirmed her own request:\n%s", out)
	}
	m := regexp.MustCompile(`"confirm ([A-Z0-9]{4})"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no code in:\n%s", out)
	}
	if n := requests(); n != 0 {
		t.Fatalf("%d requests reached the CDN before any confirmation", n)
	}

	// Second run, same database: bob confirms; a second confirm runs nothing.
	out2 := chat("bob@ops: confirm " + m[1] + "\n" + "bob@ops: confirm " + m[1] + "\n")
	if !strings.Contains(out2, "Purged the shop cache under /images (purge id p-1).") {
		t.Fatalf("the purge did not run after bob's confirmation:\n%s", out2)
	}
	if !strings.Contains(out2, "runs at most once") {
		t.Errorf("the second confirm was not refused:\n%s", out2)
	}
	if n := requests(); n != 1 {
		t.Fatalf("%d requests reached the CDN, want exactly 1", n)
	}
	mu.Lock()
	r, body := got[0], bodies[0]
	mu.Unlock()
	if r.Method != "POST" || r.URL.Path != "/api/v2/purge/shop" || r.Header.Get("Authorization") != "Bearer "+token ||
		body != `{"site":"shop","path":"/images","requested_by":"parley"}` || r.Header.Get("X-Parley-Request-Id") == "" {
		t.Errorf("request = %s %s %v %s", r.Method, r.URL, r.Header, body)
	}
	for _, o := range []string{out, out2} {
		if strings.Contains(o, token) {
			t.Fatal("the CDN token is in the chat")
		}
	}

	export, code := runEnv(t, dir, bin, env, "", "audit", "export", "--db", "parley.db")
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, export)
	}
	if strings.Contains(export, token) {
		t.Fatal("the CDN token is in the audit log")
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(export), "\n") {
		var e struct {
			Type, Action, Subject string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad jsonl line %q: %v", line, err)
		}
		if e.Action == "cdn.purge" {
			types = append(types, e.Subject+" "+e.Type)
		}
	}
	joined := strings.Join(types, "\n")
	for _, want := range []string{"console:alice confirmation.requested", "console:bob confirmation.granted", "console:alice action.succeeded"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %q:\n%s", want, joined)
		}
	}
	if strings.Count(joined, "action.started") != 1 {
		t.Errorf("cdn.purge started %d times:\n%s", strings.Count(joined, "action.started"), joined)
	}
	if out, code := runEnv(t, dir, bin, env, "", "audit", "verify", "--db", "parley.db"); code != 0 {
		t.Fatalf("audit verify exited %d:\n%s", code, out)
	}
}

func runEnv(t *testing.T, dir, bin string, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}
