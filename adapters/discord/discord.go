// Package discord is Parley's Discord adapter. People mention the bot, talk
// to it in bound channels or DMs, or use the /parley slash command; each of
// these becomes a chat.Message for the same pipeline (routing, policy,
// confirmation, audit) as every other adapter, and each chat.Reply is
// rendered as a Discord message: text, an embed for fields, tables and code,
// buttons for confirmations, attachments for charts.
//
// Replies go into a thread started from the request message (falling back
// to a reply that references it), or, for slash commands and buttons, into
// the interaction's deferred response and follow-ups while its 15-minute
// token lasts. Events are acknowledged within Discord's 3-second limit
// before the pipeline runs, and deduplicated by id across gateway resumes.
//
// The gateway and REST protocol is spoken by github.com/bwmarrin/discordgo;
// this package adds start-up checks with clear errors, routing of replies,
// rendering within Discord's limits, per-channel ordering of sends and
// secret-free errors and logs.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/parley-chatops/parley/internal/chat"
)

// Intents are the gateway intents the adapter asks for. Message Content is
// privileged: it must be enabled for the application in the Developer Portal.
const Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages |
	discordgo.IntentsDirectMessages | discordgo.IntentsMessageContent

// Application flags in READY that say the Message Content intent is enabled
// (https://discord.com/developers/docs/resources/application#application-object-application-flags).
const (
	flagGatewayMessageContent        = 1 << 18
	flagGatewayMessageContentLimited = 1 << 19
)

// interactionTTL is how long an interaction token may be used, less a margin
// for clock skew and slow sends; later replies go to the channel instead.
const interactionTTL = 14 * time.Minute

// Options configures the adapter. Token is required.
type Options struct {
	Token         string   // bot token (with or without "Bot "); never logged
	ApplicationID string   // application id; empty: taken from READY
	GuildIDs      []string // guilds to register /parley in (instant); empty: global
	// BoundChannels are channels where every message is for Parley, without
	// a mention. Threads inherit their parent's binding.
	BoundChannels map[string]bool

	// APIURL sends REST calls meant for https://discord.com to this base URL
	// instead (a test server, an egress proxy). GatewayURL, when set, is used
	// instead of the one GET /gateway returns.
	APIURL     string
	GatewayURL string

	// State keeps what compact button custom_ids stand for, across
	// restarts and replicas (the application passes the shared database's
	// *chatstate.Store). Nil keeps them in memory: buttons whose value does
	// not fit Discord's 100-character custom_id then stop working when the
	// process restarts.
	State State

	Logger *slog.Logger
	Now    func() time.Time
	// OnUndelivered is called when a reply finally cannot be delivered (after
	// discordgo's rate-limit and 502 retries), so the app can audit it. The
	// error carries no secret.
	OnUndelivered func(ctx context.Context, r chat.Reply, err error)

	CallTimeout  time.Duration // one Send or REST call, rate-limit waits included; default 30s
	StartTimeout time.Duration // token check, gateway handshake, command registration; default 30s
	MaxHandlers  int           // messages handled at once; default 16
	DedupeSize   int           // event ids remembered to drop redeliveries; default 4096
	// DrainTimeout is how long Run, once its context ends, lets messages in
	// flight finish (their replies still sent) before cancelling them;
	// default 10s.
	DrainTimeout time.Duration
}

