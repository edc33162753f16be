package useraction

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// Every server here is a local httptest server on 127.0.0.1: the HTTP
// runner is a plain HTTP client, and these tests check exactly what
// reaches the server.

// seen is one request as the server received it.
type seen struct {
	Method, URI, Path, Query string
	Header                   http.Header
	Body                     string
}

// server records every request and answers with answer.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newServer(t *testing.T, tlsServer bool, answer http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
		s.mu.Unlock()
		answer(w, r)
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused TLS handshake is expected
	if tlsServer {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func jsonAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// loadOne loads one action file (with {{URL}} replaced) from a new folder.
func loadOne(t *testing.T, src, url string, o Options) *Action {
	t.Helper()
	dir := writeDir(t, map[string]string{"action.yaml": strings.ReplaceAll(src, "{{URL}}", url)})
	if o.Getenv == nil {
		o.Getenv = testEnv(map[string]string{"CDN_TOKEN": secretValue})
	}
	acts, err := LoadDir(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return acts[0]
}

// validated runs raw parameters through the spec, as the pipeline does.
func validated(t *testing.T, a *Action, raw map[string]any) action.Params {
	t.Helper()
	p, err := a.Spec().Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const purgeSrc = `name: cdn.purge
summary: Purge the CDN cache of a site.
kind: mutating
params:
  site: {type: string, required: true}
  path: {type: string, pattern: '^/[A-Za-z0-9/_. -]*$', default: /}
  count: {type: integer, min: 1, max: 50}
  note: {type: string}
  force: {type: boolean}
examples:
  - text: purge the cdn for shop
    params: {site: shop}
run:
  http:
    method: POST
    url: {{URL}}/api/purge/{{ .site }}/items?path={{ .path }}&tag=a%20b
    headers:
      Authorization: {secret: {env: CDN_TOKEN}, format: "Bearer %s"}
      Accept: application/json
    json:
      site: "{{ .site }}"
      label: "site {{ .site }}"
      count: "{{ .count }}"
      note: "{{ .note }}"
      force: "{{ .force }}"
      fixed: {n: 3, ok: true, none: null, list: [a, "{{ .site }}"]}
    timeout: 2s
    expect: [202]
reply: 'Purged {{ .site }}{{ .path }}: id {{ .response.id }}, {{ .response.files }} files{{ with .response.eta }}, done in {{ . }}{{ end }}'
`

func TestHTTPSendsExactlyWhatIsPlanned(t *testing.T) {
	srv := newServer(t, false, jsonAnswer(202, `{"id": "p-81", "files": 1204}`))
	a := loadOne(t, purgeSrc, srv.URL, Options{UserAgent: "parley/test"})
	// A hostile site value: a slash, a query, a quote and a JSON fragment.
	site := `shop/../admin?x=1", "admin": true, "y": "`
	p := validated(t, a, map[string]any{"site": site, "path": "/img/a b", "count": "7"})
	req := action.Request{Action: "cdn.purge", Params: p, RequestID: "req-0001", Subject: "console:alice"}

	plan, err := a.Plan(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.requests()) != 0 {
		t.Fatal("planning sent a request")
	}
	res, err := a.Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached the server, want 1", len(reqs))
	}
	got := reqs[0]
	wantURI := "/api/purge/shop%2F..%2Fadmin%3Fx=1%22%2C%20%22admin%22:%20true%2C%20%22y%22:%20%22/items?path=%2Fimg%2Fa+b&tag=a%20b"
	if got.Method != "POST" || got.URI != wantURI {
		t.Errorf("request line = %s %s\nwant           POST %s", got.Method, got.URI, wantURI)
	}
	// The path parameter stayed one segment; the query value one value.
	if got.Path != "/api/purge/"+site+"/items" || !strings.HasPrefix(got.Query, "path=%2Fimg%2Fa+b&") {
		t.Errorf("server decoded path %q query %q", got.Path, got.Query)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(got.Body), &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, got.Body)
	}
	if body["site"] != site || body["label"] != "site "+site || len(body) != 4 {
		t.Errorf("body = %v; want site and label as plain strings, count, fixed, and no note or force (not given)", body)
	}
	if body["count"] != float64(7) {
		t.Errorf("count = %#v; want the number 7", body["count"])
	}
	if _, admin := body["admin"]; admin {
		t.Error("a parameter spliced a key into the body")
	}
	fixed, _ := body["fixed"].(map[string]any)
	if fixed["n"] != float64(3) || fixed["ok"] != true || fixed["none"] != nil || fmt.Sprint(fixed["list"]) != "[a "+site+"]" {
		t.Errorf("fixed = %v", fixed)
	}
	if !strings.HasPrefix(got.Body, `{"site":`) {
		t.Errorf("keys not in file order: %s", got.Body)
	}
	h := got.Header
	if h.Get("Authorization") != "Bearer "+secretValue || h.Get("Accept") != "application/json" ||
		h.Get("Content-Type") != "application/json" || h.Get(RequestIDHeader) != "req-0001" || h.Get("User-Agent") != "parley/test" {
		t.Errorf("headers = %v", h)
	}

	// The plan shows the same request, with the secret hidden.
	for _, want := range []string{"send POST " + srv.URL + wantURI[:20], "Authorization: Bearer <secret>", "Accept: application/json", "body " + got.Body} {
		if !strings.Contains(plan.Summary, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.Summary)
		}
	}
	if strings.Contains(plan.Summary, secretValue) || strings.Contains(fmt.Sprint(plan), secretValue) {
		t.Error("the secret is in the plan")
	}
	again, err := a.Plan(t.Context(), req)
	if err != nil || again.State != plan.State || plan.State == "" {
		t.Errorf("plan state not stable: %q then %q (%v)", plan.State, again.State, err)
	}
	other, _ := a.Plan(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "blog"}), RequestID: "req-0001"})
	if other.State == plan.State {
		t.Error("different parameters, same plan state")
	}

	if res.Text != "Purged "+site+"/img/a b: id p-81, 1204 files" {
		t.Errorf("reply = %q", res.Text)
	}
	if res.Outcome["status"] != "202" || !strings.HasPrefix(res.Outcome["request"], "POST "+srv.URL+"/api/purge/") {
		t.Errorf("outcome = %v", res.Outcome)
	}
}

