package slack

import (
	"fmt"

	"github.com/gorilla/websocket"
)

// Exports for the external end-to-end tests (package slack_test), which
// wire the adapter to a whole Parley instance from internal/app; an
// internal test could not import internal/app without an import cycle.

// FakeSlack is the fake Slack Web API and Socket Mode server of fake_test.go.
type FakeSlack = fakeSlack

// APICall is one chat.postMessage or chat.update the fake answered.
type APICall = apiCall

// Fixtures shared with the internal tests.
const (
	TestBotToken = testBotToken
	TestAppToken = testAppToken
	BotUserID    = botUserID
)

var (
	// NewFakeSlack starts a fake Slack on 127.0.0.1 until the test ends.
	NewFakeSlack = newFakeSlack
	// EventPayload wraps an inner event in an event_callback.
	EventPayload = eventPayload
	// MentionEvent is an app_mention inner event.
	MentionEvent = mentionEvent
	// ClickPayload is a block_actions interactive payload.
	ClickPayload = clickPayload
)

// URL is the Web API base URL (Options.APIURL).
func (f *fakeSlack) URL() string { return f.url() }

// WaitConnected waits for the nth Socket Mode connection (1-based).
func (f *fakeSlack) WaitConnected(n int) { f.waitConnected(n) }

// Envelope sends a Socket Mode envelope on the latest connection.
func (f *fakeSlack) Envelope(envelopeID, typ, payload string) { f.envelope(envelopeID, typ, payload) }

// Redeliver sends an envelope the way Slack retries one it saw no ack
// for: a new envelope id, the same payload, retry_attempt and retry_reason
// set.
func (f *fakeSlack) Redeliver(envelopeID, typ, payload string, attempt int, reason string) {
	f.t.Helper()
	f.mu.Lock()
	c := f.conns[len(f.conns)-1]
	f.mu.Unlock()
	msg := fmt.Sprintf(`{"envelope_id":%q,"type":%q,"payload":%s,"accepts_response_payload":false,"retry_attempt":%d,"retry_reason":%q}`,
		envelopeID, typ, payload, attempt, reason)
	f.wsWriteLock.Lock()
	defer f.wsWriteLock.Unlock()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		f.t.Fatalf("write envelope: %v", err)
	}
}

// DropConnection closes the latest socket abruptly.
func (f *fakeSlack) DropConnection() { f.dropConnection() }

// WaitAck waits until the envelope is acknowledged.
func (f *fakeSlack) WaitAck(envelopeID string) { f.waitAck(envelopeID) }

// Snapshot returns the successful posts and updates so far.
func (f *fakeSlack) Snapshot() (posts, updates []APICall) { return f.snapshot() }

// SetFail makes the fake fail calls: for the nth call of method, a status
// (429 with retryAfter, or another HTTP status), or a Slack error code.
func (f *fakeSlack) SetFail(fail func(method string, n int) (status int, retryAfter, slackErr string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// Calls is how many calls of method the fake has seen, failed ones included.
func (f *fakeSlack) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}