// Adapter is the Discord chat.Adapter. Send may be used before and while Run
// runs; Run may be called again once it has returned (a new leadership, a
// start again after the gateway could not be reached).
type Adapter struct {
	opts   Options
	log    *slog.Logger
	s      *discordgo.Session
	state  State // Options.State, or memory
	dialer *gatewayDialer
	token  string // bare token, for masking

	running atomic.Bool

	mu         sync.Mutex
	appID      string
	botID      string
	ready      *discordgo.Ready
	handler    chat.Handler
	runCtx     context.Context    // Run's: no new events once it ends
	handlerCtx context.Context    // handlers': outlives runCtx by the drain period
	handlerEnd context.CancelFunc // cancels handlerCtx
	closing    bool
	up         bool                    // start finished, stop not begun
	seen       *lru[struct{}]          // event ids handled ("m:"+message id, "i:"+interaction id)
	channels   *lru[string]            // channel id -> parent id when it is a thread, "" when not
	ourThreads *lru[struct{}]          // threads this adapter started or answered in
	origins    *lru[origin]            // request message id -> where it came from
	inters     *lru[*interactionRef]   // interaction id -> token and state
	messages   *lru[sentMessage]       // message id -> how to edit it
	chanLocks  map[string]*channelLock // serialises sends per channel

	wg  sync.WaitGroup
	sem chan struct{}

	started func() // tests: called once start-up has finished
}

// origin is what Send needs to know about a request message.
type origin struct {
	dm       bool   // DMs have no threads: reply by reference
	noThread bool   // starting a thread failed once: reply by reference
	title    string // thread name
}

// interactionRef is a slash command or button click whose token can still
// carry replies.
type interactionRef struct {
	ix        *discordgo.Interaction
	expires   time.Time
	component bool   // a button click: its @original is the button's message
	acked     bool   // the deferred response was sent
	original  string // slash command: id of the edited @original (ephemeral), once edited
	anchor    string // id of the first public answer, where replies go once the token expires
	unusable  bool   // the token was refused: use the channel
}

// sentMessage remembers where a message lives so an update can edit it.
type sentMessage struct {
	channel string
	via     *interactionRef // edit through this interaction's webhook
	webhook string          // message id in that webhook ("@original" or the id)
}

type channelLock struct {
	mu   sync.Mutex
	refs int
}

// New validates the options and prepares a session; nothing is dialled
// until Run (or Send).
func New(opts Options) (*Adapter, error) {
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(opts.Token), "Bot "))
	if token == "" {
		return nil, errors.New("discord: a bot token is required")
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("discord: the bot token contains whitespace")
	}
	if opts.ApplicationID != "" && !snowflake(opts.ApplicationID) {
		return nil, fmt.Errorf("discord: application id %q is not a Discord id", opts.ApplicationID)
	}
	for _, g := range opts.GuildIDs {
		if !snowflake(g) {
			return nil, fmt.Errorf("discord: guild id %q is not a Discord id", g)
		}
	}
	for c := range opts.BoundChannels {
		if !snowflake(c) {
			return nil, fmt.Errorf("discord: bound channel %q is not a Discord id", c)
		}
	}
	var base *url.URL
	if opts.APIURL != "" {
		u, err := url.Parse(opts.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("discord: API base %q is not an http(s) URL", opts.APIURL)
		}
		base = u
	}
	if opts.GatewayURL != "" {
		u, err := url.Parse(opts.GatewayURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return nil, fmt.Errorf("discord: gateway URL %q is not a ws(s) URL", opts.GatewayURL)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.MaxHandlers <= 0 {
		opts.MaxHandlers = 16
	}
	if opts.DedupeSize <= 0 {
		opts.DedupeSize = 4096
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}

	s, err := discordgo.New("Bot " + token)
	if err != nil {
		return nil, errors.New("discord: cannot create session")
	}
	dialer := &gatewayDialer{timeout: opts.StartTimeout}
	s.Client = &http.Client{
		Timeout:   opts.CallTimeout,
		Transport: &rewriteTransport{base: base, gateway: opts.GatewayURL, next: http.DefaultTransport},
	}
	s.Dialer = dialer.dialer()
	s.Identify.Intents = Intents
	s.Identify.Compress = false
	s.Compress = false
	s.SyncEvents = true // handlers only enqueue; the adapter owns the goroutines
	s.LogLevel = -1     // discordgo logs with the standard logger; the adapter logs its events with slog instead
	s.StateEnabled = true

	var state State = &memoryState{}
	if opts.State != nil {
		state = opts.State
	}
	a := &Adapter{
		opts: opts, log: opts.Logger.With("adapter", chat.Discord), s: s, dialer: dialer, token: token, state: state,
		appID:      opts.ApplicationID,
		seen:       newLRU[struct{}](opts.DedupeSize),
		channels:   newLRU[string](4096),
		ourThreads: newLRU[struct{}](4096),
		origins:    newLRU[origin](4096),
		inters:     newLRU[*interactionRef](1024),
		messages:   newLRU[sentMessage](4096),
		chanLocks:  make(map[string]*channelLock),
		sem:        make(chan struct{}, opts.MaxHandlers),
	}
	s.AddHandler(a.onReady)
	s.AddHandler(a.onResumed)
	s.AddHandler(a.onConnect)
	s.AddHandler(a.onDisconnect)
	s.AddHandler(a.onRateLimit)
	s.AddHandler(a.onMessageCreate)
	s.AddHandler(a.onInteractionCreate)
	s.AddHandler(a.onThreadCreate)
	return a, nil
}

func snowflake(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Name implements chat.Adapter.
func (a *Adapter) Name() string { return chat.Discord }

// Running reports whether Run has connected to the gateway and takes
// messages.
func (a *Adapter) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running.Load() && a.up && !a.closing
}

// HoldsConnection is true: the gateway connection is one replica's at a
// time (several would each receive every event).
func (a *Adapter) HoldsConnection() bool { return true }

// Run checks the token, connects to the gateway (failing with a clear error
// when the Message Content intent is missing), registers /parley, and hands
// messages to h until ctx ends. It then disconnects, taking no new events,
// and waits for the messages in flight: for up to DrainTimeout they run on
// (their replies are delivered), then they are cancelled.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("discord: Run is already running")
	}
	defer a.running.Store(false)
	if err := a.start(ctx, h); err != nil {
		a.stop()
		if ctx.Err() != nil {
			return nil // stopped while starting: not a failure
		}
		return err
	}
	if a.started != nil {
		a.started()
	}
	<-ctx.Done()
	a.log.Info("disconnecting")
	a.stop()
	return nil
}

