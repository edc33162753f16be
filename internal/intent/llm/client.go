package llm

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/anthropic"
	"github.com/tmc/langchaingo/llms/openai"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Providers.
const (
	OpenAI    = "openai"    // api.openai.com or any OpenAI-compatible endpoint (vLLM, LocalAI, Ollama's /v1)
	Azure     = "azure"     // Azure OpenAI (api-key header, deployments URL)
	Anthropic = "anthropic" // Anthropic Messages API
)

// Default base URLs.
const (
	DefaultOpenAIBaseURL    = "https://api.openai.com/v1"
	DefaultAnthropicBaseURL = "https://api.anthropic.com/v1"
	DefaultAzureAPIVersion  = "2024-10-21"
)

// APIError is a provider's refusal after retries, with everything but
// the credential: status, the provider's error type/code and a scrubbed
// message. It unwraps to an action error kind (ErrUnavailable for 429 and
// 5xx, ErrForbidden for 401/403, ErrInvalid for other 4xx).
type APIError struct {
	Provider string
	Server   string // host[:port] of the endpoint, for the message
	Status   int
	Type     string
	Code     string
	Message  string // redacted; never contains the API key
	Attempts int
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the model server at %s answered %d %s", cmpOr(e.Server, e.Provider), e.Status, http.StatusText(e.Status))
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if t := strings.TrimSpace(e.Type + " " + e.Code); t != "" {
		fmt.Fprintf(&b, " (%s)", t)
	}
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		b.WriteString(": it refused Parley's credentials")
		if e.Message != "" {
			b.WriteString(" (" + e.Message + ")")
		}
	case e.Message != "":
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the action error kind.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return action.ErrForbidden
	case retryable(e.Status):
		return action.ErrUnavailable
	default:
		return action.ErrInvalid
	}
}

// retryable statuses: rate limits, server errors, Anthropic's 529
// "overloaded".
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout, 529:
		return true
	}
	return false
}

// client makes one provider call at a time; a new langchaingo model is
// built per call around a per-call exchange, which retries and records
// what went over the wire (langchaingo's own errors carry the provider's
// message verbatim, so Parley words errors from the exchange instead).
type client struct {
	o     Options
	scrub func(string) string
	sleep func(ctx context.Context, d time.Duration) error
}

func newClient(o Options) *client {
	return &client{o: o, scrub: scrubber(o.APIKey, o.Redact), sleep: sleepCtx}
}

// call is what varies between calls of one client.
type call struct {
	model       string // "" = Options.Model
	temperature float64
	maxTokens   int
	msgs        []llms.MessageContent
	tools       []llms.Tool
}

// result is one completed call.
type result struct {
	resp  *llms.ContentResponse
	usage llmcost.Usage
}

// keylessToken stands in for the key of an endpoint that takes none:
// langchaingo refuses an empty one, and the exchange drops the header.
const keylessToken = "keyless"

func (c *client) model(ex *exchange, model string) (llms.Model, error) {
	switch c.o.Provider {
	case OpenAI, Azure:
		token := c.o.APIKey
		if token == "" {
			token = keylessToken
		}
		opts := []openai.Option{
			openai.WithToken(token), openai.WithModel(model),
			openai.WithBaseURL(c.o.BaseURL), openai.WithHTTPClient(ex),
		}
		if c.o.Provider == Azure {
			opts = append(opts, openai.WithAPIType(openai.APITypeAzure), openai.WithAPIVersion(c.o.APIVersion))
		}
		return openai.New(opts...)
	case Anthropic:
		return anthropic.New(anthropic.WithToken(c.o.APIKey), anthropic.WithModel(model),
			anthropic.WithBaseURL(c.o.BaseURL), anthropic.WithHTTPClient(ex))
	}
	return nil, fmt.Errorf("llm provider %q: %w", c.o.Provider, action.ErrNotConfigured)
}

