package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck asks a running serve whether it is alive (GET /healthz)
// or ready (--ready: GET /readyz) and exits 0 or 1: the container image's
// HEALTHCHECK, since the distroless image has no curl or wget. It checks
// --url, or else the address serve listens on with the same --config and
// environment (a wildcard host means this machine).
func cmdHealthcheck(ctx context.Context, args []string, env Env) error {
	fs := newFlags("healthcheck", env)
	rawURL := fs.String("url", "", "URL to GET (default: /healthz on the configured listen address)")
	configFile := fs.String("config", "", "configuration file whose listen address to check")
	ready := fs.Bool("ready", false, "check /readyz (started, store reachable) instead of /healthz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	target := *rawURL
	if target == "" {
		// The same resolution as serve: the file's listen, else
		// PARLEY_LISTEN, else the default.
		cfg, err := loadConfig(*configFile, env)
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
		path := "/healthz"
		if *ready {
			path = "/readyz"
		}
		target = "http://" + localAddr(cfg.Listen) + path
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("%w: --url %q: %v", errUsage, target, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", target, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512)) // for the message only
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %s %s", target, resp.Status, text)}
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", target, text)
	return nil
}

// localAddr turns a listen address into one to dial on this machine: a
// wildcard or empty host becomes the loopback address.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
