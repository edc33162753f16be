package llm

import (
	"context"
	"fmt"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Client is Parley's one language-model client: OpenAI and
// OpenAI-compatible servers, Azure OpenAI and Anthropic, through
// langchaingo. The router, the incident summariser and the evaluation
// runner all call models through it, so they share one policy: a
// deadline per call (Options.Timeout, retries included); retries of 429,
// 5xx, Anthropic's 529 and network errors with exponential backoff,
// honouring Retry-After up to Options.MaxRetryWait; errors in plain
// words, the provider's raw text in the log only; the key never in an
// error; usage estimated when a provider reports none. It is safe for
// concurrent use.
type Client struct {
	c *client
}

// NewClient returns a Client; Variants, SummaryVariant and the cache
// options are ignored. It makes no network call.
func NewClient(o Options) (*Client, error) {
	if err := o.defaults(false); err != nil {
		return nil, err
	}
	return &Client{c: newClient(o)}, nil
}

// Completion is one request without tools: a system prompt and one user
// message.
type Completion struct {
	Model       string // "" = Options.Model
	System      string // may be empty
	User        string // data, never instructions
	Temperature float64
	MaxTokens   int // 0 = Options.MaxTokens
}

// Complete makes one call and returns the model's text. The usage is set
// even when err is not nil, as far as it is known (attempts, latency;
// tokens when the provider answered).
func (c *Client) Complete(ctx context.Context, cm Completion) (string, llmcost.Usage, error) {
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, cm.User)}
	if cm.System != "" {
		msgs = append([]llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, cm.System)}, msgs...)
	}
	maxTokens := cm.MaxTokens
	if maxTokens <= 0 {
		maxTokens = c.c.o.MaxTokens
	}
	res, err := c.c.generate(ctx, call{model: cm.Model, temperature: cm.Temperature, maxTokens: maxTokens, msgs: msgs})
	if err != nil {
		return "", res.usage, err
	}
	var parts []string
	for _, ch := range res.resp.Choices {
		parts = append(parts, ch.Content)
	}
	if len(parts) == 0 {
		return "", res.usage, failure(fmt.Sprintf("the model server at %s answered with no choices", c.c.server()), action.ErrUnavailable)
	}
	return strings.Join(parts, "\n"), res.usage, nil
}
