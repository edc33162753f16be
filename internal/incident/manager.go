package incident

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/redact"
)

// Auditor records audit events; *audit.Recorder implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) (audit.Event, error)
}

// Defaults of Options.
const (
	DefaultMaxBody        = 1 << 20
	DefaultQueueSize      = 256
	DefaultGroupWait      = 3 * time.Second
	DefaultSourceTimeout  = 8 * time.Second
	DefaultSummaryTimeout = 20 * time.Second
	DefaultSendTimeout    = 30 * time.Second
	DefaultStateTimeout   = 10 * time.Second
	DefaultWindow         = "1h"
	DefaultRolloutWindow  = time.Hour
	DefaultMaxGathers     = 4
)

// maxSendAttempts bounds how often one flush of a group is tried before it
// is given up (and audited as reply.failed).
const maxSendAttempts = 3

// Options configure a Manager.
type Options struct {
	// Sender delivers messages; replies are routed by Platform. Required.
	Sender chat.Sender
	// DB holds the incidents table (created by Run). Required.
	DB *sql.DB
	// Rebind rewrites the '?' placeholders for DB's dialect
	// (store.Dialect.Rebind); nil keeps them (SQLite).
	Rebind func(string) string
	// Audit records every summary, update and suggestion. Required.
	Audit Auditor
	// Auth is the webhook's credentials. Required.
	Auth Auth

	// Routes pick a group's channel, first match wins; DefaultChannel
	// takes the rest. A group with neither is logged, counted and audited
	// as incident.unrouted.
	Routes         []Route
	DefaultChannel string

	// Sources are the read actions consulted (incident.diagnose's).
	Sources []Source
	// Inventory finds a service's namespaces when the alert has no
	// namespace label; may be nil.
	Inventory intent.InventorySource
	// Rollouts finds a rollout shortly before the alert; may be nil.
	Rollouts RolloutLister
	// Summarizer writes the diagnosis; nil means the deterministic one.
	Summarizer Summarizer
	// Silence offers a "Silence 1h" button on firing groups; nil offers
	// none (no Alertmanager API configured).
	Silence *SilenceOffer
	// Redact cleans what arrives and what is said: alert labels and
	// annotations on arrival, evidence, summaries and every message
	// (default redact.Redact).
	Redact func(string) string

	Metrics Metrics
	Logger  *slog.Logger
	// Now is the clock for what messages and records say (default
	// time.Now). Pacing uses the monotonic clock.
	Now func() time.Time

	MaxBody        int64         // largest webhook body (1 MiB)
	QueueSize      int           // notifications waiting for Run (256); a full queue answers 503
	GroupWait      time.Duration // least time between two edits of a group's message (3s)
	SourceTimeout  time.Duration // per source (8s)
	SummaryTimeout time.Duration // the model's diagnosis (20s)
	SendTimeout    time.Duration // each flush's chat calls (30s)
	// StateTimeout bounds each read and write of the incidents table
	// (10s), on its own clock: a save after slow chat calls still gets
	// its full time.
	StateTimeout  time.Duration
	Window        string        // the window the sources look at ("1h")
	RolloutWindow time.Duration // how long before the alert a rollout counts (1h)
	MaxGathers    int           // groups gathered at once (4)
}

