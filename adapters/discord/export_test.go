package discord

import (
	"slices"
	"strings"
)

// Exports for the external end-to-end tests (package discord_test), which
// wire the adapter to a whole Parley instance from internal/app; an
// internal test could not import internal/app without an import cycle.

// FakeDiscord is the fake Discord REST API and gateway of fake_test.go.
type FakeDiscord = fakeDiscord

// FakeRequest is one REST request the fake received, failed ones included.
type FakeRequest = fakeRequest

// Fixtures shared with the internal tests.
const (
	TestToken   = testToken
	TestAppID   = testAppID
	TestBotID   = testBotID
	TestGuild   = testGuild
	TestChannel = testChannel
)

// REST routes of the fake, as recorded in FakeRequest.Route.
const (
	RouteCreateMessage = "POST /api/v9/channels/{ch}/messages"
	RouteEditMessage   = "PATCH /api/v9/channels/{ch}/messages/{mid}"
	RouteStartThread   = "POST /api/v9/channels/{ch}/messages/{mid}/threads"
	RouteCallback      = "POST /api/v9/interactions/{id}/{token}/callback"
	RouteWebhookEdit   = "PATCH /api/v9/webhooks/{app}/{token}/messages/{mid}"
	RouteFollowup      = "POST /api/v9/webhooks/{app}/{token}"
)

// NewFakeDiscord starts a fake Discord on 127.0.0.1 until the test ends.
var NewFakeDiscord = newFakeDiscord

// URL is the REST base URL (Options.APIBase).
func (f *fakeDiscord) URL() string { return f.srv.URL }

// GatewayWSURL is the gateway's WebSocket URL (Options.GatewayURL).
func (f *fakeDiscord) GatewayWSURL() string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/gw"
}

// Dispatch sends an op 0 gateway event with the next sequence number.
func (f *fakeDiscord) Dispatch(typ string, d any) { f.dispatch(typ, d) }

// Drop cuts the gateway connection as a network failure would.
func (f *fakeDiscord) Drop() { f.drop() }

// SetReplay makes a RESUME resend the last event the client acknowledged
// too (at-least-once delivery).
func (f *fakeDiscord) SetReplay(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replay = on
}

// SetLimit answers the nth request of a route 429 while limit says so.
func (f *fakeDiscord) SetLimit(limit func(route string, n int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
}

// Limited is how many 429s the fake has served.
func (f *fakeDiscord) Limited() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limited
}

// IssueToken makes an interaction token valid, as Discord does when it
// sends the interaction.
func (f *fakeDiscord) IssueToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = true
}

// Requests returns the recorded requests, in arrival order; with routes
// given, only those.
func (f *fakeDiscord) Requests(routes ...string) []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FakeRequest
	for _, r := range f.reqs {
		if len(routes) == 0 || slices.Contains(routes, r.Route) {
			out = append(out, r)
		}
	}
	return out
}

// CallbackType is the type of the interaction response sent for the
// interaction id, 0 when none was.
func (f *fakeDiscord) CallbackType(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interaction[id]
}

// Original is the id of an interaction's @original message, once edited.
func (f *fakeDiscord) Original(token string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.originals[token]
}

// Sessions returns how many times the gateway was identified to and
// resumed, and "READY"/"RESUMED" for each established connection.
func (f *fakeDiscord) Sessions() (identifies, resumes int, ready []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.identifies, f.resumes, slices.Clone(f.ready)
}

// OnStarted sets a hook that Run calls once start-up has finished (token
// checked, gateway READY, /parley registered). Set it before Run.
func OnStarted(a *Adapter, f func()) { a.started = f }