func TestHTTPPlanStateFollowsTheFile(t *testing.T) {
	srv := newServer(t, false, jsonAnswer(202, `{}`))
	a := loadOne(t, purgeSrc, srv.URL, Options{})
	b := loadOne(t, strings.Replace(purgeSrc, "timeout: 2s", "timeout: 3s", 1), srv.URL, Options{})
	req := action.Request{Params: validated(t, a, map[string]any{"site": "shop"}), RequestID: "r1"}
	pa, _ := a.Plan(t.Context(), req)
	pb, _ := b.Plan(t.Context(), req)
	if pa.State == pb.State {
		t.Error("the action file changed but the plan state did not: a confirmation given for the old file would run the new one")
	}
}

func TestHTTPUnexpectedStatus(t *testing.T) {
	// The server echoes the token and a password: neither may reach the
	// chat or the audit log through the error.
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "upstream error: auth header was %q; db password=hunter22 failed;\n%s", r.Header.Get("Authorization"), strings.Repeat("x", 2000))
		}
	}
	for _, tc := range []struct {
		status int
		kind   error
	}{{500, errStatus}, {403, action.ErrForbidden}, {404, action.ErrNotFound}, {200, errStatus}} {
		srv := newServer(t, false, echo(tc.status))
		a := loadOne(t, purgeSrc, srv.URL, Options{})
		res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"}), RequestID: "r"})
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		msg := err.Error()
		if !errors.Is(err, tc.kind) || !strings.Contains(msg, fmt.Sprintf("answered %d %s (expected 202)", tc.status, http.StatusText(tc.status))) {
			t.Errorf("%d: err = %v", tc.status, err)
		}
		if !strings.Contains(msg, "upstream error: auth header was") || !strings.Contains(msg, "…") || len(msg) > 600 {
			t.Errorf("%d: want a short excerpt of the body: %s", tc.status, msg)
		}
		if strings.Contains(msg, secretValue) || strings.Contains(msg, "hunter22") || strings.Contains(msg, "\n") {
			t.Errorf("%d: the excerpt is not redacted to one line: %s", tc.status, msg)
		}
		if res.Outcome["status"] != fmt.Sprint(tc.status) {
			t.Errorf("%d: outcome = %v", tc.status, res.Outcome)
		}
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	a := loadOne(t, strings.Replace(purgeSrc, "timeout: 2s", "timeout: 1s", 1), srv.URL, Options{})
	start := time.Now()
	_, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 1s (timed out); the server may or may not have acted on it") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the timeout did not bound the call: %s", took)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (never retried)", n)
	}
}

func TestHTTPRedirects(t *testing.T) {
	other := newServer(t, false, jsonAnswer(200, `{}`))
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/purge/moved"):
			http.Redirect(w, r, "/api/purge/shop/items", http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/api/purge/away"):
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/api/purge/loop"):
			http.Redirect(w, r, "/api/purge/loop/items", http.StatusTemporaryRedirect)
		default:
			jsonAnswer(202, `{"id":"x"}`)(w, r)
		}
	})
	a := loadOne(t, purgeSrc, srv.URL, Options{})
	run := func(site string) error {
		_, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": site})})
		return err
	}
	if err := run("moved"); err != nil {
		t.Errorf("a same-host redirect was not followed: %v", err)
	}
	if err := run("away"); err == nil || !strings.Contains(err.Error(), "redirected to http://"+other.Listener.Addr().String()+", another host; not followed") {
		t.Errorf("another host: %v", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other host got %d requests (with the token)", n)
	}
	if err := run("loop"); err == nil || !strings.Contains(err.Error(), "more than 3 redirects") {
		t.Errorf("a redirect loop: %v", err)
	}
}