func (o *Options) check() error {
	switch {
	case o.Sender == nil:
		return errors.New("incident: a chat sender is required")
	case o.DB == nil:
		return errors.New("incident: a database is required")
	case o.Audit == nil:
		return errors.New("incident: an audit recorder is required")
	case o.MaxBody < 0 || o.QueueSize < 0 || o.GroupWait < 0 || o.SourceTimeout < 0 || o.SummaryTimeout < 0 ||
		o.SendTimeout < 0 || o.StateTimeout < 0 || o.RolloutWindow < 0 || o.MaxGathers < 0:
		return errors.New("incident: negative sizes or durations in options")
	}
	if err := o.Auth.check(); err != nil {
		return fmt.Errorf("incident: webhook auth: %w", err)
	}
	if o.DefaultChannel != "" {
		if _, _, ok := splitChannel(o.DefaultChannel); !ok {
			return fmt.Errorf("incident: default channel %q is not platform:id", o.DefaultChannel)
		}
	}
	for i, r := range o.Routes {
		if _, _, ok := splitChannel(r.Channel); !ok {
			return fmt.Errorf("incident: route %d: channel %q is not platform:id", i, r.Channel)
		}
	}
	if o.Window == "" {
		o.Window = DefaultWindow
	}
	if _, err := action.ParseDuration(o.Window); err != nil {
		return fmt.Errorf("incident: window %q: %w", o.Window, err)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.GroupWait, DefaultGroupWait)
	def(&o.SourceTimeout, DefaultSourceTimeout)
	def(&o.SummaryTimeout, DefaultSummaryTimeout)
	def(&o.SendTimeout, DefaultSendTimeout)
	def(&o.StateTimeout, DefaultStateTimeout)
	def(&o.RolloutWindow, DefaultRolloutWindow)
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxGathers == 0 {
		o.MaxGathers = DefaultMaxGathers
	}
	if o.Rebind == nil {
		o.Rebind = func(q string) string { return q }
	}
	if o.Redact == nil {
		o.Redact = redactText
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Manager owns the incident channels: the webhook queue, one state per
// alert group, and the goroutines that post and edit the groups' messages.
type Manager struct {
	o         Options
	log       *slog.Logger
	st        *stateStore
	redact    func(string) string
	hasLogs   bool // a Loki source is configured: "Show error logs" is offered
	canGather bool // there are sources to consult
	gathers   chan struct{}

	qmu     sync.RWMutex // guards closed against sends on queue
	closed  bool
	queue   chan delivery
	started atomic.Bool
	handled atomic.Int64  // notifications taken from the queue and merged (for tests)
	closing chan struct{} // closed when Run's context ends: flush now, then stop
	// runCtx ends with closing; gathering runs under it.
	runCtx context.Context
	stop   context.CancelFunc

	mu       sync.Mutex
	groups   map[string]*group // groups with a running worker
	unrouted map[string]string // group key -> signature already reported
	wg       sync.WaitGroup
}

// delivery is one accepted notification.
type delivery struct {
	p        Payload
	received time.Time // Options.Now, for records
	arrived  time.Time // monotonic, for latency
}

// group is one alert group while its worker runs. Fields are guarded by
// Manager.mu.
type group struct {
	key       string
	gen       int // incremented when the group starts a new incident
	receiver  string
	channel   string // platform:id
	requestID string
	msgID     string
	thread    string
	firstSeen time.Time
	snap      snapshot          // everything known, posted or not
	posted    map[string]string // fingerprint -> status the message last showed
	postedTr  int               // truncated count the message last showed
	dirty     bool
	pending   time.Time // arrival of the first change not yet posted in a first message
	lastSend  time.Time // monotonic
	gathering bool
	images    []chat.Image
	failures  int
	wake      chan struct{}
}

func (g *group) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// New validates the options and returns a Manager. It does no I/O: Run
// creates the table and starts the work.
func New(o Options) (*Manager, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	m := &Manager{
		o: o, log: o.Logger.With("component", "incidents"), redact: o.Redact,
		st:       &stateStore{db: o.DB, rebind: o.Rebind, timeout: o.StateTimeout},
		gathers:  make(chan struct{}, o.MaxGathers),
		queue:    make(chan delivery, o.QueueSize),
		closing:  make(chan struct{}),
		groups:   map[string]*group{},
		unrouted: map[string]string{},
	}
	m.runCtx, m.stop = context.WithCancel(context.Background())
	m.canGather = len(o.Sources) > 0 || o.Rollouts != nil
	for _, s := range o.Sources {
		if s.Action != nil && s.Action.Spec().Name == action.LokiQuery {
			m.hasLogs = true
		}
	}
	return m, nil
}

// enqueue hands a notification to Run; false when the queue is full or
// the manager has stopped.
func (m *Manager) enqueue(d delivery) bool {
	m.qmu.RLock()
	defer m.qmu.RUnlock()
	if m.closed {
		return false
	}
	select {
	case m.queue <- d:
		return true
	default:
		return false
	}
}

// Run creates the incidents table, then processes notifications until ctx
// ends. It then refuses new ones (503), flushes what is pending once (each
// chat call bounded by SendTimeout) and returns when every goroutine it
// started has ended.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("incident: Run called twice")
	}
	defer func() {
		m.qmu.Lock()
		m.closed = true
		m.qmu.Unlock()
	}()
	if err := m.st.init(ctx); err != nil {
		m.stop()
		if ctx.Err() != nil {
			return nil // stopped before it began
		}
		return err
	}
	m.log.Info("incident channels running", "routes", len(m.o.Routes), "default_channel", m.o.DefaultChannel)
	for {
		select {
		case d := <-m.queue:
			m.accept(ctx, d)
			continue
		case <-ctx.Done():
		}
		break
	}
	m.qmu.Lock()
	m.closed = true
	m.qmu.Unlock()
	drain := context.WithoutCancel(ctx)
	for done := false; !done; {
		select {
		case d := <-m.queue:
			m.accept(drain, d)
		default:
			done = true
		}
	}
	close(m.closing)
	m.stop()
	m.wg.Wait()
	return nil
}

