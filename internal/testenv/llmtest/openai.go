package llmtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// NewOpenAI starts a fake OpenAI-compatible server answering POST
// /v1/chat/completions. Requests without "Authorization: Bearer ...", a
// model or messages get the 401/400 errors the real API gives; every other
// request goes to h.
func NewOpenAI(t testing.TB, h Handler) *Server {
	t.Helper()
	return start(t, flavour{
		path: "/v1/chat/completions",
		check: func(r *http.Request, m map[string]any) (int, string, string) {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || len(r.Header.Get("Authorization")) <= len("Bearer ") {
				return http.StatusUnauthorized, "invalid_request_error", "You didn't provide an API key."
			}
			if s, _ := m["model"].(string); s == "" {
				return http.StatusBadRequest, "invalid_request_error", "you must provide a model parameter"
			}
			if msgs, _ := m["messages"].([]any); len(msgs) == 0 {
				return http.StatusBadRequest, "invalid_request_error", "'messages' is a required property"
			}
			return 0, "", ""
		},
		error: func(status int, typ, msg string) Response { return OpenAIError(status, typ, "", msg) },
	}, h)
}

// OpenAIUsage is the usage block of a chat.completion.
type OpenAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// OpenAIToolCall answers with one tool call. args is the arguments JSON
// string exactly as the model produced it (it may be malformed on
// purpose). Usage is estimated from the request (see the package doc).
func OpenAIToolCall(r Request, name, args string) Response {
	return openAICompletion(r, map[string]any{
		"role":    "assistant",
		"content": nil,
		"tool_calls": []any{map[string]any{
			"id":   fmt.Sprintf("call_%04d", r.N),
			"type": "function",
			"function": map[string]any{
				"name":      name,
				"arguments": args,
			},
		}},
		"refusal": nil,
	}, "tool_calls", completionTokens(name, args))
}

// OpenAIText answers with a plain assistant message (no tool call).
func OpenAIText(r Request, text string) Response {
	return openAICompletion(r, map[string]any{"role": "assistant", "content": text, "refusal": nil}, "stop", completionTokens(text))
}

func openAICompletion(r Request, msg map[string]any, finish string, completion int) Response {
	prompt := r.ApproxPromptTokens()
	return Response{Body: map[string]any{
		"id":      fmt.Sprintf("chatcmpl-fake%04d", r.N),
		"object":  "chat.completion",
		"created": 1767225600,
		"model":   r.Model(),
		"choices": []any{map[string]any{
			"index":         0,
			"message":       msg,
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"usage":              OpenAIUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
		"system_fingerprint": "fp_llmtest",
	}}
}

// OpenAIError is an error response with OpenAI's error body.
func OpenAIError(status int, typ, code, msg string) Response {
	var c any
	if code != "" {
		c = code
	}
	return Response{Status: status, Body: map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": c,
	}}}
}

// OpenAIRateLimited is the 429 OpenAI sends when a rate limit is hit,
// with Retry-After in seconds.
func OpenAIRateLimited(retryAfter string) Response {
	return WithRetryAfter(OpenAIError(http.StatusTooManyRequests, "requests", "rate_limit_exceeded",
		"Rate limit reached for requests. Please try again later."), retryAfter)
}
