package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/parley-chatops/parley/internal/config"
)

// Limits of the HTTP listener that no operator needs to change.
const (
	// maxHeaderBytes bounds a request's header block (Go's default is
	// 1 MiB; Slack's and Alertmanager's headers are a few hundred bytes).
	maxHeaderBytes = 64 << 10
	// maxHeaderWait bounds reading a request's headers, within
	// server.read_timeout.
	maxHeaderWait = 10 * time.Second
	// maxQueryBody is the body limit of the GET endpoints, which read
	// none.
	maxQueryBody = 4 << 10
	// maxAdapterBody is the body limit of a chat platform's endpoint
	// (Slack's Events API posts at most a few kilobytes; the adapter
	// refuses more than 1 MiB too).
	maxAdapterBody = 1 << 20
)

// newHTTPServer returns the server for every listener serve opens: each
// request is bounded in time (headers, whole request, response, idle
// keep-alive) and in header size; routes bound their bodies and
// concurrency themselves (limitBody, gate).
func newHTTPServer(s config.Server, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(maxHeaderWait, s.ReadTimeout.Std()),
		ReadTimeout:       s.ReadTimeout.Std(),
		WriteTimeout:      s.WriteTimeout.Std(),
		IdleTimeout:       s.IdleTimeout.Std(),
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// limitBody refuses, before any work, a request whose declared body is
// larger than n bytes, and stops reading a body at n bytes (the handler's
// read fails; Go answers 413 when it had not answered yet).
func limitBody(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// gate caps how many requests are in progress at once on the routes it
// wraps: those anyone can reach before any credential is checked. Past the
// cap a request is answered 503 with Retry-After at once and its
// connection closed, so slow clients cannot hold every handler.
type gate struct {
	slots chan struct{}
	log   *slog.Logger
}

func newGate(n int, log *slog.Logger) *gate {
	return &gate{slots: make(chan struct{}, n), log: log}
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.slots <- struct{}{}:
			defer func() { <-g.slots }()
			h.ServeHTTP(w, r)
		default:
			g.log.Warn("too many requests in progress; refused with 503", "path", r.URL.Path, "remote", r.RemoteAddr,
				"limit", cap(g.slots))
			w.Header().Set("Retry-After", "1")
			refuse(w, http.StatusServiceUnavailable, "busy, retry later")
		}
	})
}

// refuse answers status without reading the request's body, and closes
// the connection at once: the server would otherwise wait for the rest of
// the body (up to the read timeout) to keep the connection alive.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
	if err := http.NewResponseController(w).SetReadDeadline(time.Now()); err != nil {
		// A writer that cannot set deadlines (not net/http's own): the
		// server's read timeout still ends the connection.
		return
	}
}