func (m *Manager) isClosing() bool {
	select {
	case <-m.closing:
		return true
	default:
		return false
	}
}

// accept merges a notification into its group and wakes the group's
// worker when it changed anything.
func (m *Manager) accept(ctx context.Context, d delivery) {
	defer m.handled.Add(1)
	p := d.p
	m.mu.Lock()
	g := m.groups[p.GroupKey]
	m.mu.Unlock()
	if g == nil {
		var err error
		if g, err = m.load(ctx, p, d); err != nil {
			// Without the stored state a re-send would post twice; better
			// to let Alertmanager's next notification try again.
			m.log.Error("incident state unavailable; notification dropped until Alertmanager re-sends",
				"group_key", clip(p.GroupKey, 200), "err", err)
			return
		}
		if g == nil {
			return // unrouted, reported
		}
	}
	m.mu.Lock()
	res := g.merge(p, d)
	start := false
	if res.changed {
		if _, running := m.groups[g.key]; !running {
			m.groups[g.key] = g
			start = true
		}
		g.dirty = true
	}
	channel, requestID := g.channel, g.requestID
	m.mu.Unlock()
	if !res.changed {
		m.o.Metrics.Duplicate()
		m.log.Debug("notification adds nothing; dropped", "group_key", clip(p.GroupKey, 200))
		return
	}
	platform, _, _ := splitChannel(channel)
	m.audit(ctx, audit.Event{Type: audit.IncidentReceived, RequestID: requestID, Platform: platform, Channel: channel,
		Subject: subjectOf(p.Receiver), Outcome: res.String(),
		Details: map[string]string{"group_key": p.GroupKey, "status": p.Status, "receiver": p.Receiver,
			"alerts": fmt.Sprint(len(p.Alerts)), "truncated": fmt.Sprint(p.TruncatedAlerts)}})
	if start {
		m.wg.Go(func() { m.work(g) })
	} else {
		g.signal()
	}
}

// load makes the group of a notification: from the incidents table when
// it was posted before, else new and routed. nil means unrouted.
func (m *Manager) load(ctx context.Context, p Payload, d delivery) (*group, error) {
	rec, ok, err := m.st.load(ctx, p.GroupKey)
	if err != nil {
		return nil, err
	}
	g := &group{key: p.GroupKey, requestID: requestIDOf(p.GroupKey), wake: make(chan struct{}, 1), posted: map[string]string{}}
	if ok {
		g.receiver, g.channel, g.msgID, g.thread, g.firstSeen, g.snap = rec.receiver, rec.channel, rec.messageID, rec.thread, rec.firstSeen, rec.state
		for _, a := range rec.state.Alerts {
			g.posted[a.Fingerprint] = a.Status
		}
		g.postedTr = rec.state.Truncated
		if e := g.snap.Evidence; e != nil && !e.Done {
			g.snap.Evidence = nil // gathering was cut short: gather again
		}
		return g, nil
	}
	labels := maps.Clone(p.GroupLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, p.CommonLabels)
	channel, matched := route(m.o.Routes, m.o.DefaultChannel, labels)
	if channel == "" {
		m.reportUnrouted(ctx, p)
		return nil, nil
	}
	g.receiver, g.channel, g.firstSeen = p.Receiver, channel, d.received.UTC()
	m.log.Debug("new alert group", "group_key", clip(p.GroupKey, 200), "channel", channel, "route", matched)
	return g, nil
}

