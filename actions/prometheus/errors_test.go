package prometheus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// The tests here need Prometheus to misbehave (hang, fail, answer garbage)
// or to see exactly what Parley sends, so they run against local servers on
// 127.0.0.1 that speak the Prometheus HTTP API: GET or POST
// /api/v1/query and /api/v1/query_range with form parameters, answered
// with the documented envelope {"status":"success","data":{"resultType":
// ...,"result":...}} or {"status":"error","errorType":...,"error":...}.

const (
	token    = "tok-3f9a7c1e5b2d-secret"
	password = "pw-8c1d4e6f-secret"
)

// recorder is a fake Prometheus that answers every query with one sample
// and records what it was asked.
type recorder struct {
	mu      sync.Mutex
	queries []string
	auth    []string
	value   string // answered sample value; "" answers an empty vector
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if err := req.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.queries = append(r.queries, req.URL.Path+" "+req.Form.Get("query"))
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	val := r.value
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	now := float64(time.Now().Unix())
	switch {
	case val == "":
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	case strings.HasSuffix(req.URL.Path, "/query_range"):
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[%v,%q],[%v,%q]]}]}}`, now-60, val, now, val)
	default:
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%v,%q]}]}}`, now, val)
	}
}

func (r *recorder) seen() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...), append([]string(nil), r.auth...)
}