func (a *Adapter) start(ctx context.Context, h chat.Handler) error {
	sctx, cancel := context.WithTimeout(ctx, a.opts.StartTimeout)
	defer cancel()
	// A Run after an earlier one resumes the gateway session when it
	// can (RESUMED, no new READY): the READY of that session still holds.
	a.mu.Lock()
	a.closing, a.handler, a.handlerEnd = false, nil, nil
	a.mu.Unlock()
	a.s.ShouldReconnectOnError = true

	me, err := a.s.User("@me", discordgo.WithContext(sctx))
	if err != nil {
		return startError("check bot token", err, a.token)
	}
	hctx, stopHandlers := context.WithCancel(context.WithoutCancel(ctx))
	a.mu.Lock()
	a.botID, a.handler, a.runCtx = me.ID, h, ctx
	a.handlerCtx, a.handlerEnd = hctx, stopHandlers
	a.mu.Unlock()

	// Open blocks until READY (or a close); the dialer's deadline bounds it.
	if err := a.s.Open(); err != nil {
		return startError("connect to gateway", err, a.token)
	}
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if ready == nil {
		return errors.New("discord: connect to gateway: no READY from the gateway")
	}
	if app := ready.Application; app != nil && app.Flags&(flagGatewayMessageContent|flagGatewayMessageContentLimited) == 0 {
		return fmt.Errorf("discord: connect to gateway: %w", ErrMessageContentIntent)
	}
	a.mu.Lock()
	if a.appID == "" && ready.Application != nil {
		a.appID = ready.Application.ID
	}
	appID := a.appID
	a.mu.Unlock()
	if appID == "" {
		return errors.New("discord: no application id: set it in the options (Developer Portal → General Information → Application ID)")
	}
	if err := a.registerCommands(sctx, appID); err != nil {
		return err
	}
	a.log.Info("connected", "bot_user", me.ID, "application", appID, "guilds", len(ready.Guilds), "command_guilds", len(a.opts.GuildIDs))
	a.mu.Lock()
	a.up = true
	a.mu.Unlock()
	return nil
}