// reportUnrouted logs, counts and audits a group that has nowhere to go,
// once per distinct content.
func (m *Manager) reportUnrouted(ctx context.Context, p Payload) {
	sig := signature(p)
	m.mu.Lock()
	seen := m.unrouted[p.GroupKey] == sig
	if !seen {
		if len(m.unrouted) >= 10000 {
			clear(m.unrouted)
		}
		m.unrouted[p.GroupKey] = sig
	}
	m.mu.Unlock()
	if seen {
		m.o.Metrics.Duplicate()
		return
	}
	m.o.Metrics.Unrouted()
	m.log.Warn("alert group matches no incident route and there is no default channel; not posted",
		"group_key", clip(p.GroupKey, 200), "receiver", p.Receiver, "alerts", len(p.Alerts))
	m.audit(ctx, audit.Event{Type: audit.IncidentUnrouted, RequestID: requestIDOf(p.GroupKey), Subject: subjectOf(p.Receiver),
		Outcome: fmt.Sprintf("%d alerts (%s) not posted: no route matched and no default channel is set", len(p.Alerts), p.Status),
		Details: map[string]string{"group_key": p.GroupKey, "receiver": p.Receiver, "labels": labelString(p.CommonLabels, nil, 400)}})
}

// signature is a notification's alerts and statuses, for spotting re-sends
// of an unrouted group.
func signature(p Payload) string {
	parts := make([]string, 0, len(p.Alerts))
	for _, a := range p.Alerts {
		parts = append(parts, a.Fingerprint+"="+a.Status+"@"+a.StartsAt.UTC().Format(time.RFC3339))
	}
	slices.Sort(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(h[:8])
}

// mergeResult says what a notification changed.
type mergeResult struct {
	changed                  bool
	added, resolved, refired int
	restarted                bool // a new incident in a group whose last one was resolved
}

func (r mergeResult) String() string {
	var parts []string
	if r.restarted {
		parts = append(parts, "new incident")
	}
	for _, x := range []struct {
		n    int
		what string
	}{{r.added, "new"}, {r.resolved, "resolved"}, {r.refired, "firing again"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if len(parts) == 0 {
		return "changed"
	}
	return strings.Join(parts, ", ")
}

// merge folds a notification into the group. A re-send changes nothing:
// only an unknown fingerprint, a status change, or a new truncation count
// does. Labels and annotations of known alerts follow the latest
// notification silently (annotations often carry a changing $value).
func (g *group) merge(p Payload, d delivery) mergeResult {
	var r mergeResult
	if g.msgID != "" && len(g.posted) > 0 && allResolved(g.posted) && bringsFiring(g, p) {
		// The last incident of this group was resolved and posted; a new
		// firing is a new incident with its own message.
		g.gen++
		g.msgID, g.thread, g.firstSeen = "", "", d.received.UTC()
		g.snap = snapshot{}
		g.posted, g.postedTr, g.images, g.pending = map[string]string{}, 0, nil, time.Time{}
		r.restarted = true
	}
	idx := make(map[string]int, len(g.snap.Alerts))
	for i, a := range g.snap.Alerts {
		idx[a.Fingerprint] = i
	}
	for _, a := range p.Alerts {
		in := recOf(a)
		i, known := idx[a.Fingerprint]
		if !known {
			g.snap.Alerts = append(g.snap.Alerts, in)
			idx[a.Fingerprint] = len(g.snap.Alerts) - 1
			r.added++
			continue
		}
		old := g.snap.Alerts[i]
		switch {
		case old.Status == in.Status:
			in.StartsAt = old.StartsAt
			if in.Status == Resolved && !old.EndsAt.IsZero() {
				in.EndsAt = old.EndsAt
			}
			g.snap.Alerts[i] = in
		case old.Status == Firing && in.Status == Resolved:
			g.snap.Alerts[i] = in
			r.resolved++
		case old.Status == Resolved && in.Status == Firing && in.StartsAt.After(old.StartsAt):
			g.snap.Alerts[i] = in
			r.refired++
		default:
			// A late re-send of a firing the group has seen resolve.
		}
	}
	if p.TruncatedAlerts != g.snap.Truncated {
		g.snap.Truncated = p.TruncatedAlerts
		r.changed = true
	}
	g.snap.GroupLabels, g.snap.CommonLabels, g.snap.CommonAnnotations = p.GroupLabels, p.CommonLabels, p.CommonAnnotations
	if p.ExternalURL != "" {
		g.snap.ExternalURL = p.ExternalURL
	}
	if g.receiver == "" {
		g.receiver = p.Receiver
	}
	r.changed = r.changed || r.added+r.resolved+r.refired > 0
	if r.changed && g.msgID == "" && g.pending.IsZero() {
		g.pending = d.arrived
	}
	return r
}

func allResolved(posted map[string]string) bool {
	for _, s := range posted {
		if s != Resolved {
			return false
		}
	}
	return true
}

// bringsFiring reports whether p has a firing alert the group has not
// seen fire in its current incident.
func bringsFiring(g *group, p Payload) bool {
	known := map[string]alertRec{}
	for _, a := range g.snap.Alerts {
		known[a.Fingerprint] = a
	}
	for _, a := range p.Alerts {
		if a.Status != Firing {
			continue
		}
		old, ok := known[a.Fingerprint]
		if !ok || (old.Status == Resolved && a.StartsAt.After(old.StartsAt)) {
			return true
		}
	}
	return false
}

// work is a group's worker: it posts the group's message, then edits it
// as alerts and evidence change, at most once per GroupWait, until
// nothing is pending; then it forgets the group (the incidents table
// remembers it).
func (m *Manager) work(g *group) {
	for {
		m.mu.Lock()
		if !g.dirty {
			// Linger until an edit would be allowed again, so a change
			// arriving meanwhile is paced like any other.
			if rest := m.o.GroupWait - time.Since(g.lastSend); !g.gathering && rest > 0 && !m.isClosing() {
				m.mu.Unlock()
				m.sleepOrWake(rest, g)
				continue
			}
			if !g.gathering {
				delete(m.groups, g.key)
				m.mu.Unlock()
				return
			}
			m.mu.Unlock()
			<-g.wake // the gatherer always signals when it ends
			continue
		}
		closing := m.isClosing()
		if g.msgID != "" && !closing {
			if wait := m.o.GroupWait - time.Since(g.lastSend); wait > 0 {
				m.mu.Unlock()
				m.sleep(wait)
				continue
			}
		}
		plan := m.plan(g)
		m.mu.Unlock()

		err := m.flush(g, plan)

		m.mu.Lock()
		if err == nil {
			g.failures = 0
			m.mu.Unlock()
			continue
		}
		g.failures++
		giveUp := g.failures >= maxSendAttempts || closing
		if giveUp {
			g.failures = 0
		} else {
			g.dirty = true
			g.images = append(plan.images, g.images...)
		}
		channel := g.channel
		m.mu.Unlock()
		if !giveUp {
			m.log.Warn("incident message not delivered; retrying", "channel", channel, "err", err)
			m.sleep(time.Duration(plan.attempt+1) * time.Second)
			continue
		}
		m.log.Error("incident message not delivered; giving up until the group changes again", "channel", channel, "err", err)
		platform, _, _ := splitChannel(channel)
		m.audit(context.Background(), audit.Event{Type: audit.ReplyFailed, RequestID: g.requestID, Platform: platform,
			Channel: channel, Subject: subjectOf(g.receiver), Error: clip(err.Error(), 500),
			Details: map[string]string{"group_key": g.key, "first": fmt.Sprint(plan.first)}})
	}
}

// sleep waits d, or less when the manager starts closing.
func (m *Manager) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.closing:
	}
}

// sleepOrWake waits d, or less when the group changes or the manager
// starts closing.
func (m *Manager) sleepOrWake(d time.Duration, g *group) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.wake:
	case <-m.closing:
	}
}