func newQuery(t *testing.T, o Options) *Query {
	t.Helper()
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func runErr(q *Query, p action.Params) error {
	_, err := q.Run(context.Background(), action.Request{Action: action.PrometheusQuery, Params: p})
	return err
}

var errorRate = action.Params{"service": "checkout", "metric": "error_rate"}

func TestNotConfigured(t *testing.T) {
	q := newQuery(t, Options{})
	if q.Configured() {
		t.Error("Configured() with no URL")
	}
	err := runErr(q, errorRate)
	if !errors.Is(err, action.ErrNotConfigured) || !strings.Contains(err.Error(), "prometheus.url") {
		t.Errorf("err = %v, want ErrNotConfigured naming prometheus.url", err)
	}
	if q.Spec().Name != action.PrometheusQuery {
		t.Errorf("spec = %q", q.Spec().Name)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"scheme":            {URL: "ftp://prom:9090"},
		"no host":           {URL: "http://"},
		"unknown metric":    {URL: "http://prom:9090", Templates: map[string]string{"saturation": "up"}},
		"empty template":    {URL: "http://prom:9090", Templates: map[string]string{"cpu": " "}},
		"template syntax":   {URL: "http://prom:9090", Templates: map[string]string{"cpu": "rate(x{c=\"{{.Service}\"}[1m])"}},
		"template field":    {URL: "http://prom:9090", Templates: map[string]string{"cpu": "x{c=\"{{.Pod}}\"}"}},
		"token and basic":   {URL: "http://prom:9090", BearerToken: token, Username: "u", Password: password},
		"userinfo and user": {URL: "http://u:" + password + "@prom:9090", Username: "v"},
		"negative timeout":  {URL: "http://prom:9090", Timeout: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(o)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), password) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestServiceNamesCannotInjectPromQL(t *testing.T) {
	rec := &recorder{value: "0.01"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	q := newQuery(t, Options{URL: srv.URL})
	for _, svc := range []string{`checkout"}`, `a",code=~".*`, "check out", `x\`, "x{y}", "checkout\n"} {
		err := runErr(q, action.Params{"service": svc, "metric": "error_rate"})
		if !errors.Is(err, action.ErrInvalid) {
			t.Errorf("service %q: err = %v, want ErrInvalid", svc, err)
		}
	}
	if qs, _ := rec.seen(); len(qs) != 0 {
		t.Errorf("queries sent for invalid names: %q", qs)
	}
	for _, svc := range []string{"checkout", "payments-v2", "team.app:web", "a_b"} {
		if err := runErr(q, action.Params{"service": svc, "metric": "error_rate"}); err != nil {
			t.Errorf("service %q: %v", svc, err)
		}
	}
	if err := runErr(q, action.Params{"metric": "error_rate"}); !errors.Is(err, action.ErrInvalid) {
		t.Errorf("no service: err = %v", err)
	}
	if err := runErr(q, action.Params{"service": "checkout", "metric": "saturation"}); !errors.Is(err, action.ErrInvalid) {
		t.Errorf("unknown metric: err = %v", err)
	}
	if err := runErr(q, action.Params{"service": "checkout", "metric": "cpu", "window": "soon"}); !errors.Is(err, action.ErrInvalid) {
		t.Errorf("bad window: err = %v", err)
	}
}

func TestTemplatesAndRanges(t *testing.T) {
	rec := &recorder{value: "0.25"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q := newQuery(t, Options{
		URL:       srv.URL,
		Now:       func() time.Time { return at },
		Templates: map[string]string{"cpu": `sum(rate(cpu_seconds{app="{{.Service}}"}[{{.Window}}]))`},
	})

	res, err := q.Run(context.Background(), action.Request{Params: action.Params{"service": "checkout", "metric": "cpu", "window": "2m"}})
	if err != nil {
		t.Fatal(err)
	}
	// A window shorter than RateRange is its own rate range; the chart of
	// 2m has a 2s step, so its range stays 2m too.
	want := `sum(rate(cpu_seconds{app="checkout"}[2m]))`
	if got := field(res, "PromQL"); got != want {
		t.Errorf("PromQL = %q, want %q", got, want)
	}
	qs, _ := rec.seen()
	if len(qs) != 3 {
		t.Fatalf("queries = %q, want now, then and range", qs)
	}
	for _, s := range qs {
		if !strings.HasSuffix(s, want) {
			t.Errorf("query %q, want %q", s, want)
		}
	}
	if !strings.HasPrefix(res.Text, "checkout CPU: 0.25 cores now, unchanged from 2m ago") {
		t.Errorf("text = %q", res.Text)
	}

	// A day: "now" is the last 5m; the chart's 24m step needs a 24m range.
	rec.mu.Lock()
	rec.queries = nil
	rec.mu.Unlock()
	res, err = q.Run(context.Background(), action.Request{Params: action.Params{"service": "checkout", "metric": "error_rate", "window": "1d"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := field(res, "PromQL"); !strings.Contains(got, `http_requests_total{service="checkout",code=~"5.."}[5m]`) {
		t.Errorf("PromQL = %q", got)
	}
	if got := field(res, "Chart PromQL"); !strings.Contains(got, "[24m]") {
		t.Errorf("chart PromQL = %q", got)
	}
	if !strings.Contains(res.Text, "25.0% now, unchanged from 1d ago") {
		t.Errorf("text = %q", res.Text)
	}
}

// hang is a Prometheus that accepts the connection and never answers. stop
// releases its handlers and closes it; it also runs on cleanup.
func hang(t *testing.T) (srv *httptest.Server, stop func()) {
	release := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(release)
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

func TestHangingPrometheus(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, stop := hang(t)
	q := newQuery(t, Options{URL: srv.URL, Timeout: 300 * time.Millisecond})
	for _, p := range []action.Params{errorRate, {"service": "checkout"}, {"query": "up"}} {
		err := runErr(q, p)
		if !errors.Is(err, action.ErrUnavailable) {
			t.Fatalf("%v: err = %v, want ErrUnavailable", p, err)
		}
		host := strings.TrimPrefix(srv.URL, "http://")
		if want := "Prometheus at " + host + " did not answer within 300ms"; !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want %q", err, want)
		}
	}
	stop()
	q.CloseIdleConnections()
	// Every goroutine the queries started has ended: poll, bounded, since
	// connection goroutines notice the close asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestCallerCancellation(t *testing.T) {
	srv, _ := hang(t)
	q := newQuery(t, Options{URL: srv.URL, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err := q.Run(ctx, action.Request{Params: errorRate})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestServerErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		kind   error
		want   string
	}{
		{"500", 500, "internal error", action.ErrUnavailable, "answered server error: 500"},
		{"503", 503, "overloaded", action.ErrUnavailable, "answered server error: 503"},
		{"garbage JSON", 200, `{"status":"success","data":{"resultType":"vec`, action.ErrUnavailable, "not the Prometheus API"},
		{"HTML", 200, `<html>login</html>`, action.ErrUnavailable, "not the Prometheus API"},
		{"bad_data", 400, `{"status":"error","errorType":"bad_data","error":"1:9: parse error: unclosed left parenthesis"}`, action.ErrInvalid,
			"Prometheus rejected the query: 1:9: parse error: unclosed left parenthesis"},
		{"execution", 422, `{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}`, action.ErrInvalid,
			"found duplicate series"},
		{"query timeout", 503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`, action.ErrUnavailable,
			"server error: 503"},
		{"unauthorized", 401, "Unauthorized", action.ErrForbidden, "refused Parley's credentials (401 Unauthorized)"},
		{"forbidden", 403, "Forbidden", action.ErrForbidden, "(403 Forbidden)"},
		{"not found", 404, "404 page not found", action.ErrNotConfigured, "check prometheus.url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}))
			defer srv.Close()
			q := newQuery(t, Options{URL: srv.URL})
			for _, p := range []action.Params{errorRate, {"query": "up"}} {
				err := runErr(q, p)
				if !errors.Is(err, c.kind) {
					t.Fatalf("%v: err = %v, want %v", p, err, c.kind)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("err = %q, want it to contain %q", err, c.want)
				}
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	q := newQuery(t, Options{URL: "http://" + addr})
	err = runErr(q, errorRate)
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "Prometheus at "+addr+" refused the connection") {
		t.Errorf("err = %v", err)
	}
}

// TestSecretsNeverInErrors sends credentials to servers that fail in every
// way, one of them echoing the request back, and checks no error shows a
// secret, while the credentials did reach the server.
func TestSecretsNeverInErrors(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.WriteHeader(http.StatusBadRequest)
		// A proxy that quotes the request in its error.
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"bad request from %s with %s"}`, r.URL.String(), r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	rec := &recorder{value: "1"}
	ok := httptest.NewServer(rec)
	defer ok.Close()
	hung, _ := hang(t)
	refused := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return "http://" + l.Addr().String()
	}()

	withUser := func(raw string) string {
		u, _ := url.Parse(raw)
		u.User = url.UserPassword("parley", password)
		return u.String()
	}
	configs := []Options{}
	for _, base := range []string{echo.URL, hung.URL, refused, ok.URL} {
		configs = append(configs,
			Options{URL: base, BearerToken: token, Timeout: 200 * time.Millisecond},
			Options{URL: base, Username: "parley", Password: password, Timeout: 200 * time.Millisecond},
			Options{URL: withUser(base), Timeout: 200 * time.Millisecond},
		)
	}
	for _, o := range configs {
		q := newQuery(t, o)
		for _, p := range []action.Params{errorRate, {"query": "up"}, {"query": "sum(", "window": "1h"}} {
			_, err := q.Run(context.Background(), action.Request{Params: p})
			if err == nil {
				continue
			}
			for _, secret := range []string{token, password, base64.StdEncoding.EncodeToString([]byte("parley:" + password))} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
			if strings.Contains(o.URL, echo.URL[7:]) && !errors.Is(err, action.ErrInvalid) {
				t.Errorf("scrubbed error lost its kind: %v", err)
			}
		}
	}

	_, auth := rec.seen()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("parley:"+password))
	var sawBearer, sawBasic int
	for _, a := range auth {
		switch a {
		case "Bearer " + token:
			sawBearer++
		case basic:
			sawBasic++
		default:
			t.Errorf("Authorization header %q", a)
		}
	}
	if sawBearer == 0 || sawBasic < 2 { // basic from the options and from the URL
		t.Errorf("bearer sent %d times, basic %d times", sawBearer, sawBasic)
	}
}
