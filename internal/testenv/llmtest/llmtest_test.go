package llmtest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestProtocolChecks(t *testing.T) {
	calls := 0
	oa := NewOpenAI(t, func(r Request) Response { calls++; return OpenAIText(r, "hi") })
	an := NewAnthropic(t, func(r Request) Response { calls++; return AnthropicText(r, "hi") })
	js := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name   string
		url    string
		hdr    map[string]string
		body   string
		status int
	}{
		{"openai without key", oa.BaseURL() + "/chat/completions", js, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, 401},
		{"openai ok", oa.BaseURL() + "/chat/completions", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer k"}, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, 200},
		{"openai wrong path", oa.URL + "/v1/completions", js, `{}`, 404},
		{"anthropic without max_tokens", an.BaseURL() + "/messages", map[string]string{"Content-Type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, 400},
		{"anthropic ok", an.BaseURL() + "/messages", map[string]string{"Content-Type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, 200},
		{"not json", an.BaseURL() + "/messages", js, `{`, 400},
	}
	for _, c := range cases {
		if resp := post(t, c.url, c.hdr, c.body); resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
		}
	}
	if calls != 2 || oa.Count() != 3 || an.Count() != 3 {
		t.Errorf("handler calls %d, requests %d/%d", calls, oa.Count(), an.Count())
	}
}

func TestRateLimitedShape(t *testing.T) {
	srv := NewOpenAI(t, func(r Request) Response { return OpenAIRateLimited("7") })
	resp := post(t, srv.BaseURL()+"/chat/completions", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer k"},
		`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("status %d retry-after %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
