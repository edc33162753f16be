package llmtest

import (
	"fmt"
	"net/http"
	"testing"
)

// NewAnthropic starts a fake Anthropic server answering POST /v1/messages.
// Requests without x-api-key, anthropic-version, model, max_tokens or
// messages get the 401/400 errors the real API gives; every other request
// goes to h.
func NewAnthropic(t testing.TB, h Handler) *Server {
	t.Helper()
	return start(t, flavour{
		path: "/v1/messages",
		check: func(r *http.Request, m map[string]any) (int, string, string) {
			if r.Header.Get("x-api-key") == "" {
				return http.StatusUnauthorized, "authentication_error", "x-api-key header is required"
			}
			if r.Header.Get("anthropic-version") == "" {
				return http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required"
			}
			if s, _ := m["model"].(string); s == "" {
				return http.StatusBadRequest, "invalid_request_error", "model: Field required"
			}
			if n, _ := m["max_tokens"].(float64); n < 1 {
				return http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required"
			}
			if msgs, _ := m["messages"].([]any); len(msgs) == 0 {
				return http.StatusBadRequest, "invalid_request_error", "messages: Field required"
			}
			return 0, "", ""
		},
		error: AnthropicError,
	}, h)
}

// AnthropicToolUse answers with one tool_use block, optionally preceded
// by a text block (text "" for none).
func AnthropicToolUse(r Request, text, name string, input map[string]any) Response {
	var content []any
	if text != "" {
		content = append(content, map[string]any{"type": "text", "text": text})
	}
	content = append(content, map[string]any{
		"type": "tool_use", "id": fmt.Sprintf("toolu_fake%04d", r.N), "name": name, "input": input,
	})
	return anthropicMessage(r, content, "tool_use", completionTokens(text, name, mustJSON(input)))
}

// AnthropicText answers with a text block only.
func AnthropicText(r Request, text string) Response {
	return anthropicMessage(r, []any{map[string]any{"type": "text", "text": text}}, "end_turn", completionTokens(text))
}

func anthropicMessage(r Request, content []any, stop string, completion int) Response {
	return Response{Body: map[string]any{
		"id":            fmt.Sprintf("msg_fake%04d", r.N),
		"type":          "message",
		"role":          "assistant",
		"model":         r.Model(),
		"content":       content,
		"stop_reason":   stop,
		"stop_sequence": nil,
		"usage": map[string]any{
			"input_tokens":  r.ApproxPromptTokens(),
			"output_tokens": completion,
		},
	}}
}

// AnthropicError is an error response with Anthropic's error body.
func AnthropicError(status int, typ, msg string) Response {
	return Response{Status: status, Body: map[string]any{
		"type":  "error",
		"error": map[string]any{"type": typ, "message": msg},
	}}
}

// AnthropicRateLimited is Anthropic's 429 with retry-after in seconds.
func AnthropicRateLimited(retryAfter string) Response {
	return WithRetryAfter(AnthropicError(http.StatusTooManyRequests, "rate_limit_error",
		"Number of request tokens has exceeded your per-minute rate limit"), retryAfter)
}

// AnthropicOverloaded is Anthropic's 529.
func AnthropicOverloaded() Response {
	return AnthropicError(529, "overloaded_error", "Overloaded")
}
