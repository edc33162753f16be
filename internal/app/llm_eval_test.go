package app

// The routing datasets scored through the LLM and hybrid routers, end to
// end: `parley eval routing --router llm|hybrid --config FILE` runs
// in-process against a local OpenAI-compatible server on 127.0.0.1
// (internal/testenv/llmtest: chat.completion payloads shaped as OpenAI
// documents them, langchaingo's real client on the other end). The model
// is scripted: it knows each case's expected answer and gives it when, and
// only when, the tool for it was offered; otherwise it calls none (when
// offered) or answers in words. So the accuracy measures what the router
// offers and how it reads the answer, not a model, and the prompt tokens
// (bytes/4 of each request body, as the fake reports them) measure what
// Parley sends.
//
// Run: go test ./internal/app -run TestLLMRoutingOnDatasets -v

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/evals"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// scriptedModel answers each request of a routing dataset with its
// expected action, if that tool was offered.
func scriptedModel(t *testing.T, ds *evals.RoutingDataset) llmtest.Handler {
	byText := map[string]evals.RoutingCase{}
	for _, c := range ds.Cases {
		byText[c.Text] = c
	}
	return func(r llmtest.Request) llmtest.Response {
		var body struct {
			Tools []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("scripted model: %v", err)
			return llmtest.OpenAIText(r, "?")
		}
		offered := map[string]bool{}
		for _, tl := range body.Tools {
			offered[tl.Function.Name] = true
		}
		req := userRequest(r)
		c, ok := byText[req]
		if !ok {
			t.Logf("scripted model: unknown request %q", req)
		}
		for _, a := range c.Actions {
			tool := strings.ReplaceAll(a, ".", "_")
			if a == "none" || !offered[tool] {
				continue
			}
			args := map[string]any{}
			for k, vs := range c.Params {
				args[k] = vs[0]
			}
			b, _ := json.Marshal(args)
			return llmtest.OpenAIToolCall(r, tool, string(b))
		}
		if offered["none"] {
			return llmtest.OpenAIToolCall(r, "none", `{}`)
		}
		return llmtest.OpenAIText(r, "That is not something I can do here.")
	}
}

// userRequest is the request text Parley sent the model: the "request"
// of the JSON user message.
func userRequest(r llmtest.Request) string {
	var body struct {
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
	}
	var user struct {
		Request string `json:"request"`
	}
	if json.Unmarshal(r.Body, &body) == nil {
		for _, m := range body.Messages {
			if m.Role == "user" {
				_ = json.Unmarshal([]byte(contentOf(m.Content)), &user)
			}
		}
	}
	return user.Request
}

func contentOf(c any) string {
	switch v := c.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, p := range v {
			if pm, ok := p.(map[string]any); ok {
				if s, ok := pm["text"].(string); ok {
					b.WriteString(s)
				}
			}
		}
		return b.String()
	}
	return ""
}

// routingRun is what one `parley eval routing` run printed.
type routingRun struct {
	accuracy, share, promptPerCall float64
	calls, cases                   int
	out                            string
}

var (
	overallRE = regexp.MustCompile(`Overall: (\d+)/(\d+) fully right`)
	callsRE   = regexp.MustCompile(`Model calls: (\d+) of (\d+) cases \(([\d.]+)%\)`)
	perCallRE = regexp.MustCompile(`Prompt tokens per call: (\d+) mean`)
)