// flushPlan is one send of a group, prepared under the lock.
type flushPlan struct {
	gen       int
	first     bool
	attempt   int
	msgID     string
	thread    string
	channel   string
	view      view
	notes     []string
	images    []chat.Image
	posted    map[string]string
	truncated int
	pending   time.Time
}

// plan takes what is to be sent and clears the dirty flag; m.mu is held.
func (m *Manager) plan(g *group) flushPlan {
	p := flushPlan{
		gen: g.gen, first: g.msgID == "", attempt: g.failures, msgID: g.msgID, thread: g.thread, channel: g.channel,
		images: g.images, truncated: g.snap.Truncated, pending: g.pending,
		posted: make(map[string]string, len(g.snap.Alerts)),
	}
	for _, a := range g.snap.Alerts {
		p.posted[a.Fingerprint] = a.Status
	}
	if !p.first {
		p.notes = notes(g.posted, g.snap.Alerts, m.o.Now())
	}
	p.view = view{key: g.key, receiver: g.receiver, snap: g.snap.clone(), firstSeen: g.firstSeen, now: m.o.Now(),
		hasLogs: m.hasLogs, window: m.o.Window, gathers: m.canGather, silence: m.o.Silence}
	g.images = nil
	g.dirty = false
	return p
}

// flush sends one plan: the message (posted or edited), then the thread
// notes and charts, then records it.
func (m *Manager) flush(g *group, p flushPlan) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.o.SendTimeout)
	defer cancel()
	platform, channelID, _ := splitChannel(p.channel)
	reply, sugg := p.view.reply()
	reply = redact.ReplyWith(reply, m.redact) // payloads are redacted on arrival; this covers evidence and summaries too
	reply.Platform, reply.Channel = platform, channelID
	msgID, thread := p.msgID, p.thread
	if p.first {
		id, err := m.o.Sender.Send(ctx, reply)
		if err != nil {
			return fmt.Errorf("post: %w", err)
		}
		msgID, thread = id, id
	} else {
		reply.UpdateOf = msgID
		if _, err := m.o.Sender.Send(ctx, reply); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	if len(p.notes) > 0 {
		note := chat.Reply{Platform: platform, Channel: channelID, Thread: thread, Text: m.redact(strings.Join(p.notes, "\n")), Kind: chat.KindInfo}
		if _, err := m.o.Sender.Send(ctx, note); err != nil {
			m.log.Warn("incident thread note not delivered", "channel", p.channel, "err", err)
		}
	}
	if len(p.images) > 0 {
		t := targetOf(p.view.snap)
		chart := chat.Reply{Platform: platform, Channel: channelID, Thread: thread, Kind: chat.KindInfo,
			Text: fmt.Sprintf("Error rate of %s, last %s", t.service, m.o.Window), Images: p.images}
		if _, err := m.o.Sender.Send(ctx, chart); err != nil {
			m.log.Warn("incident chart not delivered", "channel", p.channel, "err", err)
		}
	}

	m.mu.Lock()
	if g.gen != p.gen { // a new incident began while this one was sent
		m.mu.Unlock()
		return nil
	}
	g.msgID, g.thread, g.posted, g.postedTr, g.lastSend = msgID, thread, p.posted, p.truncated, time.Now()
	var fresh []suggestion
	for _, s := range sugg {
		if !slices.Contains(g.snap.Suggested, s.key()) {
			g.snap.Suggested = append(g.snap.Suggested, s.key())
			fresh = append(fresh, s)
		}
	}
	startGather := p.first && m.canGather && !g.gathering && g.snap.Evidence == nil && anyFiring(p.posted)
	if startGather {
		g.gathering = true
		g.snap.Evidence = &evidence{}
	}
	if p.first {
		g.pending = time.Time{}
	}
	rec := record{key: g.key, receiver: g.receiver, channel: g.channel, messageID: msgID, thread: thread,
		firstSeen: g.firstSeen, updatedAt: m.o.Now().UTC(), state: p.view.snap}
	rec.state.Suggested = append([]string(nil), g.snap.Suggested...)
	if startGather {
		rec.state.Evidence = nil
	}
	m.mu.Unlock()

	if startGather {
		m.startGather(g, p.gen, targetOf(p.view.snap))
	}
	// The save has its own deadline, not what the chat calls left of
	// SendTimeout: under a slow chat API the message is out and its state
	// must still be written.
	if err := m.st.save(context.WithoutCancel(ctx), rec); err != nil {
		// The message is out; a re-send after a restart may post again.
		m.o.Metrics.StateSaveFailed()
		m.log.Error("incident state not saved; after a restart this group may be posted again", "group_key", clip(g.key, 200), "err", err)
	}
	ev := audit.Event{RequestID: g.requestID, Platform: platform, Channel: p.channel, Thread: thread,
		Subject: subjectOf(g.receiver), Outcome: clip(firstLine(reply.Text), 300), Text: clip(reply.Text, 1500),
		Details: map[string]string{"group_key": g.key, "message_id": msgID, "alerts": p.view.counts()}}
	if p.first {
		took := time.Since(p.pending)
		if p.pending.IsZero() {
			took = 0
		}
		m.o.Metrics.Posted(took)
		ev.Type, ev.Duration = audit.IncidentPosted, took
	} else {
		m.o.Metrics.Updated()
		ev.Type = audit.IncidentUpdated
		if len(p.notes) > 0 {
			ev.Details["notes"] = clip(strings.Join(p.notes, " / "), 400)
		}
	}
	m.audit(ctx, ev)
	for _, s := range fresh {
		m.audit(ctx, audit.Event{Type: audit.IncidentSuggested, RequestID: g.requestID, Platform: platform, Channel: p.channel,
			Thread: thread, Subject: "parley", Action: s.Action, Params: s.Params, Outcome: s.Label,
			Details: map[string]string{"group_key": g.key, "message_id": msgID}})
	}
	return nil
}

