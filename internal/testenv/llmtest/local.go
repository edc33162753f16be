package llmtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Dialect is a local model server's flavour of the OpenAI Chat
// Completions API: the same path and request, with its own response
// extras, tool-call ids and error bodies. Shapes follow each server's
// documentation and source:
//
//   - Ollama (/v1, docs/openai.md "OpenAI compatibility"): takes no key
//     (clients send a placeholder it ignores); reads max_tokens, not
//     max_completion_tokens; answers with system_fingerprint "fp_ollama",
//     tool calls with an index; errors {"error":{"message","type":
//     "api_error","param":null,"code":null}}.
//   - llama.cpp server (tools/server, started with --jinja; --api-key
//     optional): content null beside tool calls, a "timings" block, errors
//     {"error":{"code":401,"message":"Invalid API Key","type":
//     "authentication_error"}}.
//   - vLLM (vllm serve --enable-auto-tool-choice; --api-key optional):
//     tool-call ids "chatcmpl-tool-…", reasoning_content, stop_reason,
//     prompt_logprobs; a missing key gets 401 {"error":"Unauthorized"},
//     other errors {"error":{"message","type":"BadRequestError","param",
//     "code":400}}.
type Dialect string

// Dialects.
const (
	Ollama   Dialect = "ollama"
	LlamaCpp Dialect = "llama.cpp"
	VLLM     Dialect = "vllm"
)

// NewLocal starts a fake of a local model server speaking d on POST
// /v1/chat/completions. apiKey "" is a server that takes no key (Ollama;
// llama.cpp and vLLM started without --api-key): it never checks the
// Authorization header. Otherwise a request without "Authorization:
// Bearer apiKey" gets that server's 401. Requests without a model or
// messages get its 400; every other request goes to h.
func NewLocal(t testing.TB, d Dialect, apiKey string, h Handler) *Server {
	t.Helper()
	return start(t, flavour{
		path: "/v1/chat/completions",
		check: func(r *http.Request, m map[string]any) (int, string, string) {
			if apiKey != "" && r.Header.Get("Authorization") != "Bearer "+apiKey {
				return http.StatusUnauthorized, "authentication_error", "Invalid API Key"
			}
			if s, _ := m["model"].(string); s == "" && d != LlamaCpp { // llama.cpp serves its one model whatever is asked
				return http.StatusBadRequest, "invalid_request_error", "model is required"
			}
			if msgs, _ := m["messages"].([]any); len(msgs) == 0 {
				return http.StatusBadRequest, "invalid_request_error", "messages is required"
			}
			return 0, "", ""
		},
		error: func(status int, typ, msg string) Response { return LocalError(d, status, msg) },
	}, h)
}

// LocalToolCall answers with one tool call, shaped as d's server returns
// it; usage is estimated as in the package doc.
func LocalToolCall(d Dialect, r Request, name, args string) Response {
	call := map[string]any{"type": "function", "function": map[string]any{"name": name, "arguments": args}}
	msg := map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{call}}
	switch d {
	case Ollama:
		call["id"], call["index"] = fmt.Sprintf("call_%08x", r.N), 0
		msg["content"] = ""
	case LlamaCpp:
		call["id"] = fmt.Sprintf("%032x", r.N+1)
	case VLLM:
		call["id"] = fmt.Sprintf("chatcmpl-tool-%032x", r.N+1)
		msg["reasoning_content"] = nil
	}
	return localCompletion(d, r, msg, "tool_calls", completionTokens(name, args))
}

// LocalText answers with words only, shaped as d's server returns them.
func LocalText(d Dialect, r Request, text string) Response {
	msg := map[string]any{"role": "assistant", "content": text}
	if d == VLLM {
		msg["reasoning_content"], msg["tool_calls"] = nil, []any{}
	}
	return localCompletion(d, r, msg, "stop", completionTokens(text))
}

func localCompletion(d Dialect, r Request, msg map[string]any, finish string, completion int) Response {
	prompt := r.ApproxPromptTokens()
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	choice := map[string]any{"index": 0, "message": msg, "finish_reason": finish}
	body := map[string]any{
		"object": "chat.completion", "created": 1767225600, "model": r.Model(),
		"choices": []any{choice}, "usage": usage,
	}
	switch d {
	case Ollama:
		body["id"], body["system_fingerprint"] = fmt.Sprintf("chatcmpl-%d", 100+r.N), "fp_ollama"
	case LlamaCpp:
		body["id"], body["system_fingerprint"] = fmt.Sprintf("chatcmpl-%032x", r.N+1), "b5200-0c4b9e6a"
		body["timings"] = map[string]any{"prompt_n": prompt, "prompt_ms": 41.5, "predicted_n": completion, "predicted_ms": 230.2}
		if body["model"] == "" {
			body["model"] = "gpt-3.5-turbo" // llama.cpp's default alias
		}
	case VLLM:
		body["id"] = fmt.Sprintf("chatcmpl-%032x", r.N+1)
		body["prompt_logprobs"], body["kv_transfer_params"] = nil, nil
		usage["prompt_tokens_details"] = nil
		choice["logprobs"], choice["stop_reason"] = nil, nil
	}
	return Response{Body: body}
}

// LocalError is d's error body for status.
func LocalError(d Dialect, status int, msg string) Response {
	switch d {
	case Ollama:
		return Response{Status: status, Body: map[string]any{"error": map[string]any{
			"message": msg, "type": "api_error", "param": nil, "code": nil}}}
	case LlamaCpp:
		typ := "server_error"
		switch {
		case status == http.StatusUnauthorized:
			typ = "authentication_error"
		case status < 500:
			typ = "invalid_request_error"
		}
		return Response{Status: status, Body: map[string]any{"error": map[string]any{"code": status, "message": msg, "type": typ}}}
	default: // vLLM
		if status == http.StatusUnauthorized {
			return Response{Status: status, Body: map[string]any{"error": "Unauthorized"}}
		}
		typ := "BadRequestError"
		if status >= 500 {
			typ = "InternalServerError"
		}
		return Response{Status: status, Body: map[string]any{"error": map[string]any{
			"message": msg, "type": typ, "param": nil, "code": status}}}
	}
}

// MaxTokensField is the completion-limit field a request carried:
// "max_tokens", "max_completion_tokens", both joined with "+", or "".
func (r Request) MaxTokensField() string {
	m := r.JSON()
	var got []string
	for _, f := range []string{"max_tokens", "max_completion_tokens"} {
		if _, ok := m[f]; ok {
			got = append(got, f)
		}
	}
	return strings.Join(got, "+")
}
