package evals

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/anthropic"
	"github.com/tmc/langchaingo/llms/openai"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/redact"
)

// Providers.
const (
	OpenAI    = "openai"
	Azure     = "azure"
	Anthropic = "anthropic"
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

// Completer makes model calls. The runner wraps one with rate limits and
// retries; *LLM is the real one.
type Completer interface {
	Complete(ctx context.Context, c Completion) (Answer, error)
}

// Endpoint is where a provider is reached.
type Endpoint struct {
	BaseURL    string // including /v1; Azure: the resource endpoint
	APIKey     string // never logged, never in an error
	APIVersion string // Azure only
	// LegacyMaxTokens sends max_tokens instead of max_completion_tokens,
	// for OpenAI-compatible servers that only know the old field.
	LegacyMaxTokens bool
}

// APIError is a provider's refusal of one attempt: the status and a
// scrubbed message. It unwraps to an action error kind.
type APIError struct {
	Provider   string
	Status     int
	Message    string
	RetryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Provider, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap maps the status to an action error kind.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return action.ErrForbidden
	case e.Retryable():
		return action.ErrUnavailable
	}
	return action.ErrInvalid
}

// Retryable is true for 429, 5xx and Anthropic's 529.
func (e *APIError) Retryable() bool { return e.Status == http.StatusTooManyRequests || e.Status >= 500 }

// LLM calls OpenAI, Azure OpenAI and Anthropic through langchaingo. It
// makes exactly one HTTP attempt per Complete (the runner retries).
type LLM struct {
	endpoints map[string]Endpoint
	client    *http.Client
	timeout   time.Duration
}

// NewLLM returns a model client for the given endpoints, keyed by
// provider. timeout bounds one call (default 60s).
func NewLLM(endpoints map[string]Endpoint, client *http.Client, timeout time.Duration) (*LLM, error) {
	for p, e := range endpoints {
		switch p {
		case OpenAI, Azure, Anthropic:
		default:
			return nil, fmt.Errorf("evals: unknown provider %q", p)
		}
		if !strings.HasPrefix(e.BaseURL, "http://") && !strings.HasPrefix(e.BaseURL, "https://") {
			return nil, fmt.Errorf("evals: %s base URL must start with http:// or https://", p)
		}
		if e.APIKey == "" && p != OpenAI { // an OpenAI-compatible server may take none (configuration checks where)
			return nil, fmt.Errorf("evals: no API key for %s", p)
		}
	}
	if client == nil {
		client = &http.Client{}
	}
	return &LLM{endpoints: endpoints, client: client, timeout: cmp.Or(timeout, 60*time.Second)}, nil
}

// Complete makes one call.
func (l *LLM) Complete(ctx context.Context, c Completion) (Answer, error) {
	ep, ok := l.endpoints[c.Provider]
	if !ok {
		return Answer{}, fmt.Errorf("%w: no endpoint for provider %q (configure router.llm or the evals endpoints)", action.ErrNotConfigured, c.Provider)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	scrub := func(s string) string { return redact.Redact(strings.ReplaceAll(s, ep.APIKey, "<secret>")) }
	ex := &oneShot{client: l.client, provider: c.Provider, scrub: scrub, keyless: ep.APIKey == ""}
	token := ep.APIKey
	if token == "" {
		token = "keyless" // langchaingo refuses an empty one; the header is dropped
	}
	var m llms.Model
	var err error
	switch c.Provider {
	case OpenAI, Azure:
		opts := []openai.Option{openai.WithToken(token), openai.WithModel(c.Model), openai.WithBaseURL(strings.TrimRight(ep.BaseURL, "/")), openai.WithHTTPClient(ex)}
		if c.Provider == Azure {
			opts = append(opts, openai.WithAPIType(openai.APITypeAzure), openai.WithAPIVersion(cmp.Or(ep.APIVersion, "2024-10-21")))
		}
		m, err = openai.New(opts...)
	case Anthropic:
		m, err = anthropic.New(anthropic.WithToken(ep.APIKey), anthropic.WithModel(c.Model), anthropic.WithBaseURL(strings.TrimRight(ep.BaseURL, "/")), anthropic.WithHTTPClient(ex))
	}
	if err != nil {
		return Answer{}, fmt.Errorf("%s client: %s", c.Provider, scrub(err.Error()))
	}
	opts := []llms.CallOption{llms.WithTemperature(c.Temperature), llms.WithMaxTokens(c.MaxTokens)}
	if ep.LegacyMaxTokens {
		opts = append(opts, openai.WithLegacyMaxTokensField())
	}
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, c.User)}
	if c.System != "" {
		msgs = append([]llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, c.System)}, msgs...)
	}
	start := time.Now()
	resp, err := m.GenerateContent(ctx, msgs, opts...)
	a := Answer{Latency: time.Since(start)}
	switch {
	case ex.apiErr != nil:
		return a, ex.apiErr
	case err != nil && ctx.Err() != nil:
		return a, fmt.Errorf("%s: %w: %w", c.Provider, action.ErrUnavailable, ctx.Err())
	case ex.netErr != nil:
		return a, fmt.Errorf("%s: %s: %w", c.Provider, scrub(ex.netErr.Error()), action.ErrUnavailable)
	case err != nil:
		return a, fmt.Errorf("%s: unreadable response: %s: %w", c.Provider, scrub(err.Error()), action.ErrUnavailable)
	case len(resp.Choices) == 0:
		return a, fmt.Errorf("%s: no answer: %w", c.Provider, action.ErrUnavailable)
	}
	a.Text = resp.Choices[0].Content
	a.PromptTokens, a.CompletionTokens = llm.Tokens(resp)
	return a, nil
}

// oneShot is langchaingo's HTTP client for one call: a single attempt,
// remembering an error status so that Parley words it (langchaingo's own
// errors repeat the provider's text verbatim).
type oneShot struct {
	client   *http.Client
	provider string
	scrub    func(string) string
	apiErr   *APIError
	netErr   error
	keyless  bool
}

func (o *oneShot) Do(req *http.Request) (*http.Response, error) {
	if o.keyless {
		req.Header.Del("Authorization")
	}
	resp, err := o.client.Do(req)
	if err != nil {
		o.netErr = err
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	e := &APIError{Provider: o.provider, Status: resp.StatusCode, Message: clip(o.scrub(body.Error.Message), 300)}
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if n, err := strconv.ParseFloat(ra, 64); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n * float64(time.Second))
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(0, time.Until(t))
		}
	}
	o.apiErr = e
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

// retryableErr reports whether a failed call is worth another attempt,
// and how long the provider asked to wait.
func retryableErr(err error) (bool, time.Duration) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable(), ae.RetryAfter
	}
	// network errors and timeouts of one attempt
	return errors.Is(err, action.ErrUnavailable) && !errors.Is(err, context.Canceled), 0
}
