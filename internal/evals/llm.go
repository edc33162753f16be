package evals

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent/llm"
)

// Providers.
const (
	OpenAI    = llm.OpenAI
	Azure     = llm.Azure
	Anthropic = llm.Anthropic
)

// Completion is one model call: a system prompt and one user message.
type Completion struct {
	Provider    string
	Model       string
	System      string
	User        string // data: the case input, never instructions
	Temperature float64
	MaxTokens   int
}

// Answer is a model's reply and what it cost in tokens.
type Answer struct {
	Text             string
	PromptTokens     int
	CompletionTokens int
	Latency          time.Duration
}

// Completer makes model calls. The runner wraps one with rate limits;
// *LLM is the real one.
type Completer interface {
	Complete(ctx context.Context, c Completion) (Answer, error)
}

// LLM makes the evaluations' model calls through Parley's one model client
// (llm.Client), one per configured provider: the same retries, timeout
// and plain errors as the router and the incident summariser.
type LLM struct {
	clients map[string]*llm.Client
}

// NewLLM returns a Completer over the given clients, keyed by provider.
func NewLLM(clients map[string]*llm.Client) (*LLM, error) {
	for p, c := range clients {
		switch p {
		case OpenAI, Azure, Anthropic:
		default:
			return nil, fmt.Errorf("evals: unknown provider %q", p)
		}
		if c == nil {
			return nil, fmt.Errorf("evals: no client for %s", p)
		}
	}
	return &LLM{clients: clients}, nil
}

// Complete makes one call (the client retries what is worth retrying).
func (l *LLM) Complete(ctx context.Context, c Completion) (Answer, error) {
	cl, ok := l.clients[c.Provider]
	if !ok {
		return Answer{}, fmt.Errorf("%w: no endpoint for provider %q (configure router.llm)", action.ErrNotConfigured, c.Provider)
	}
	text, u, err := cl.Complete(ctx, llm.Completion{Model: c.Model, System: c.System, User: c.User, Temperature: c.Temperature, MaxTokens: c.MaxTokens})
	a := Answer{Text: text, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Latency: u.Latency}
	return a, err
}
