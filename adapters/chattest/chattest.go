// Package chattest is the shared test harness of Parley's chat adapters:
// fake Slack and Discord servers on 127.0.0.1 that speak the platforms'
// real wire protocols (the Slack Web API, Socket Mode and the Events API's
// payloads; Discord's REST API and gateway), since the real services cannot
// be reached from tests, and a Recorder that stands for the pipeline. The
// adapters' own tests, their end-to-end tests with a whole Parley, and the
// application's tests (two replicas behind the Events API, parley doctor)
// drive the real slack-go and discordgo clients against these fakes.
//
// Payload shapes follow the platforms' documentation
// (https://api.slack.com/apis, https://discord.com/developers/docs); every
// token-shaped fixture is built from parts, so no token is in the source.
package chattest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
)

// Wait bounds every wait in the fakes: far above what a working adapter
// needs, so only a broken one reaches it. No test depends on timing.
const Wait = 20 * time.Second

// Recorder is a chat.Handler standing for the pipeline: it records every
// message and, when Reply is set, answers each one the way the pipeline
// would (through the adapter under test).
type Recorder struct {
	// Reply, when set, runs for each message before it is recorded.
	Reply func(ctx context.Context, m chat.Message)

	mu   sync.Mutex
	msgs []chat.Message
	ch   chan chat.Message
	wake chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{ch: make(chan chat.Message, 256), wake: make(chan struct{})}
}

// Handle implements chat.Handler.
func (r *Recorder) Handle(ctx context.Context, m chat.Message) {
	if r.Reply != nil {
		r.Reply(ctx, m)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	r.ch <- m
}

// Next returns the next message handled, in order, failing the test when
// none comes.
func (r *Recorder) Next(t testing.TB) chat.Message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(Wait):
		t.Fatal("no message handled")
		return chat.Message{}
	}
}

// NextText is Next, failing unless the message's text is want. Tests send
// a sentinel after messages that must be ignored: it must come next.
func (r *Recorder) NextText(t testing.TB, want string) chat.Message {
	t.Helper()
	m := r.Next(t)
	if m.Text != want {
		t.Fatalf("handled %q (%+v), want %q", m.Text, m, want)
	}
	return m
}

// Messages returns every message handled so far.
func (r *Recorder) Messages() []chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Message(nil), r.msgs...)
}

// Count is how many messages with this event id were handled.
func (r *Recorder) Count(eventID string) int {
	n := 0
	for _, m := range r.Messages() {
		if m.EventID == eventID {
			n++
		}
	}
	return n
}

// WaitFor waits until cond holds, checking after every message handled
// and every few milliseconds.
func (r *Recorder) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, cond, func() <-chan struct{} {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.wake
	})
}

// waitFor re-checks cond whenever changed's channel closes, and every 10ms
// in case the change came from elsewhere, until Wait has passed.
func waitFor(t testing.TB, what string, cond func() bool, changed func() <-chan struct{}) {
	t.Helper()
	deadline := time.NewTimer(Wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
