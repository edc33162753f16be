package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// adapterRetryMax is the longest wait between two starts of an adapter
// that failed (1s, 2s, 4s ... up to it).
const adapterRetryMax = time.Minute

// adapterStatus is what this replica knows about each chat adapter, for
// /readyz and the parley_chat_connected gauge: a platform that is down
// (at start, or later) does not stop serve; it is started again and
// reported here meanwhile.
type adapterStatus struct {
	now     func() time.Time
	metrics *telemetry.Metrics
	// onUp is called when an adapter that was down runs again (the
	// incident manager then retries what waits for it at once).
	onUp func(name string)

	mu     sync.Mutex
	order  []string
	states map[string]*adapterState
}

type adapterState struct {
	a          chat.Adapter
	leaderOnly bool
	active     bool      // its Run is in progress here
	failure    string    // the last failure, while it is not running
	since      time.Time // when the failure began
}

func newAdapterStatus(now func() time.Time, metrics *telemetry.Metrics) *adapterStatus {
	if now == nil {
		now = time.Now
	}
	return &adapterStatus{now: now, metrics: metrics, states: map[string]*adapterState{}}
}

// add registers an adapter; leaderOnly ones run only on the leader.
func (s *adapterStatus) add(a chat.Adapter, leaderOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, a.Name())
	s.states[a.Name()] = &adapterState{a: a, leaderOnly: leaderOnly}
}

func (s *adapterStatus) set(name string, f func(*adapterState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.states[name]; st != nil {
		f(st)
	}
}

// takes reports whether the adapter runs and takes messages.
func (st *adapterState) takes() bool {
	if !st.active {
		return false
	}
	if r, ok := st.a.(running); ok {
		return r.Running()
	}
	return true
}

// lines says, one line an adapter, whether it runs here: "slack: running",
// "discord: down since 10:02:03 UTC (discord: check bot token: ...);
// retrying", "slack: runs on the leader".
func (s *adapterStatus) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.order))
	for _, name := range s.order {
		st := s.states[name]
		switch {
		case st.takes():
			out = append(out, name+": running")
		case st.failure != "":
			out = append(out, fmt.Sprintf("%s: down since %s (%s); retrying", name, st.since.UTC().Format("15:04:05 UTC"), st.failure))
		case st.active:
			out = append(out, name+": starting")
		case st.leaderOnly:
			out = append(out, name+": runs on the leader")
		default:
			out = append(out, name+": not running")
		}
	}
	return out
}

// starting reports whether an adapter that runs on every replica (the
// Slack Events API) is starting for the first time: the replica is not
// ready for its events yet. One that failed to start is not waited for:
// the replica is ready without it (the webhook must be reachable), and
// /readyz says it is down.
func (s *adapterStatus) starting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.states {
		if !st.leaderOnly && st.failure == "" && !st.takes() {
			return true
		}
	}
	return false
}

// report sets the parley_chat_connected gauge of every adapter.
func (s *adapterStatus) report() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.order {
		st := s.states[name]
		ok := st.takes()
		if ok && st.failure != "" {
			st.failure = "" // running again
			if s.onUp != nil {
				s.onUp(name) // quick: it only wakes waiting deliveries
			}
		}
		s.metrics.ChatConnected(name, ok)
	}
}

// watch keeps the gauge current until ctx ends.
func (s *adapterStatus) watch(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.report()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, name := range s.order {
				s.metrics.ChatConnected(name, false)
			}
			s.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// supervise runs a until ctx ends. When Run fails (the platform is down,
// unreachable or refuses the token) or ends on its own, the failure is
// logged and reported (status, /readyz, the gauge) and a is started again
// after a backoff: serve keeps serving the webhook, the other adapters and
// the incident outbox meanwhile.
func supervise(ctx context.Context, a chat.Adapter, h chat.Handler, status *adapterStatus, log *slog.Logger) {
	name := a.Name()
	for attempt := 1; ; attempt++ {
		status.set(name, func(st *adapterState) { st.active = true })
		started := time.Now()
		err := a.Run(ctx, h)
		status.set(name, func(st *adapterState) { st.active = false })
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > adapterRetryMax {
			attempt = 1 // it ran a good while: start the backoff afresh
		}
		msg := "stopped without an error"
		if err != nil {
			msg = oneLine(err.Error())
		}
		wait := min(time.Second<<min(attempt-1, 10), adapterRetryMax)
		status.set(name, func(st *adapterState) {
			if st.failure == "" {
				st.since = status.now()
			}
			st.failure = msg
		})
		status.report()
		log.Error("chat adapter is down; serve goes on (the webhook takes alerts, incident messages wait in the outbox) and starts it again",
			"adapter", name, "retry_in", wait, "err", msg)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