// generate makes one call (with retries) within the client's timeout.
func (c *client) generate(ctx context.Context, cl call) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	model := cmpOr(cl.model, c.o.Model)
	ex := &exchange{c: c}
	u := llmcost.Usage{Provider: c.o.Provider, Model: model}
	m, err := c.model(ex, model)
	if err != nil {
		return result{usage: u}, fmt.Errorf("llm client: %s", c.scrub(err.Error()))
	}
	opts := []llms.CallOption{llms.WithTemperature(cl.temperature), llms.WithMaxTokens(cl.maxTokens)}
	if c.o.LegacyMaxTokens {
		opts = append(opts, openai.WithLegacyMaxTokensField())
	}
	if len(cl.tools) > 0 {
		opts = append(opts, llms.WithTools(cl.tools))
	}
	start := time.Now()
	resp, err := m.GenerateContent(ctx, cl.msgs, opts...)
	u.Latency = time.Since(start)
	u.Attempts = ex.attempts
	u.RequestBytes = ex.reqBytes
	if err != nil {
		if ex.answered { // the provider answered (and bills it): count the prompt sent
			u.PromptTokens, u.Estimated = llmcost.ApproxTokens(u.RequestBytes), true
			u.Cost, _ = c.o.Prices.Cost(model, u.PromptTokens, 0)
		}
		return result{usage: u}, c.callError(ctx, ex, err)
	}
	u.PromptTokens, u.CompletionTokens = Tokens(resp)
	estimate(&u, resp)
	u.Cost, _ = c.o.Prices.Cost(model, u.PromptTokens, u.CompletionTokens)
	return result{resp: resp, usage: u}, nil
}

// estimate fills the tokens a provider did not report (some
// OpenAI-compatible servers send no usage block, or a partial one) from
// the sizes of what went over the wire: the request body for the prompt,
// the generated text and tool calls for the completion, each
// llmcost.ApproxTokens. The call is marked Estimated: a response without
// usage still counts against budgets.
func estimate(u *llmcost.Usage, resp *llms.ContentResponse) {
	if u.PromptTokens == 0 && u.RequestBytes > 0 {
		u.PromptTokens = llmcost.ApproxTokens(u.RequestBytes)
		u.Estimated = true
	}
	if u.CompletionTokens == 0 {
		if n := generatedBytes(resp); n > 0 {
			u.CompletionTokens = llmcost.ApproxTokens(n)
			u.Estimated = true
		}
	}
}

// generatedBytes is the size of what the model wrote: text, reasoning,
// and the names and arguments of tool calls.
func generatedBytes(resp *llms.ContentResponse) int {
	n := 0
	for _, ch := range resp.Choices {
		n += len(ch.Content) + len(ch.ReasoningContent)
		for _, tc := range ch.ToolCalls {
			if tc.FunctionCall != nil {
				n += len(tc.FunctionCall.Name) + len(tc.FunctionCall.Arguments)
			}
		}
		if fc := ch.FuncCall; fc != nil && len(ch.ToolCalls) == 0 {
			n += len(fc.Name) + len(fc.Arguments)
		}
	}
	return n
}

