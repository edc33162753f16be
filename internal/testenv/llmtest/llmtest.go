// Package llmtest runs local fakes of the OpenAI Chat Completions API and
// the Anthropic Messages API on 127.0.0.1 for tests: a real client (here
// langchaingo's) talks to them over HTTP with the documented wire format,
// and each test scripts the answers with a Handler and inspects every
// request body the client sent (tools offered, system vs user content,
// that no secret left the process).
//
// Payload shapes follow the providers' API references: OpenAI's
// chat.completion object (choices[].message.tool_calls[] with
// function.arguments as a JSON string, finish_reason, usage.prompt_tokens
// / completion_tokens / total_tokens) and error body {"error":{"message",
// "type","param","code"}}; Anthropic's message object (content[] blocks of
// type text or tool_use with an input object, stop_reason, usage
// input_tokens / output_tokens) and error body {"type":"error","error":
// {"type","message"}}. Neither fake counts tokens as the real tokenizers
// do: unless a test says otherwise, prompt tokens are
// llmcost.ApproxTokens of the request body (bytes/4).
package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chatops/parley/internal/llmcost"
)

// Request is one request the fake received.
type Request struct {
	N      int // 0 for the first request, 1 for the second, ...
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// JSON decodes the body (nil when it is not a JSON object).
func (r Request) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// Model is the "model" field of the request.
func (r Request) Model() string {
	s, _ := r.JSON()["model"].(string)
	return s
}

// ApproxPromptTokens is llmcost.ApproxTokens of the body.
func (r Request) ApproxPromptTokens() int { return llmcost.ApproxTokens(len(r.Body)) }

// Response is a scripted answer.
type Response struct {
	Status int // 0 = 200
	Header http.Header
	Body   any // []byte or string as is; anything else is encoded as JSON
	// Hang makes the fake hold the request without answering until the
	// client gives up or the server closes.
	Hang bool
}

// Handler scripts the fake: it is called for every well-formed request.
type Handler func(r Request) Response

// Server is a running fake.
type Server struct {
	URL string // http://127.0.0.1:PORT

	srv     *httptest.Server
	closing chan struct{}

	mu   sync.Mutex
	reqs []Request
}

// BaseURL is URL + "/v1", the base URL a client is configured with.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Requests returns a copy of every request received so far, in order
// (malformed ones included).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count is the number of requests received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Last returns the last request; it fails the test when there is none.
func (s *Server) Last(t testing.TB) Request {
	t.Helper()
	r := s.Requests()
	if len(r) == 0 {
		t.Fatal("llmtest: no request received")
	}
	return r[len(r)-1]
}

type flavour struct {
	path  string
	check func(r *http.Request, body map[string]any) (status int, errType, msg string)
	error func(status int, typ, msg string) Response
}

func start(t testing.TB, f flavour, h Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("llmtest: listen: %v", err)
	}
	s := &Server{closing: make(chan struct{})}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		s.mu.Lock()
		req := Request{N: len(s.reqs), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()

		var resp Response
		var m map[string]any
		switch {
		case r.URL.Path != f.path:
			resp = f.error(http.StatusNotFound, "not_found_error", "unknown path "+r.URL.Path)
		case r.Method != http.MethodPost:
			resp = f.error(http.StatusMethodNotAllowed, "invalid_request_error", "use POST")
		case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
			resp = f.error(http.StatusBadRequest, "invalid_request_error", "content-type must be application/json")
		case json.Unmarshal(body, &m) != nil:
			resp = f.error(http.StatusBadRequest, "invalid_request_error", "request body is not valid JSON")
		default:
			if st, typ, msg := f.check(r, m); st != 0 {
				resp = f.error(st, typ, msg)
			} else {
				resp = h(req)
			}
		}
		if resp.Hang {
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return
		}
		write(w, resp)
	})}}
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.closing)
		s.srv.Close()
	})
	return s
}

func write(w http.ResponseWriter, r Response) {
	var b []byte
	switch v := r.Body.(type) {
	case nil:
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	st := r.Status
	if st == 0 {
		st = http.StatusOK
	}
	w.WriteHeader(st)
	_, _ = io.Copy(w, bytes.NewReader(b))
}

// WithRetryAfter returns r with a Retry-After header (seconds or an HTTP
// date, as given).
func WithRetryAfter(r Response, retryAfter string) Response {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Retry-After", retryAfter)
	r.Header = h
	return r
}

// Hang is a Response that never answers.
func Hang() Response { return Response{Hang: true} }

func completionTokens(parts ...string) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return max(1, llmcost.ApproxTokens(n))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("llmtest: %v", err))
	}
	return string(b)
}
