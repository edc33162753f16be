// Package slack is Parley's Slack adapter. People mention the bot in a
// channel, message it directly, or talk in a channel bound to it; every
// message becomes a chat.Message for the same pipeline as every other
// adapter, and every chat.Reply is rendered as Block Kit and posted in the
// request's thread.
//
// Inbound, Socket Mode is the default (no public URL needed); the Events API
// over HTTP is the alternative, with request signatures verified. Either way
// each envelope is acknowledged at once and handled once: events are
// de-duplicated by event id and by message, across reconnects and Slack's
// retried deliveries.
//
// Outbound, each channel has its own paced queue (about one message a
// second), 429 Retry-After is honoured, transient failures are retried with
// backoff, and the audit-trail steps of a thread are coalesced into one
// message updated in place. A reply that finally cannot be delivered is
// handed to OnUndelivered so that nothing is dropped silently.
package slack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Inbound modes.
const (
	ModeSocket = "socket" // Socket Mode over a WebSocket (default)
	ModeEvents = "events" // Events API over HTTP
)

// Options configures the adapter. BotToken is always needed; Socket Mode
// also needs AppToken, the Events API SigningSecret.
type Options struct {
	BotToken      string // xoxb-…
	AppToken      string // xapp-… with connections:write (Socket Mode)
	SigningSecret string // Events API request signing secret
	Mode          string // ModeSocket (default) or ModeEvents

	// EventsListen, in events mode, makes Run serve the events endpoint on
	// this address itself. Leave it empty to mount EventsHandler on the
	// application's own HTTP server instead.
	EventsListen string

	APIURL string // Web API base URL; empty for Slack's own (tests set it)

	// BoundChannels are channel ids where every message is handled, not
	// only mentions of the bot.
	BoundChannels map[string]bool
	// State remembers the threads Parley answered in, across restarts and
	// replicas, so a reply there needs no mention (the application passes
	// the shared database's *chatstate.Store). Nil remembers them in memory.
	State State
	// GroupRefresh is how often the user-group cache is refreshed (10m).
	GroupRefresh time.Duration

	Logger *slog.Logger
	Now    func() time.Time
	// OnUndelivered is called when a reply finally cannot be delivered, so
	// the application can audit it.
	OnUndelivered func(ctx context.Context, r chat.Reply, err error)

	// Delivery tuning; zero means the default.
	PostInterval time.Duration // least time between calls per channel (1s)
	RetryBackoff time.Duration // first backoff after a transient failure (500ms)
	MaxAttempts  int           // tries of a call failing transiently (5)
	CallTimeout  time.Duration // deadline of each Web API call (15s)
	MaxHandlers  int           // messages handled at once (32)
	DedupeSize   int           // event keys remembered to drop redeliveries (20000)
	// DrainTimeout is how long Run, once its context ends, lets messages in
	// flight finish and queued replies go out before cancelling them (10s).
	DrainTimeout time.Duration
}

// Adapter is the Slack adapter. It implements chat.Adapter.
type Adapter struct {
	opts    Options
	log     *slog.Logger
	api     *slack.Client
	secrets []string

	out     *outbox
	seen    *lru
	groups  *groupCache
	threads *threadBook
	private privateRequests
	http    *http.Client // Web API calls and response_url posts
	// instance tells this adapter's claims from other replicas'.
	instance string

	mu        sync.Mutex
	running   bool
	handler   chat.Handler
	runCtx    context.Context // Run's receiving: no new messages once it ends
	hctx      context.Context // handlers' and deliveries': outlives runCtx by the drain period
	handling  sync.WaitGroup
	sem       chan struct{}
	botUserID string
	botID     string
}

var _ chat.Adapter = (*Adapter)(nil)