// callError words a failed call for people: what happened, in plain
// words. What langchaingo or the network said verbatim (a JSON decoder's
// complaint, a dial error) goes to the log only.
func (c *client) callError(ctx context.Context, ex *exchange, err error) error {
	server := c.server()
	switch {
	case ex.apiErr != nil: // the last answer was an error status
		return ex.apiErr
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failure(fmt.Sprintf("the model server at %s did not answer within %s", server, c.o.Timeout), action.ErrUnavailable, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return fmt.Errorf("the model call to %s was cancelled: %w", server, ctx.Err())
	case ex.netErr != nil && !ex.answered:
		c.o.Logger.Warn("model server unreachable", "server", server, "attempts", ex.attempts, "detail", c.scrub(ex.netErr.Error()))
		return failure(fmt.Sprintf("the model server at %s could not be reached (%s)", server, plainNetErr(ex.netErr)), action.ErrUnavailable)
	default: // it answered 2xx, with something langchaingo could not read
		c.o.Logger.Warn("unreadable model response", "server", server, "attempts", ex.attempts, "statuses", fmt.Sprint(ex.statuses), "detail", c.scrub(err.Error()))
		after := ""
		if n := len(ex.statuses); n > 1 {
			after = fmt.Sprintf(" (after %s and a retry)", statusList(ex.statuses[:n-1]))
		}
		return failure(fmt.Sprintf("the model server at %s answered with something that is not a chat completion Parley can read%s", server, after), action.ErrUnavailable)
	}
}

// plainError is a failure said in plain words, whose kinds (an action
// error kind, context.DeadlineExceeded) errors.Is still finds without
// them being spelled out in the text.
type plainError struct {
	msg   string
	kinds []error
}

func (e *plainError) Error() string   { return e.msg }
func (e *plainError) Unwrap() []error { return e.kinds }

func failure(msg string, kinds ...error) error { return &plainError{msg: msg, kinds: kinds} }

// server is the endpoint's host[:port], for messages: never a path,
// query or credential.
func (c *client) server() string {
	if u, err := url.Parse(c.o.BaseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return c.o.Provider
}

// statusList words the statuses of earlier attempts: "a 429", "a 429 and a 503".
func statusList(sts []int) string {
	var parts []string
	for _, st := range sts {
		if st == 0 {
			parts = append(parts, "a network error")
		} else {
			parts = append(parts, fmt.Sprintf("a %d", st))
		}
	}
	if len(parts) > 1 {
		return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
	return strings.Join(parts, "")
}

// plainNetErr says in a few words why a server could not be reached.
func plainNetErr(err error) string {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return "its name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to it"
	case errors.As(err, &cert):
		return "its TLS certificate is not trusted"
	case errors.As(err, &rec):
		return "it does not speak TLS"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before an answer"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the connection timed out"
	}
	return "a network error"
}

// Tokens reads the usage langchaingo copied from a response: OpenAI's
// prompt/completion tokens or Anthropic's input/output tokens.
func Tokens(resp *llms.ContentResponse) (prompt, completion int) {
	for _, ch := range resp.Choices {
		gi := ch.GenerationInfo
		p, c := intOf(gi["PromptTokens"]), intOf(gi["CompletionTokens"])
		if p == 0 && c == 0 {
			p, c = intOf(gi["InputTokens"]), intOf(gi["OutputTokens"])
		}
		// every choice carries the whole response's usage
		prompt, completion = max(prompt, p), max(completion, c)
	}
	return prompt, completion
}

func intOf(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// exchange is the HTTP client of one call: it retries 429/5xx/529 and
// network errors with exponential backoff, honouring Retry-After, and
// keeps what it saw.
type exchange struct {
	c        *client
	attempts int
	reqBytes int
	apiErr   *APIError
	netErr   error
	answered bool  // a 2xx response was handed to langchaingo
	statuses []int // of each attempt, 0 for a network error
}

const maxErrorBody = 64 << 10

// Do implements langchaingo's Doer.
func (ex *exchange) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		body = b
	}
	ex.reqBytes = len(body)
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if ex.c.o.APIKey == "" { // an endpoint that takes no key gets no header
			r.Header.Del("Authorization")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		ex.attempts++
		resp, err := ex.c.o.HTTPClient.Do(r)
		last := attempt >= ex.c.o.MaxRetries
		if err != nil {
			ex.netErr = err
			ex.statuses = append(ex.statuses, 0)
			if ctx.Err() != nil || last {
				return nil, err
			}
			if werr := ex.wait(ctx, ex.backoff(attempt)); werr != nil {
				return nil, err
			}
			continue
		}
		ex.statuses = append(ex.statuses, resp.StatusCode)
		if resp.StatusCode < 300 { // what failed before is not what this call's outcome is
			ex.netErr, ex.apiErr, ex.answered = nil, nil, true
			return resp, nil
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		ex.apiErr = ex.c.apiError(resp.StatusCode, raw, ex.attempts)
		if retryable(resp.StatusCode) && !last {
			ra, hasRA := retryAfter(resp.Header, time.Now())
			d := ex.backoff(attempt)
			if hasRA {
				d = ra
			}
			if d <= ex.c.o.MaxRetryWait {
				if werr := ex.wait(ctx, d); werr == nil {
					continue
				}
			}
		}
		// Hand langchaingo the body it would have read; its error is
		// replaced by apiErr in callError.
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return resp, nil
	}
}

// backoff is 250ms·2^attempt with ±20% jitter, at most MaxRetryWait.
func (ex *exchange) backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt, 8)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, ex.c.o.MaxRetryWait)
}

// wait sleeps d unless the deadline comes first; a wait that would end
// after the deadline is not started (the retry could not finish anyway).
func (ex *exchange) wait(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
	}
	return ex.c.sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfter parses Retry-After (seconds or an HTTP date) and the
// retry-after-ms header some OpenAI-compatible servers send.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		if n, err := strconv.ParseFloat(ms, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// apiError reads an error body: OpenAI's {"error":{...}} (llama.cpp's
// and newer vLLM's too, with a numeric code), Anthropic's
// {"type":"error","error":{...}}, vLLM's {"error":"Unauthorized"} and its
// older top-level {"object":"error","message",...}.
func (c *client) apiError(status int, raw []byte, attempts int) *APIError {
	type detail struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	}
	var body struct {
		Error json.RawMessage `json:"error"`
		detail
	}
	e := &APIError{Provider: c.o.Provider, Server: c.server(), Status: status, Attempts: attempts}
	if json.Unmarshal(raw, &body) == nil {
		d := body.detail
		var nested detail
		var text string
		switch {
		case json.Unmarshal(body.Error, &nested) == nil:
			d = nested
		case json.Unmarshal(body.Error, &text) == nil:
			d = detail{Message: text}
		}
		e.Type = d.Type
		if d.Code != nil {
			e.Code = fmt.Sprint(d.Code)
		}
		e.Message = c.scrub(d.Message)
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	return e
}
