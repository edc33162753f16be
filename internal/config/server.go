package config

import (
	"fmt"
	"time"
)

// Server tunes the HTTP listener of `parley serve` (health, metrics,
// reports, the Slack Events API and the Alertmanager webhook). Every
// field has a safe default; set one only when something in front of
// Parley needs it (a load balancer's idle timeout, a slow link, a burst of
// webhooks).
type Server struct {
	// ReadTimeout bounds reading one whole request, headers and body
	// (default 15s): a client that trickles a body is dropped after it.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response, from the end of the
	// request's headers (default 30s).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request (default 60s). Behind a load balancer, make it longer
	// than the balancer's own idle timeout.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxUnauthenticated is how many requests to the endpoints that take
	// a body or are open to anyone (Slack events, the Alertmanager webhook,
	// metrics, reports) may be in progress at once (default 64). Past it
	// Parley answers 503 with Retry-After at once, so slow clients cannot
	// tie it up. Health and readiness probes are never limited.
	MaxUnauthenticated int `yaml:"max_unauthenticated"`
}

// Server defaults.
const (
	DefaultReadTimeout        = 15 * time.Second
	DefaultWriteTimeout       = 30 * time.Second
	DefaultIdleTimeout        = 60 * time.Second
	DefaultMaxUnauthenticated = 64
)

// Audit tunes the audit log's checks.
type Audit struct {
	// VerifyTail is how many of the newest audit events are verified at
	// every start (default 1,000; `parley audit verify` checks them all).
	VerifyTail int `yaml:"verify_tail"`
}

// DefaultVerifyTail is Audit.VerifyTail's default.
const DefaultVerifyTail = 1000

func (s *Server) defaults() {
	if s.ReadTimeout == 0 {
		s.ReadTimeout = Duration(DefaultReadTimeout)
	}
	if s.WriteTimeout == 0 {
		s.WriteTimeout = Duration(DefaultWriteTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if s.MaxUnauthenticated == 0 {
		s.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
}

func (s *Server) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, d := range []struct {
		name string
		v    Duration
	}{{"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout}, {"idle_timeout", s.IdleTimeout}} {
		if d.v.Std() < 100*time.Millisecond || d.v.Std() > time.Hour {
			bad("server.%s: %s is not between 100ms and 1h", d.name, d.v.Std())
		}
	}
	if s.MaxUnauthenticated < 1 || s.MaxUnauthenticated > 100000 {
		bad("server.max_unauthenticated: %d is not between 1 and 100000", s.MaxUnauthenticated)
	}
	return errs
}

func (a *Audit) defaults() {
	if a.VerifyTail == 0 {
		a.VerifyTail = DefaultVerifyTail
	}
}

func (a *Audit) validate() []error {
	if a.VerifyTail < 1 {
		return []error{fmt.Errorf("audit.verify_tail: %d is not a positive number of events", a.VerifyTail)}
	}
	return nil
}
