package hybrid_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/hybrid"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/telemetry"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// stub is a scripted router that counts its calls and keeps the last query.
type stub struct {
	in    intent.Intent
	err   error
	calls int
	last  intent.Query
}

func (s *stub) Route(_ context.Context, q intent.Query) (intent.Intent, error) {
	s.calls++
	s.last = q
	return s.in, s.err
}

func TestHybridDecisions(t *testing.T) {
	scale := intent.Intent{Action: action.KubernetesScale, Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}, Confidence: 0.92, Source: "rules"}
	unsure := intent.Intent{Action: action.None, Params: action.Params{}, Confidence: 0.6, Source: "rules", Note: "no action fits"}
	weak := intent.Intent{Action: action.KubernetesScale, Params: action.Params{"deployment": "checkout"}, Confidence: 0.5, Source: "rules"}
	chitchat := intent.Intent{Action: action.None, Params: action.Params{}, Confidence: 0.6, Source: "rules", Note: "a greeting", OutOfScope: true}
	fromLLM := intent.Intent{Action: action.KubernetesStatus, Params: action.Params{"deployment": "checkout", "namespace": "staging"}, Confidence: 0.8, Source: "llm", Variant: "v1"}
	cases := []struct {
		name       string
		rules      intent.Intent
		llmErr     error
		wantAction string
		wantSource string
		wantLLM    int
		wantNote   string
		wantNotice string // said to the asker beside the answer
	}{
		{"confident rules answer", scale, nil, action.KubernetesScale, hybrid.SourceRules, 0, "", ""},
		{"unsure rules ask the model", unsure, nil, action.KubernetesStatus, hybrid.SourceLLM, 1, "", ""},
		{"chit-chat is not sent to the model", chitchat, nil, action.None, hybrid.SourceRules, 0, "a greeting", ""},
		{"model down, weak rules reading stands", weak, errors.New("openai: HTTP 503"), action.KubernetesScale, hybrid.SourceFallback, 1,
			"the language model is unavailable; using the rules router", "Note: the language model is unavailable, so this was read without it, by the offline rules (as kubernetes.scale)"},
		{"model down, rules found nothing: clarify", unsure, errors.New("openai: HTTP 503"), action.None, hybrid.SourceFallback, 1, "please say it plainly", ""},
		{"model too slow", unsure, context.DeadlineExceeded, action.None, hybrid.SourceFallback, 1, "did not answer in time", ""},
		{"channel budget", weak, &llmcost.BudgetError{Scope: llmcost.ScopeChannel, Key: "slack:C1"}, action.KubernetesScale, hybrid.SourceFallback, 1,
			"this channel's language model budget for today is used up; using the rules router", "this channel's language model budget for today is used up, so this was read without it"},
		{"user budget", weak, &llmcost.BudgetError{Scope: llmcost.ScopeUser, Key: "slack:U1"}, action.KubernetesScale, hybrid.SourceFallback, 1,
			"your language model budget for today is used up", "Note: your language model budget for today is used up, so this was read without it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr, mr := &stub{in: c.rules}, &stub{in: fromLLM, err: c.llmErr}
			h, err := hybrid.New(rr, mr, hybrid.Options{})
			if err != nil {
				t.Fatal(err)
			}
			q := intent.Query{Text: "x", History: []intent.Turn{{Text: "status of checkout in prod"}}}
			in, err := h.Route(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if in.Action != c.wantAction || in.Source != c.wantSource || mr.calls != c.wantLLM {
				t.Errorf("got %s from %s after %d model calls; want %s from %s after %d", in.Action, in.Source, mr.calls, c.wantAction, c.wantSource, c.wantLLM)
			}
			if !strings.Contains(in.Note, c.wantNote) {
				t.Errorf("note %q lacks %q", in.Note, c.wantNote)
			}
			if c.wantNotice == "" && in.Notice != "" || !strings.Contains(in.Notice, c.wantNotice) {
				t.Errorf("notice %q, want %q", in.Notice, c.wantNotice)
			}
			if mr.calls > 0 && len(mr.last.History) != 1 {
				t.Error("history not passed to the model router")
			}
		})
	}
}

func TestHybridCallerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mr := &stub{err: context.Canceled}
	h, _ := hybrid.New(&stub{in: intent.Intent{Action: action.None, Confidence: 0.1}}, mr, hybrid.Options{})
	cancel()
	if _, err := h.Route(ctx, intent.Query{Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the caller's cancellation", err)
	}
}

func TestHybridOptions(t *testing.T) {
	if _, err := hybrid.New(nil, &stub{}, hybrid.Options{}); err == nil {
		t.Error("nil rules router accepted")
	}
	if _, err := hybrid.New(&stub{}, &stub{}, hybrid.Options{Threshold: 1.5}); err == nil {
		t.Error("threshold 1.5 accepted")
	}
	// a threshold of 1 sends everything but certainties to the model
	mr := &stub{in: intent.Intent{Action: action.Help}}
	h, _ := hybrid.New(&stub{in: intent.Intent{Action: action.Help, Confidence: 0.99}}, mr, hybrid.Options{Threshold: 1})
	if in, _ := h.Route(context.Background(), intent.Query{}); mr.calls != 1 || in.Source != hybrid.SourceLLM {
		t.Errorf("threshold 1: %d model calls, source %s", mr.calls, in.Source)
	}
}

// The real rules router with the real LLM router against a local fake
// OpenAI server (127.0.0.1) that never answers: the follow-up the rules
// cannot read falls back with a clarifying note, and a confident rules
// reading never reaches the model.
func TestHybridWithRealRouters(t *testing.T) {
	srv := llmtest.NewOpenAI(t, func(r llmtest.Request) llmtest.Response { return llmtest.Hang() })
	m := telemetry.New(telemetry.Options{})
	lr, err := llm.New(llm.Options{Provider: llm.OpenAI, BaseURL: srv.BaseURL(), Model: "m", APIKey: "k", Timeout: 200 * time.Millisecond, MaxRetries: -1, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hybrid.New(rules.New(builtin.Specs()), lr, hybrid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := intent.Inventory{Namespaces: []string{"prod", "staging"}, Deployments: map[string][]string{"prod": {"checkout"}, "staging": {"checkout"}}}
	q := intent.Query{Text: "scale checkout to 5 in prod", Catalog: builtin.Specs(), Inventory: inv}
	in, err := h.Route(context.Background(), q)
	if err != nil || in.Source != hybrid.SourceRules || in.Action != action.KubernetesScale || srv.Count() != 0 {
		t.Fatalf("confident: %s from %s, err %v, %d model requests", in.Action, in.Source, err, srv.Count())
	}
	// thanks and chit-chat: the rules router is sure, the model is not asked
	for _, text := range []string{"thanks parley!", "tell me a joke", "asdfghjkl"} {
		q.Text = text
		in, err = h.Route(context.Background(), q)
		if err != nil || in.Source != hybrid.SourceRules || in.Action != action.None || !in.OutOfScope || srv.Count() != 0 {
			t.Fatalf("%q: %s from %s (out of scope %v), err %v, %d model requests", text, in.Action, in.Source, in.OutOfScope, err, srv.Count())
		}
	}
	q.Text = "and in staging?"
	in, err = h.Route(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if in.Source != hybrid.SourceFallback || in.Action != action.None || !strings.Contains(in.Note, "did not answer in time") || srv.Count() != 1 {
		t.Errorf("timeout: %s from %s %q, %d requests", in.Action, in.Source, in.Note, srv.Count())
	}
}