// New validates the options and returns an adapter. It makes no network
// calls: Run checks the tokens against Slack when it starts.
func New(opts Options) (*Adapter, error) {
	if opts.Mode == "" {
		opts.Mode = ModeSocket
	}
	switch {
	case opts.BotToken == "":
		return nil, fmt.Errorf("slack: a bot token (xoxb-) is required: %w", action.ErrNotConfigured)
	case !strings.HasPrefix(opts.BotToken, "xoxb-"):
		return nil, fmt.Errorf("slack: the bot token must be a bot token (xoxb-…): %w", action.ErrNotConfigured)
	case opts.Mode != ModeSocket && opts.Mode != ModeEvents:
		return nil, fmt.Errorf("slack: mode %q: want %q or %q: %w", opts.Mode, ModeSocket, ModeEvents, action.ErrNotConfigured)
	case opts.Mode == ModeSocket && !strings.HasPrefix(opts.AppToken, "xapp-"):
		return nil, fmt.Errorf("slack: Socket Mode needs an app-level token (xapp-) with connections:write: %w", action.ErrNotConfigured)
	case opts.Mode == ModeEvents && opts.SigningSecret == "":
		return nil, fmt.Errorf("slack: the Events API needs the app's signing secret: %w", action.ErrNotConfigured)
	case opts.GroupRefresh < 0 || opts.PostInterval < 0 || opts.RetryBackoff < 0 || opts.MaxAttempts < 0 || opts.CallTimeout < 0 || opts.MaxHandlers < 0 || opts.DrainTimeout < 0 || opts.DedupeSize < 0:
		return nil, fmt.Errorf("slack: negative durations or counts in options: %w", action.ErrNotConfigured)
	}
	if opts.GroupRefresh == 0 {
		opts.GroupRefresh = 10 * time.Minute
	}
	if opts.PostInterval == 0 {
		opts.PostInterval = time.Second
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 500 * time.Millisecond
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 5
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 15 * time.Second
	}
	if opts.MaxHandlers == 0 {
		opts.MaxHandlers = 32
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.DedupeSize == 0 {
		opts.DedupeSize = 20000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bound := make(map[string]bool, len(opts.BoundChannels))
	for id, on := range opts.BoundChannels {
		if on {
			bound[id] = true
		}
	}
	opts.BoundChannels = bound

	a := &Adapter{
		opts:     opts,
		log:      opts.Logger.With("adapter", "slack"),
		secrets:  nonEmpty(opts.BotToken, opts.AppToken, opts.SigningSecret),
		seen:     newLRU(opts.DedupeSize),
		sem:      make(chan struct{}, opts.MaxHandlers),
		http:     &http.Client{Timeout: opts.CallTimeout + 5*time.Second},
		instance: rand.Text(),
	}
	apiOpts := []slack.Option{
		slack.OptionHTTPClient(a.http),
		slack.OptionLog(debugLog{a}),
	}
	if opts.AppToken != "" {
		apiOpts = append(apiOpts, slack.OptionAppLevelToken(opts.AppToken))
	}
	if opts.APIURL != "" {
		u := opts.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		apiOpts = append(apiOpts, slack.OptionAPIURL(u))
	}
	a.api = slack.New(opts.BotToken, apiOpts...)
	a.out = newOutbox(a)
	a.groups = newGroupCache(a)
	a.threads = newThreadBook(a, opts.State)
	return a, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Name implements chat.Adapter.
func (a *Adapter) Name() string { return chat.Slack }

// HoldsConnection reports whether the adapter holds a connection to Slack
// that one replica at a time should own: true in Socket Mode. With the
// Events API Slack calls Parley over HTTP, and every replica serves it.
func (a *Adapter) HoldsConnection() bool { return a.opts.Mode == ModeSocket }

// Running reports whether the adapter takes messages: Run has passed its
// start-up checks and has not begun to stop. A replica serving the Events
// API is ready only then (before, an event would be answered 503).
func (a *Adapter) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handler != nil
}

// Run checks the tokens, then receives messages and hands each to h until
// ctx ends. It then takes no new messages and lets those in flight finish,
// their replies delivered, for up to DrainTimeout before cancelling them.
// It owns the delivery queues: Send works only while Run runs.
// It returns nil when ctx ends and an error when it cannot start or the
// connection fails for good (for example a revoked token).
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	if h == nil {
		return errors.New("slack: Run needs a handler")
	}
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("slack: Run is already running")
	}
	a.running = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
	}()

	if err := a.check(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hctx, stopHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHandlers()
	a.groups.refresh(runCtx)

	a.out.open(hctx)
	a.mu.Lock()
	a.handler, a.runCtx, a.hctx = h, runCtx, hctx
	a.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { a.groups.loop(runCtx) })

	var err error
	switch a.opts.Mode {
	case ModeEvents:
		err = a.runEvents(runCtx)
	default:
		err = a.runSocket(runCtx)
	}
	cancel()
	wg.Wait()

	a.mu.Lock()
	a.handler = nil // refuse new messages
	a.mu.Unlock()
	a.drain(stopHandlers)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// drain waits for the handlers in flight and then for the delivery queues,
// cancelling both (stopHandlers) once DrainTimeout has passed.
func (a *Adapter) drain(stopHandlers context.CancelFunc) {
	drained := make(chan struct{})
	go func() {
		a.handling.Wait()
		a.out.close()
		close(drained)
	}()
	timer := time.NewTimer(a.opts.DrainTimeout)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		a.log.Warn("messages still in flight after the drain period; cancelling them", "drain", a.opts.DrainTimeout)
		stopHandlers()
		<-drained
	}
}