func evalRouting(t *testing.T, mode, dataset, actions string) routingRun {
	t.Helper()
	cat, err := Catalog(&config.Config{ActionsDir: actions})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := evals.LoadRoutingDataset(dataset, cat)
	if err != nil {
		t.Fatal(err)
	}
	srv := llmtest.NewOpenAI(t, scriptedModel(t, ds))
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "parley.yaml")
	src := fmt.Sprintf("router:\n  mode: %s\n  llm: {provider: openai, base_url: %q, model: gpt-test, api_key: {env: KEY}, timeout: 10s, max_retries: 0, cache_ttl: 1ns}\n", mode, srv.BaseURL())
	if err := os.WriteFile(cfgFile, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "routing", "--dataset", dataset, "--router", mode, "--config", cfgFile, "--out", dir, "--min-accuracy", "0"}
	if actions != "" {
		args = append(args, "--actions", actions)
	}
	var stdout, stderr bytes.Buffer
	env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		if k == "KEY" {
			return "sk-test-" + "eval"
		}
		return ""
	}}
	if code := Main(context.Background(), args, env); code != 0 {
		t.Fatalf("eval routing exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	var run routingRun
	run.out = out
	m := overallRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall line:\n%s", out)
	}
	right, _ := strconv.Atoi(m[1])
	run.cases, _ = strconv.Atoi(m[2])
	run.accuracy = float64(right) / float64(run.cases)
	if m := callsRE.FindStringSubmatch(out); m != nil {
		run.calls, _ = strconv.Atoi(m[1])
		run.share, _ = strconv.ParseFloat(m[3], 64)
	}
	if m := perCallRE.FindStringSubmatch(out); m != nil {
		run.promptPerCall, _ = strconv.ParseFloat(m[1], 64)
	}
	if n := srv.Count(); n != run.calls {
		t.Errorf("%d requests reached the model, the report counts %d calls", n, run.calls)
	}
	return run
}

// TestLLMRoutingOnDatasets holds the model routers to the routing gates
// with a model that always knows the answer: offering only the tools
// plausible for a request must not hide the right one (accuracy at least
// the gate's, nothing unsafe); the mean prompt stays at most
// maxPromptPerCall tokens; and in hybrid mode at most maxHybridShare of
// evals/routing.yaml reaches the model.
func TestLLMRoutingOnDatasets(t *testing.T) {
	if testing.Short() {
		t.Skip("routes every case of the datasets over HTTP")
	}
	const (
		maxPromptPerCall = 700
		maxHybridShare   = 8.0  // percent of the cases
		minAccuracy      = 0.95 // the routing gate (scripts/test.sh)
	)
	type run struct {
		mode, dataset, actions string
	}
	runs := []run{
		{"llm", "../../evals/routing.yaml", ""},
		{"hybrid", "../../evals/routing.yaml", ""},
		{"llm", "../../evals/routing.yaml", "../../examples/actions"},
		{"hybrid", "../../evals/routing.yaml", "../../examples/actions"},
		{"llm", "../../evals/routing-extra/user-actions.yaml", "../../examples/actions"},
		{"hybrid", "../../evals/routing-extra/user-actions.yaml", "../../examples/actions"},
	}
	for _, f := range []string{"catalog-inventory", "gateway-inventory", "orders-inventory", "shop-inventory"} {
		runs = append(runs, run{"llm", "../../evals/routing-extra/" + f + ".yaml", ""})
	}
	for _, r := range runs {
		name := fmt.Sprintf("%s/%s/actions=%t", r.mode, filepath.Base(r.dataset), r.actions != "")
		t.Run(name, func(t *testing.T) {
			got := evalRouting(t, r.mode, r.dataset, r.actions)
			t.Logf("%s: accuracy %.1f%%, model calls %d of %d (%.1f%%), %.0f prompt tokens per call",
				name, 100*got.accuracy, got.calls, got.cases, got.share, got.promptPerCall)
			if got.accuracy < minAccuracy || strings.Contains(got.out, "UNSAFE") {
				t.Errorf("below the routing gate:\n%s", got.out)
			}
			if got.promptPerCall > maxPromptPerCall {
				t.Errorf("%.0f prompt tokens per call, want at most %d", got.promptPerCall, maxPromptPerCall)
			}
			if r.mode == "hybrid" && filepath.Base(r.dataset) == "routing.yaml" && got.share > maxHybridShare {
				t.Errorf("%.1f%% of the cases reached the model, want at most %.0f%%", got.share, maxHybridShare)
			}
		})
	}
}
