package app

// The local-model configurations of docs/llm.md, each run against a local
// fake of that server on 127.0.0.1 (internal/testenv/llmtest.NewLocal:
// Ollama's, llama.cpp server's and vLLM's dialects of the OpenAI Chat
// Completions API, payloads shaped as their documentation and source
// show). config validate accepts each, serve's wiring starts on it, and a
// request the offline router is unsure of is read by the model.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// docConfig is the first yaml block under the "### heading" of
// docs/llm.md.
func docConfig(t *testing.T, heading string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/llm.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n### "+heading+"\n")
	if !ok {
		t.Fatalf("docs/llm.md has no section %q", heading)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("docs/llm.md, %s: no yaml block", heading)
	}
	return m[1]
}

var docBaseURL = regexp.MustCompile(`http://localhost:\d+/v1`)

func TestLocalModelConfigsInDocs(t *testing.T) {
	const llamaKey = "llama-local-" + "key-value"
	cases := []struct {
		heading   string
		dialect   llmtest.Dialect
		serverKey string // what the server demands; "" = none
		maxField  string
	}{
		{"Ollama", llmtest.Ollama, "", "max_tokens"},
		{"llama.cpp server", llmtest.LlamaCpp, llamaKey, "max_tokens"},
		{"vLLM", llmtest.VLLM, "", "max_completion_tokens"},
	}
	for _, c := range cases {
		t.Run(string(c.dialect), func(t *testing.T) {
			srv := llmtest.NewLocal(t, c.dialect, c.serverKey, func(r llmtest.Request) llmtest.Response {
				return llmtest.LocalToolCall(c.dialect, r, "kubernetes_status", `{"deployment":"checkout","namespace":"prod"}`)
			})
			src := docBaseURL.ReplaceAllString(docConfig(t, c.heading), srv.BaseURL())
			src = "database: " + filepath.Join(t.TempDir(), "p.db") + "\n" + src
			file := filepath.Join(t.TempDir(), "parley.yaml")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == "LLAMA_API_KEY" {
					return llamaKey
				}
				return ""
			}
			var out, errb bytes.Buffer
			if code := Main(context.Background(), []string{"config", "validate", "--config", file}, Env{Stdout: &out, Stderr: &errb, Getenv: getenv}); code != 0 {
				t.Fatalf("config validate: exit %d\n%s%s", code, out.String(), errb.String())
			}
			cfg, err := config.Parse([]byte(src), file, getenv)
			if err != nil {
				t.Fatal(err)
			}
			clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
			rec := &recorder{}
			p, err := Build(context.Background(), Options{Config: cfg, Now: clk.Now}, rec)
			if err != nil {
				t.Fatalf("serve's wiring refused the documented config: %v", err)
			}
			t.Cleanup(func() { p.Close(context.Background()) })
			h := &harness{t: t, p: p, out: rec, clock: clk}

			got := h.say("alice", "ops", "show me the checkout deployment in prod")
			mustContain(t, got, "checkout (prod): 3/3 ready")
			if srv.Count() != 1 {
				t.Fatalf("%d requests reached the model, want 1", srv.Count())
			}
			req := srv.Last(t)
			if auth := req.Header.Get("Authorization"); c.serverKey == "" && auth != "" || c.serverKey != "" && auth != "Bearer "+c.serverKey {
				t.Errorf("Authorization header %q sent (server key %q)", auth, c.serverKey)
			}
			if f := req.MaxTokensField(); f != c.maxField {
				t.Errorf("completion limit sent as %q, want %q", f, c.maxField)
			}
			if d := lastRouted(h).Details; d["llm_proposal"] != "accepted" || d["llm_proposed"] != "kubernetes_status" {
				t.Errorf("audit details %v", d)
			}
			if strings.Contains(strings.Join(h.eventsText(), "\n"), llamaKey) {
				t.Error("the server key is in the audit log")
			}
		})
	}
}

func (h *harness) eventsText() []string {
	var out []string
	for _, typ := range []audit.Type{audit.IntentRouted, audit.ActionSucceeded} {
		for _, e := range h.events(typ) {
			out = append(out, e.Details["note"]+" "+e.Error+" "+e.Outcome)
		}
	}
	return out
}

// TestEvaluationsUseTheModelClient: an evaluation suite's model calls go
// through the same client as routing's (llm.Client): against a keyless
// Ollama fake on 127.0.0.1 with max_tokens_field: max_tokens, every call
// goes without an Authorization header and with max_tokens, and gets
// answers.
func TestEvaluationsUseTheModelClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an evaluation suite at its rate limit (about 10s)")
	}
	srv := llmtest.NewLocal(t, llmtest.Ollama, "", func(r llmtest.Request) llmtest.Response {
		return llmtest.LocalText(llmtest.Ollama, r, "Score: 4. checkout was rolled out; errors rose after it.")
	})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "parley.yaml")
	src := "router:\n  mode: hybrid\n  llm: {provider: openai, base_url: " + srv.BaseURL() + ", model: llama3.1:8b, max_tokens_field: max_tokens, timeout: 10s}\n"
	if err := os.WriteFile(cfgFile, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runEvalCLI(t, "run", "summarizer-golden", "--evals", copyEvals(t), "--db", filepath.Join(dir, "p.db"),
		"--out", filepath.Join(dir, "reports"), "--config", cfgFile)
	if code == 2 || strings.Contains(out+errOut, "every answer failed") || strings.Contains(out+errOut, "not configured") {
		t.Fatalf("eval run: exit %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("no evaluation call reached the model")
	}
	for _, r := range reqs {
		if h := r.Header.Get("Authorization"); h != "" || r.MaxTokensField() != "max_tokens" {
			t.Fatalf("request %d: Authorization %q, limit field %q", r.N, h, r.MaxTokensField())
		}
	}
}