// Send implements chat.Sender. It queues the reply on its channel's queue
// and waits until Slack has it, returning the message ts; an audit step
// (Kind audit) joins its thread's trail message and returns that message's
// ts. On a final failure it calls OnUndelivered and returns the error.
func (a *Adapter) Send(ctx context.Context, r chat.Reply) (string, error) {
	if r.Channel == "" {
		err := fmt.Errorf("slack: reply without a channel: %w", action.ErrInvalid)
		a.undelivered(ctx, r, err)
		return "", err
	}
	var (
		ts  string
		err error
	)
	if _, private := a.private.get(r.Thread); r.Kind == chat.KindAudit && r.UpdateOf == "" && !private {
		ts, err = a.out.sendAudit(ctx, r)
	} else {
		ts, err = a.out.send(ctx, r)
	}
	if err != nil {
		a.undelivered(ctx, r, err)
		return "", err
	}
	return ts, nil
}

func (a *Adapter) undelivered(ctx context.Context, r chat.Reply, err error) {
	a.log.Warn("reply not delivered", "channel", r.Channel, "thread", r.Thread, "kind", string(r.Kind), "err", err)
	if a.opts.OnUndelivered != nil {
		a.opts.OnUndelivered(context.WithoutCancel(ctx), r, err)
	}
}

// check verifies the tokens before anything else: auth.test with the bot
// token and its scopes, and, in Socket Mode, the app-level token.
func (a *Adapter) check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	resp, err := a.api.AuthTestContext(cctx)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			return a.wrap("the bot token was refused by auth.test", err, action.ErrNotConfigured)
		}
		return a.wrap("auth.test", err, action.ErrUnavailable)
	}
	a.mu.Lock()
	a.botUserID, a.botID = resp.UserID, resp.BotID
	a.mu.Unlock()
	if header := resp.Header.Get("X-OAuth-Scopes"); header != "" {
		missing, optional := MissingScopes(header)
		if len(missing) > 0 {
			return fmt.Errorf("slack: the bot token lacks %s (needed to start: %s; add them under OAuth & Permissions and reinstall the app): %w",
				strings.Join(missing, ", "), strings.Join(scopeNames(true), ", "), action.ErrNotConfigured)
		}
		if len(optional) > 0 {
			a.log.Warn("the bot token lacks scopes some features need; parley doctor says which", "missing", strings.Join(optional, ", "))
		}
	} else {
		a.log.Warn("auth.test sent no X-OAuth-Scopes header; scopes not checked")
	}
	if a.opts.Mode == ModeSocket {
		if _, _, err := a.api.StartSocketModeContext(cctx); err != nil {
			var se slack.SlackErrorResponse
			if errors.As(err, &se) {
				return fmt.Errorf("slack: Socket Mode needs an app-level token (xapp-) with connections:write; apps.connections.open said %s: %w",
					a.redact(se.Err), action.ErrNotConfigured)
			}
			return a.wrap("apps.connections.open", err, action.ErrUnavailable)
		}
	}
	a.log.Info("connected to slack", "team", resp.TeamID, "bot_user", resp.UserID, "mode", a.opts.Mode)
	return nil
}

// apiError is a Slack failure with every secret removed from its text. It
// unwraps to the Slack error and to an action error kind.
type apiError struct {
	op    string
	msg   string
	cause error
	kind  error
}

func (e *apiError) Error() string   { return "slack: " + e.op + ": " + e.msg }
func (e *apiError) Unwrap() []error { return []error{e.cause, e.kind} }

func (a *Adapter) wrap(op string, err error, kind error) error {
	return &apiError{op: op, msg: a.redact(err.Error()), cause: err, kind: kind}
}

// redact removes the tokens and the signing secret from s.
func (a *Adapter) redact(s string) string {
	for _, secret := range a.secrets {
		s = strings.ReplaceAll(s, secret, "<secret>")
	}
	return s
}

// debugLog routes slack-go's own (debug-only) log lines into slog, redacted.
type debugLog struct{ a *Adapter }

func (d debugLog) Output(_ int, s string) error {
	d.a.log.Debug(d.a.redact(strings.TrimSpace(s)), "source", "slack-go")
	return nil
}

// bot returns the bot's own user and bot ids, known after Run's checks.
func (a *Adapter) bot() (userID, botID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botUserID, a.botID
}

func (a *Adapter) bound(channel string) bool { return a.opts.BoundChannels[channel] }

// sortedCopy returns a sorted copy of ss.
func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