// stop closes the gateway and waits for the handlers in flight, cancelling
// them once DrainTimeout has passed.
func (a *Adapter) stop() {
	a.mu.Lock()
	a.closing, a.up = true, false
	stopHandlers := a.handlerEnd
	a.mu.Unlock()
	a.s.ShouldReconnectOnError = false
	if err := a.s.Close(); err != nil {
		a.log.Debug("close gateway", "err", mask(err.Error(), a.token))
	}
	if stopHandlers == nil { // start failed before any handler could run
		a.wg.Wait()
		return
	}
	defer stopHandlers()
	drained := make(chan struct{})
	go func() {
		a.wg.Wait()
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

// spawn runs f in a goroutine that stop waits for; nothing starts once the
// adapter is closing.
func (a *Adapter) spawn(f func(ctx context.Context, h chat.Handler)) {
	a.mu.Lock()
	if a.closing || a.handler == nil || a.runCtx.Err() != nil {
		a.mu.Unlock()
		return
	}
	ctx, h := a.handlerCtx, a.handler
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		f(ctx, h)
	}()
}

// handle passes msg to h, at most MaxHandlers at once.
func (a *Adapter) handle(ctx context.Context, h chat.Handler, msg chat.Message) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-a.sem }()
	h.Handle(ctx, msg)
}

// firstSeen reports whether the event id is new, remembering it. Gateway
// resumes and redeliveries repeat events; each is handled once.
func (a *Adapter) firstSeen(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen.add(key, struct{}{})
}

// --- gateway events -------------------------------------------------------

func (a *Adapter) onReady(_ *discordgo.Session, r *discordgo.Ready) {
	a.dialer.release()
	a.mu.Lock()
	a.ready = r
	if r.User != nil && a.botID == "" {
		a.botID = r.User.ID
	}
	a.mu.Unlock()
	a.log.Debug("gateway ready", "session_resumable", r.SessionID != "", "guilds", len(r.Guilds))
}

func (a *Adapter) onResumed(_ *discordgo.Session, _ *discordgo.Resumed) {
	a.dialer.release()
	a.log.Info("gateway session resumed")
}

func (a *Adapter) onConnect(_ *discordgo.Session, _ *discordgo.Connect) {
	a.log.Debug("gateway connected")
}

func (a *Adapter) onDisconnect(_ *discordgo.Session, _ *discordgo.Disconnect) {
	a.mu.Lock()
	closing := a.closing
	a.mu.Unlock()
	if !closing {
		a.log.Warn("gateway disconnected; reconnecting and resuming")
	}
}

func (a *Adapter) onRateLimit(_ *discordgo.Session, rl *discordgo.RateLimit) {
	var after time.Duration
	if rl.TooManyRequests != nil {
		after = rl.TooManyRequests.RetryAfter
	}
	a.log.Info("rate limited; retrying", "route", redactURL(rl.URL), "retry_after", after)
}

func (a *Adapter) onThreadCreate(_ *discordgo.Session, t *discordgo.ThreadCreate) {
	if t.Channel == nil {
		return
	}
	a.rememberChannel(t.Channel)
}

func (a *Adapter) onMessageCreate(_ *discordgo.Session, m *discordgo.MessageCreate) {
	if m.Message == nil || m.Author == nil || m.Author.Bot || m.WebhookID != "" {
		return // other bots and webhooks (and Parley itself) are never requests
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return
	}
	a.mu.Lock()
	botID := a.botID
	a.mu.Unlock()
	if m.Author.ID == botID {
		return
	}
	if !a.firstSeen("m:" + m.ID) {
		a.log.Debug("dropping repeated message", "message", m.ID)
		return
	}
	msg := m.Message
	a.spawn(func(ctx context.Context, h chat.Handler) {
		out, ok := a.toMessage(ctx, msg, botID)
		if !ok {
			return
		}
		a.handle(ctx, h, out)
	})
}