func TestHTTPVerifiesTLS(t *testing.T) {
	srv := newServer(t, true, jsonAnswer(202, `{"id":"tls"}`))
	src := purgeSrc
	a := loadOne(t, src, srv.URL, Options{})
	_, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err == nil || !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown certificate was accepted: %v", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("the server got %d requests over an unverified connection", n)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	a = loadOne(t, src, srv.URL, Options{RootCAs: pool})
	res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err != nil || !strings.Contains(res.Text, "id tls") {
		t.Fatalf("with the server's CA trusted: %v %q", err, res.Text)
	}
}

func TestHTTPResponseCap(t *testing.T) {
	big := `{"id": "` + strings.Repeat("y", MaxResponse) + `"}`
	srv := newServer(t, false, jsonAnswer(202, big))
	src := purgeSrc[:strings.Index(purgeSrc, "reply:")] + "reply: '{{ printf \"%.10s\" .response }}'\n"
	a := loadOne(t, src, srv.URL, Options{})
	res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, `{"id": "yy`) || !strings.Contains(res.Text, "only its start was read") {
		t.Errorf("reply = %.200q", res.Text)
	}
}

func TestHTTPRefusesDotSegments(t *testing.T) {
	srv := newServer(t, false, jsonAnswer(202, `{}`))
	a := loadOne(t, purgeSrc, srv.URL, Options{})
	for _, site := range []string{"..", "."} {
		_, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": site})})
		if err == nil || !errors.Is(err, action.ErrInvalid) || !strings.Contains(err.Error(), "a parameter made a path segment") {
			t.Errorf("site %q: %v", site, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestHTTPSecretFileRotates(t *testing.T) {
	srv := newServer(t, false, jsonAnswer(202, `{}`))
	file := filepath.Join(t.TempDir(), "token")
	write := func(v string) {
		if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, second := secretValue+"-1", secretValue+"-2"
	write(first)
	a := loadOne(t, strings.Replace(purgeSrc, "env: CDN_TOKEN", "file: "+file, 1), srv.URL, Options{})
	p := validated(t, a, map[string]any{"site": "shop"})
	if _, err := a.Run(t.Context(), action.Request{Params: p}); err != nil {
		t.Fatal(err)
	}
	write(second)
	if _, err := a.Run(t.Context(), action.Request{Params: p}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if reqs[0].Header.Get("Authorization") != "Bearer "+first || reqs[1].Header.Get("Authorization") != "Bearer "+second {
		t.Errorf("Authorization = %q then %q", reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"))
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	_, err := a.Run(t.Context(), action.Request{Params: p})
	if err == nil || !errors.Is(err, action.ErrNotConfigured) || len(srv.requests()) != 2 {
		t.Errorf("a missing secret file: %v (%d requests)", err, len(srv.requests()))
	}
}

func TestReplyTemplateFailureDoesNotHideSuccess(t *testing.T) {
	srv := newServer(t, false, jsonAnswer(202, `{"items": [1, 2]}`))
	a := loadOne(t, strings.Replace(purgeSrc, "reply: 'Purged", "reply: '{{ index .response.items 5 }} Purged", 1), srv.URL, Options{})
	res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err != nil || !strings.Contains(res.Text, "cdn.purge succeeded, but its reply template failed") {
		t.Errorf("reply = %q, %v", res.Text, err)
	}
}

func TestHTTPDefaultReplyAndReadAction(t *testing.T) {
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain text answer")
	})
	src := `name: oncall.who
summary: Who is on call.
kind: read
params:
  service: {type: service, required: true}
examples:
  - text: who is on call for payments
run:
  http: {url: "{{URL}}/oncall/{{ .service }}"}
`
	a := loadOne(t, src, srv.URL, Options{})
	if a.RunTimeout() < DefaultHTTPTimeout {
		t.Errorf("RunTimeout = %s", a.RunTimeout())
	}
	res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"service": "payments"})})
	if err != nil || res.Text != "oncall.who: GET "+srv.URL+"/oncall/payments answered 200 OK." {
		t.Errorf("reply = %q, %v", res.Text, err)
	}
	if r := srv.requests(); len(r) != 1 || r[0].Method != "GET" || r[0].Body != "" {
		t.Errorf("requests = %+v", r)
	}
}

func TestHTTPReplyNeverShowsTheSecret(t *testing.T) {
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"id": "x", "echo": map[string]string{"auth": r.Header.Get("Authorization")}})
	})
	src := purgeSrc[:strings.Index(purgeSrc, "reply:")] + "reply: 'sent with {{ .response.echo.auth }}'\n"
	a := loadOne(t, src, srv.URL, Options{})
	res, err := a.Run(t.Context(), action.Request{Params: validated(t, a, map[string]any{"site": "shop"})})
	if err != nil || res.Text != "sent with Bearer <secret>" {
		t.Errorf("reply = %q, %v", res.Text, err)
	}
}
