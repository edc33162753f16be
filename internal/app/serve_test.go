package app

// Tests of serve's HTTP listener: the routes, limits and handlers serve
// mounts (openHTTP), with the real Slack Events API handler and
// Alertmanager webhook, in process. (The binary cannot be started with a
// chat platform configured here: its adapters must reach Slack's or
// Discord's API before serve is up.)

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// serveConfig is a configuration with short server limits, so that a test
// sees them act within seconds (the defaults are longer; see README), a
// Slack app in Events API mode and the Alertmanager webhook. Secrets are
// random, made at run time.
func serveConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	secrets := map[string]string{}
	for _, k := range []string{"SLACK_BOT", "SLACK_SIGNING", "AM_TOKEN"} {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		secrets[k] = hex.EncodeToString(b[:])
	}
	secrets["SLACK_BOT"] = "xoxb-" + secrets["SLACK_BOT"]
	yml := `listen: 127.0.0.1:0
database: ` + filepath.Join(t.TempDir(), "p.db") + `
evals: {reports_dir: ` + t.TempDir() + `}
server: {read_timeout: 2s, write_timeout: 2s, idle_timeout: 1s, max_unauthenticated: 8}
slack: {mode: events, bot_token: {env: SLACK_BOT}, signing_secret: {env: SLACK_SIGNING}}
incidents:
  auth: {bearer_token: {env: AM_TOKEN}}
  default_channel: "slack:C0INCIDENTS"
` + extra
	cfg, err := config.Parse([]byte(yml), "serve-test.yaml", func(k string) string { return secrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startHTTP serves cfg's routes as cmdServe does, until the test ends, and
// returns the address and the token of the webhook.
func startHTTP(t *testing.T, cfg *config.Config, log *slog.Logger) string {
	t.Helper()
	ctx := context.Background()
	metrics := telemetry.New(telemetry.Options{})
	p, err := Build(ctx, Options{Config: cfg, Metrics: metrics, Logger: log}, &mux{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	_, handlers, err := buildAdapters(ctx, cfg, p, log)
	if err != nil {
		t.Fatal(err)
	}
	incidents, err := buildIncidents(p, &mux{}, metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	handlers[webhookPath] = incidents.Handler()
	srv, ln, err := openHTTP(cfg, p, metrics, handlers, func() (bool, []string) { return true, nil }, log)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// slowClient is one connection held open as long as the server lets it.
type slowClient struct {
	kind   string
	status string        // the response's status line, if any came
	retry  bool          // the response had Retry-After
	lasted time.Duration // from connecting until the server closed
	err    error
}

// TestServeDropsSlowAndIdleClients holds 40 connections the way slow or
// idle clients do: 16 trickle an unsigned Slack events body a byte at a
// time, 12 trickle their request headers, 12 make one request and then sit
// idle on the keep-alive connection. Each must be closed by the server
// within its timeout (read 2s, idle 1s, here), the bodies beyond the cap
// of 8 requests in progress must be refused at once with 503 and
// Retry-After, and /healthz must answer all along.
func TestServeDropsSlowAndIdleClients(t *testing.T) {
	logs := &logBuffer{}
	addr := startHTTP(t, serveConfig(t, ""), slog.New(slog.NewTextHandler(logs, nil)))

	// A client still connected this long after it began was held, not
	// dropped: the longest timeout (2s) plus a wide margin for a loaded
	// machine.
	const held = 8 * time.Second
	kinds := make([]string, 0, 40)
	for i := range 40 {
		switch {
		case i < 16:
			kinds = append(kinds, "trickled body")
		case i < 28:
			kinds = append(kinds, "trickled headers")
		default:
			kinds = append(kinds, "idle keep-alive")
		}
	}
	results := make([]slowClient, len(kinds))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, kind := range kinds {
		wg.Go(func() {
			<-start
			results[i] = holdSlow(addr, kind, held+2*time.Second)
		})
	}

	// Health checks, each on a new connection, while the clients hold on.
	healthDone := make(chan struct{})
	var healthOK int
	var healthErrs []string
	go func() {
		defer close(healthDone)
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
			resp, err := client.Get("http://" + addr + "/healthz")
			switch {
			case err != nil:
				healthErrs = append(healthErrs, err.Error())
			case resp.StatusCode != http.StatusOK:
				resp.Body.Close()
				healthErrs = append(healthErrs, resp.Status)
			default:
				resp.Body.Close()
				healthOK++
			}
		}
	}()
	close(start)
	wg.Wait()
	<-healthDone

	refused := 0
	for i, r := range results {
		t.Logf("client %2d %-16s %-34q closed after %s", i, r.kind, r.status, r.lasted.Round(10*time.Millisecond))
		if r.err != nil {
			t.Errorf("client %d (%s): %v", i, r.kind, r.err)
			continue
		}
		if r.lasted >= held {
			t.Errorf("client %d (%s) was held %s, not dropped", i, r.kind, r.lasted.Round(time.Millisecond))
		}
		if strings.Contains(r.status, "503") {
			refused++
			// Refused at once: not held until the read timeout, and told
			// when to come back.
			if r.lasted >= 2*time.Second || !r.retry {
				t.Errorf("client %d refused with 503 after %s, Retry-After %v; want at once, with Retry-After", i, r.lasted, r.retry)
			}
		}
	}
	if refused < 16-8 {
		t.Errorf("%d trickled bodies were refused with 503, want at least %d past the cap of 8", refused, 16-8)
	}
	if len(healthErrs) > 0 || healthOK < 10 {
		t.Errorf("/healthz while the clients held on: %d answered, failures %v", healthOK, healthErrs)
	}
	if !strings.Contains(logs.String(), "too many requests in progress") {
		t.Errorf("the refusals were not logged:\n%s", logs.String())
	}
}

// holdSlow connects and behaves as kind until the server closes the
// connection or limit passes.
func holdSlow(addr, kind string, limit time.Duration) slowClient {
	r := slowClient{kind: kind}
	began := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		r.err = err
		return r
	}
	defer conn.Close()
	conn.SetDeadline(began.Add(limit))
	closed := make(chan struct{})
	go func() { // read whatever comes until the server closes
		defer close(closed)
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if strings.HasPrefix(line, "HTTP/1.1 ") && r.status == "" {
				r.status = strings.TrimSpace(line)
			}
			if strings.HasPrefix(line, "Retry-After: ") {
				r.retry = true
			}
			if err != nil {
				r.lasted = time.Since(began)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					r.lasted = limit // never closed
				}
				return
			}
		}
	}()
	trickle := func(data string) {
		for _, b := range []byte(data) {
			if _, err := conn.Write([]byte{b}); err != nil {
				return // the server closed it
			}
			select {
			case <-closed:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	switch kind {
	case "trickled body":
		// No signature: Slack's handler must read the whole body before
		// it can tell, which is what a slow client exploits.
		head := "POST /slack/events HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\n" +
			"Content-Length: 10000\r\n\r\n"
		if _, err := io.WriteString(conn, head); err != nil {
			r.err = err
			return r
		}
		trickle(strings.Repeat(" ", 10000))
	case "trickled headers":
		trickle("GET /healthz HTTP/1.1\r\nHost: parley\r\nX-Slow: " + strings.Repeat("a", 1000))
	case "idle keep-alive":
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: parley\r\n\r\n"); err != nil {
			r.err = err
			return r
		}
	}
	<-closed
	return r
}

// TestServeBodyLimits: a body over an endpoint's limit is refused with 413
// before the handler does anything, whatever its credentials.
func TestServeBodyLimits(t *testing.T) {
	cfg := serveConfig(t, "  max_body: 2048\n")
	addr := startHTTP(t, cfg, slog.New(slog.DiscardHandler))
	do := func(method, path string, size int, auth bool) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(make([]byte, size)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer "+cfg.Incidents.Auth.BearerToken.Value())
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path string
		size         int
		auth         bool
		want         int
	}{
		{"POST", "/webhooks/alertmanager", 4096, true, http.StatusRequestEntityTooLarge},
		{"POST", "/webhooks/alertmanager", 4096, false, http.StatusRequestEntityTooLarge}, // before the credentials
		{"POST", "/webhooks/alertmanager", 100, false, http.StatusUnauthorized},
		{"POST", "/slack/events", 2 << 20, false, http.StatusRequestEntityTooLarge},
		{"POST", "/slack/events", 100, false, http.StatusUnauthorized},
		{"GET", "/metrics", 64 << 10, false, http.StatusRequestEntityTooLarge},
		{"GET", "/healthz", 64 << 10, false, http.StatusRequestEntityTooLarge},
		{"GET", "/healthz", 0, false, http.StatusOK},
	} {
		if got := do(c.method, c.path, c.size, c.auth); got != c.want {
			t.Errorf("%s %s with a %d-byte body (credentials: %v): %d, want %d", c.method, c.path, c.size, c.auth, got, c.want)
		}
	}
}

// The server's limits come from the configuration.
func TestServeServerLimits(t *testing.T) {
	cfg := serveConfig(t, "")
	srv := newHTTPServer(cfg.Server, http.NewServeMux(), slog.New(slog.DiscardHandler))
	if srv.ReadTimeout != 2*time.Second || srv.WriteTimeout != 2*time.Second || srv.IdleTimeout != time.Second ||
		srv.ReadHeaderTimeout != 2*time.Second || srv.MaxHeaderBytes != maxHeaderBytes {
		t.Errorf("server limits: read %s, header %s, write %s, idle %s, header bytes %d", srv.ReadTimeout,
			srv.ReadHeaderTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	def := newHTTPServer(config.Default().Server, http.NewServeMux(), slog.New(slog.DiscardHandler))
	if def.ReadTimeout != config.DefaultReadTimeout || def.IdleTimeout != config.DefaultIdleTimeout ||
		def.ReadHeaderTimeout != maxHeaderWait || def.WriteTimeout != config.DefaultWriteTimeout {
		t.Errorf("default limits: %+v", def)
	}
}