// toMessage converts a gateway message, reporting false when it is not for
// Parley: in a guild, a message must mention the bot, reply to one of its
// messages, be in a bound channel, or be in a thread Parley started or
// answered in (so "confirm K7Q2" under a prompt needs no mention). A
// message with only attachments is read like any other; its text is what
// was typed.
func (a *Adapter) toMessage(ctx context.Context, m *discordgo.Message, botID string) (chat.Message, bool) {
	mentioned := mentions(m, botID) || repliesTo(m, botID)
	dm := m.GuildID == ""
	channel, thread := m.ChannelID, ""
	if !dm {
		parent, isThread := a.threadParent(ctx, m.ChannelID, mentioned || a.opts.BoundChannels[m.ChannelID])
		if isThread {
			channel, thread = parent, m.ChannelID
		}
		a.mu.Lock()
		_, ours := a.ourThreads.get(m.ChannelID)
		a.mu.Unlock()
		if !mentioned && !a.opts.BoundChannels[channel] && !ours {
			return chat.Message{}, false
		}
	}
	text := strings.TrimSpace(stripMention(m.Content, botID))
	if thread == "" {
		thread = m.ID
		a.mu.Lock()
		a.origins.put(m.ID, origin{dm: dm, title: threadTitle(text)})
		a.mu.Unlock()
	}
	when := m.Timestamp
	if when.IsZero() {
		when = a.opts.Now()
	}
	out := chat.Message{
		Platform: chat.Discord, Channel: channel, Thread: thread,
		User: m.Author.ID, UserName: displayName(m.Author, m.Member),
		Text: text, EventID: m.ID, Time: when,
	}
	if m.Member != nil {
		out.Groups = roleGroups(m.Member.Roles)
	}
	return out, true
}

// repliesTo reports whether m is a Discord reply to one of the bot's
// messages.
func repliesTo(m *discordgo.Message, botID string) bool {
	rm := m.ReferencedMessage
	return botID != "" && rm != nil && rm.Author != nil && rm.Author.ID == botID
}

func mentions(m *discordgo.Message, botID string) bool {
	if botID == "" {
		return false
	}
	for _, u := range m.Mentions {
		if u != nil && u.ID == botID {
			return true
		}
	}
	return strings.Contains(m.Content, "<@"+botID+">") || strings.Contains(m.Content, "<@!"+botID+">")
}

func stripMention(s, botID string) string {
	if botID == "" {
		return s
	}
	s = strings.ReplaceAll(s, "<@!"+botID+">", " ")
	s = strings.ReplaceAll(s, "<@"+botID+">", " ")
	return strings.Join(strings.Fields(s), " ")
}

func displayName(u *discordgo.User, m *discordgo.Member) string {
	switch {
	case m != nil && m.Nick != "":
		return m.Nick
	case u.GlobalName != "":
		return u.GlobalName
	default:
		return u.Username
	}
}

// roleGroups turns member roles into policy groups.
func roleGroups(roles []string) []string {
	var out []string
	for _, r := range roles {
		out = append(out, rolePrefix+":"+r)
	}
	return out
}

func threadTitle(text string) string {
	t := oneLine(text)
	if t == "" {
		return "Parley"
	}
	return cutRunes("Parley: "+t, 90)
}