// startGather runs the sources for a group in a goroutine Run waits for.
func (m *Manager) startGather(g *group, gen int, t target) {
	update := func(fn func(*evidence)) {
		m.mu.Lock()
		if g.gen == gen && g.snap.Evidence != nil {
			fn(g.snap.Evidence)
			g.dirty = true
		}
		m.mu.Unlock()
		g.signal()
	}
	images := func(imgs []chat.Image) {
		m.mu.Lock()
		if g.gen == gen {
			g.images = append(g.images, imgs...)
			g.dirty = true
		}
		m.mu.Unlock()
		g.signal()
	}
	m.wg.Go(func() {
		defer func() {
			m.mu.Lock()
			g.gathering = false
			m.mu.Unlock()
			g.signal()
		}()
		ctx := m.runCtx
		select {
		case m.gathers <- struct{}{}:
			defer func() { <-m.gathers }()
		case <-ctx.Done():
			return
		}
		m.gather(ctx, t, g.channel, g.requestID, update, images)
	})
}

func (m *Manager) audit(ctx context.Context, e audit.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := m.o.Audit.Record(ctx, e); err != nil {
		m.log.Error("incident audit event not recorded", "type", string(e.Type), "err", err)
	}
}

func anyFiring(posted map[string]string) bool {
	for _, s := range posted {
		if s == Firing {
			return true
		}
	}
	return false
}

// subjectOf is the audit subject of a notification.
func subjectOf(receiver string) string { return "alertmanager:" + receiver }

// requestIDOf ties a group's audit events together.
func requestIDOf(groupKey string) string {
	h := sha256.Sum256([]byte(groupKey))
	return "incident-" + hex.EncodeToString(h[:6])
}

func (s snapshot) clone() snapshot {
	c := s
	c.Alerts = append([]alertRec(nil), s.Alerts...)
	c.Evidence = s.Evidence.clone()
	c.Suggested = append([]string(nil), s.Suggested...)
	return c
}