// threadParent tells whether channel is a thread and its parent, from the
// adapter's cache, then discordgo's state, then (when lookup is set) the API.
func (a *Adapter) threadParent(ctx context.Context, channel string, lookup bool) (string, bool) {
	a.mu.Lock()
	parent, ok := a.channels.get(channel)
	a.mu.Unlock()
	if ok {
		return parent, parent != ""
	}
	if c, err := a.s.State.Channel(channel); err == nil && c != nil {
		return a.rememberChannel(c)
	}
	if !lookup {
		return "", false
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	c, err := a.s.Channel(channel, discordgo.WithContext(cctx))
	if err != nil {
		a.log.Debug("channel lookup failed", "channel", channel, "err", describe("get channel", err, a.token))
		return "", false
	}
	return a.rememberChannel(c)
}

func (a *Adapter) rememberChannel(c *discordgo.Channel) (string, bool) {
	parent := ""
	if c.IsThread() {
		parent = c.ParentID
	}
	a.mu.Lock()
	a.channels.put(c.ID, parent)
	if parent != "" && c.OwnerID != "" && c.OwnerID == a.botID {
		// Parley started it: known from the thread itself, so this holds
		// after a restart (READY's guilds list active threads) too.
		a.ourThreads.put(c.ID, struct{}{})
	}
	a.mu.Unlock()
	return parent, parent != ""
}

func (a *Adapter) onInteractionCreate(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
	i := ic.Interaction
	if i == nil || (i.Type != discordgo.InteractionApplicationCommand && i.Type != discordgo.InteractionMessageComponent) {
		return
	}
	if !a.firstSeen("i:" + i.ID) {
		a.log.Debug("dropping repeated interaction", "interaction", i.ID)
		return
	}
	ref := &interactionRef{ix: i, expires: a.opts.Now().Add(interactionTTL), component: i.Type == discordgo.InteractionMessageComponent}
	a.spawn(func(ctx context.Context, h chat.Handler) {
		// Acknowledge first: Discord allows 3 seconds, the pipeline may take longer.
		// A slash command's "thinking…" is ephemeral: refusals and help
		// then reach only the asker; answers for everyone are follow-ups.
		// A click is acknowledged without a new message.
		resp := &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
		}
		if ref.component {
			resp = &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}
		}
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := a.s.InteractionRespond(i, resp, discordgo.WithContext(actx))
		cancel()
		a.mu.Lock()
		if err != nil {
			ref.unusable = true
		} else {
			ref.acked = true
		}
		a.inters.put(i.ID, ref)
		if ref.component && i.Message != nil && err == nil {
			// Updates of the button's message go through this click's token.
			a.messages.put(i.Message.ID, sentMessage{channel: i.ChannelID, via: ref, webhook: "@original"})
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Warn("interaction not acknowledged", "interaction", i.ID, "err", describe("acknowledge interaction", err, a.token, i.Token))
		}
		msg, ok := a.interactionMessage(ctx, i)
		if !ok {
			return
		}
		a.handle(ctx, h, msg)
	})
}

func (a *Adapter) interactionMessage(ctx context.Context, i *discordgo.Interaction) (chat.Message, bool) {
	user, member := i.User, i.Member
	if member != nil && member.User != nil {
		user = member.User
	}
	if user == nil || user.Bot {
		return chat.Message{}, false
	}
	channel := i.ChannelID
	if i.GuildID != "" {
		if parent, ok := a.threadParent(ctx, i.ChannelID, true); ok {
			channel = parent
		}
	}
	msg := chat.Message{
		Platform: chat.Discord, Channel: channel, Thread: i.ID,
		User: user.ID, UserName: displayName(user, member),
		EventID: i.ID, Time: a.opts.Now(),
	}
	if member != nil {
		msg.Groups = roleGroups(member.Roles)
	}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		text, err := commandText(i.ApplicationCommandData())
		if err != nil {
			a.log.Warn("unreadable slash command", "interaction", i.ID, "err", err)
			msg.Text = "help"
			return msg, true
		}
		msg.Text = text
	case discordgo.InteractionMessageComponent:
		act, value, ok := parseCustomID(i.MessageComponentData().CustomID)
		if !ok {
			a.log.Debug("ignoring foreign component", "interaction", i.ID)
			return chat.Message{}, false
		}
		click := &chat.ButtonClick{Action: act, Value: a.buttonValue(ctx, value)}
		if i.Message != nil {
			click.MessageID = i.Message.ID
		}
		msg.Action = click
	}
	return msg, true
}
