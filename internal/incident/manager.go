package incident

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/store"
)

// Auditor records audit events; *audit.Recorder implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) (audit.Event, error)
}

// Finder finds a message posted earlier with an idempotency key
// (chat.Reply.IdempotencyKey) in r's channel, posted at since or later;
// "" when there is none. A first post that a crash interrupted before its
// message id was recorded is looked for with it before it is made again.
// The Slack adapter implements it; a sender that does not is posted to
// again (the platform may still drop the repeat: see IdempotencyKey).
type Finder interface {
	FindPosted(ctx context.Context, r chat.Reply, since time.Time) (id string, err error)
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
	DefaultExpireAfter    = time.Hour
	DefaultInboxPoll      = 250 * time.Millisecond
	DefaultMaxWebhooks    = 32
	DefaultDigestAfter    = 3
	DefaultDigestSize     = 25
	DefaultDigestWindow   = 15 * time.Minute
	DefaultRetryMax       = 30 * time.Second
)

// Options configure a Manager.
type Options struct {
	// Sender delivers messages; replies are routed by Platform. Required.
	// When it implements Finder, a first post a crash interrupted is
	// looked for before it is made again.
	Sender chat.Sender
	// DB holds the incident tables (schema step 9). Required.
	DB *store.DB
	// Audit records every summary, update, suggestion and expiry. Required.
	Audit Auditor
	// Auth is the webhook's credentials. Required.
	Auth Auth

	// Routes pick a group's channel, first match wins; DefaultChannel
	// takes the rest. A group with neither is logged, counted and audited
	// as incident.unrouted.
	Routes         []Route
	DefaultChannel string

	// Sources are the read actions consulted (incident.diagnose's). Leave
	// out those whose backend is not configured: a loki.query source is
	// what offers "Show error logs".
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
	// PodLogs, the kubernetes.logs spec, offers "Show pod logs" on firing
	// groups whose deployment and namespace are known when no Loki source
	// offers "Show error logs"; nil offers neither.
	PodLogs *action.Spec
	// Redact cleans what arrives and what is said: alert labels and
	// annotations on arrival, evidence, summaries and every message
	// (default redact.Redact).
	Redact func(string) string

	Metrics Metrics
	Logger  *slog.Logger
	// Now is the clock for what messages and records say (default
	// time.Now). Pacing uses the monotonic clock.
	Now func() time.Time

	MaxBody   int64 // largest webhook body (1 MiB)
	QueueSize int   // notifications stored and not yet merged, all replicas together (256); past it the webhook answers 503
	// MaxWebhooks bounds the authenticated webhook requests in progress
	// at once (32); past it, after a short wait for a slot, 503.
	// Unauthenticated requests are refused before they take a slot.
	MaxWebhooks    int
	GroupWait      time.Duration // least time between two edits of a message (3s)
	SourceTimeout  time.Duration // per source (8s)
	SummaryTimeout time.Duration // the model's diagnosis (20s)
	SendTimeout    time.Duration // each delivery's chat calls (30s)
	// StateTimeout bounds each read and write of the incident tables
	// (10s), on its own clock: a save after slow chat calls still gets
	// its full time.
	StateTimeout  time.Duration
	Window        string        // the window the sources look at ("1h")
	RolloutWindow time.Duration // how long before the alert a rollout counts (1h)
	MaxGathers    int           // groups gathered at once (4)

	// ExpireAfter is how long an incident message (a group's first
	// message or an update) is retried before it is given up, counted,
	// logged and audited as incident.expired (1h).
	ExpireAfter time.Duration
	// RetryMax is the longest wait between two tries of an undelivered
	// message (30s); tries start 1s apart and double.
	RetryMax time.Duration
	// InboxPoll is how often the posting replica looks for notifications
	// other replicas stored (250ms); its own are taken at once.
	InboxPoll time.Duration
	// DigestAfter is how many groups of one channel may wait for their
	// first message before new groups are listed in the channel's
	// alert-storm digest instead of a message each (3).
	DigestAfter int
	// DigestSize is how many groups one digest message lists (25); a
	// full digest starts the next.
	DigestSize int
	// DigestWindow is how long a digest takes new groups (15m).
	DigestWindow time.Duration
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
		o.SendTimeout < 0 || o.StateTimeout < 0 || o.RolloutWindow < 0 || o.MaxGathers < 0 || o.ExpireAfter < 0 ||
		o.RetryMax < 0 || o.InboxPoll < 0 || o.MaxWebhooks < 0 || o.DigestAfter < 0 || o.DigestSize < 0 || o.DigestWindow < 0:
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
	def(&o.ExpireAfter, DefaultExpireAfter)
	def(&o.RetryMax, DefaultRetryMax)
	def(&o.InboxPoll, DefaultInboxPoll)
	def(&o.DigestWindow, DefaultDigestWindow)
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&o.QueueSize, DefaultQueueSize)
	defInt(&o.MaxGathers, DefaultMaxGathers)
	defInt(&o.MaxWebhooks, DefaultMaxWebhooks)
	defInt(&o.DigestAfter, DefaultDigestAfter)
	defInt(&o.DigestSize, DefaultDigestSize)
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
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

// Manager owns the incident channels.
//
// Its webhook (Handler) runs on every replica: a notification is
// authenticated, validated, redacted and stored in the inbox before it is
// answered 200, so it survives whatever happens next. Run, on the one
// replica that posts (the leader), merges stored notifications into their
// groups, and keeps each group's message up to date: the group's state is
// written together with its outbox row (the message is not up to date
// since when) and the removal of the notifications it came from, in one
// transaction. A message is retried until it is delivered or, after
// ExpireAfter, given up with a metric, a log line and an incident.expired
// audit event; the outbox survives restarts and changes of leader. When a
// channel's messages back up (DigestAfter groups waiting for their first
// message), new groups are listed in one alert-storm digest per channel,
// edited in place, instead of a message each.
type Manager struct {
	o         Options
	log       *slog.Logger
	st        *stateStore
	redact    func(string) string
	hasLogs   bool // a Loki source is configured: "Show error logs" is offered
	canGather bool // there are sources to consult
	finder    Finder
	gathers   chan struct{}
	hooks     chan struct{} // authenticated webhook requests in progress
	wake      chan struct{} // a notification was stored on this replica

	running atomic.Bool
	merged  atomic.Int64 // notifications taken from the inbox (for tests)

	// persist orders the writes of group state: each write takes the
	// group's latest state at the moment it writes, so the last write
	// always holds the newest.
	persist sync.Mutex

	mu sync.Mutex
	// Per Run (reset when Run starts: another replica may have led in
	// between).
	runCtx   context.Context // ends with Run: sends and gathering stop
	stop     context.CancelFunc
	closing  chan struct{}
	retry    chan struct{}      // closed (and replaced) by Retry
	groups   map[string]*group  // groups in memory: a worker runs, or a digest lists them
	lanes    map[string]*lane   // per channel
	digests  map[string]*digest // digests in memory
	unrouted map[string]string  // group key -> signature already reported
	wg       sync.WaitGroup
}

// New validates the options and returns a Manager. It does no I/O.
func New(o Options) (*Manager, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	m := &Manager{
		o: o, log: o.Logger.With("component", "incidents"), redact: o.Redact,
		st:       &stateStore{db: o.DB, timeout: o.StateTimeout},
		gathers:  make(chan struct{}, o.MaxGathers),
		hooks:    make(chan struct{}, o.MaxWebhooks),
		wake:     make(chan struct{}, 1),
		unrouted: map[string]string{},
	}
	m.finder, _ = o.Sender.(Finder)
	m.canGather = len(o.Sources) > 0 || o.Rollouts != nil
	for _, s := range o.Sources {
		if s.Action != nil && s.Action.Spec().Name == action.LokiQuery {
			m.hasLogs = true
		}
	}
	return m, nil
}

// Run delivers incident messages until ctx ends: call it on the one
// replica that posts. It resumes what the outbox holds, then merges the
// notifications any replica stored and keeps the groups' messages up to
// date. When ctx ends it stops sending at once (a send in progress is
// cancelled; what is not delivered stays in the outbox for the next Run,
// here or on another replica) and returns when every goroutine it started
// has ended. Run may be called again after it returned.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("incident: Run is already running")
	}
	defer m.running.Store(false)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.runCtx, m.stop, m.closing, m.retry = runCtx, stop, make(chan struct{}), make(chan struct{})
	m.groups, m.lanes, m.digests = map[string]*group{}, map[string]*lane{}, map[string]*digest{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		close(m.closing)
		m.mu.Unlock()
		stop()
		m.wg.Wait()
		m.mu.Lock()
		m.groups, m.lanes, m.digests = nil, nil, nil
		m.mu.Unlock()
		m.o.Metrics.Outbox(0, 0)
	}()

	for attempt := 0; ; attempt++ {
		err := m.recover(ctx)
		if err == nil {
			break
		}
		m.log.Error("incident outbox unreadable; retrying", "err", err)
		if !sleepCtx(ctx, backoff(attempt+1, m.o.RetryMax)) {
			return nil
		}
	}
	m.log.Info("incident channels running", "routes", len(m.o.Routes), "default_channel", m.o.DefaultChannel)
	poll := time.NewTicker(m.o.InboxPoll)
	defer poll.Stop()
	gauge := time.NewTicker(5 * time.Second)
	defer gauge.Stop()
	failures := 0
	for {
		if err := m.drain(ctx); err != nil {
			failures++
			m.log.Error("incident notifications not merged; retrying", "err", err)
			if !sleepCtx(ctx, backoff(failures, m.o.RetryMax)) {
				return nil
			}
			continue
		}
		failures = 0
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-poll.C:
		case <-gauge.C:
			m.reportOutbox()
		}
	}
}

// closingLocked reports whether Run is ending; m.mu is held.
func (m *Manager) closingLocked() bool {
	select {
	case <-m.closing:
		return true
	default:
		return false
	}
}

// drain merges the stored notifications, a batch at a time, until the
// inbox is empty.
func (m *Manager) drain(ctx context.Context) error {
	const batch = 64
	for ctx.Err() == nil {
		rows, err := m.st.takeInbox(ctx, batch)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := m.mergeBatch(ctx, rows); err != nil {
			return err
		}
		if len(rows) < batch {
			return nil
		}
	}
	return nil
}

// mergeBatch merges notifications into their groups, then writes every
// changed group with its outbox row and removes the notifications, in one
// transaction; only then are the changes audited and the workers woken.
func (m *Manager) mergeBatch(ctx context.Context, rows []inboxRow) error {
	var changed []accepted
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.id)
		if r.bad != nil {
			m.log.Error("stored notification unreadable; dropped", "group_key", clip(r.key, 200), "err", r.bad)
			continue
		}
		a, err := m.accept(ctx, r)
		if err != nil {
			return err
		}
		if a.g != nil {
			changed = append(changed, a)
		}
	}
	m.persist.Lock()
	err := m.st.write(ctx, func(ctx context.Context, tx *store.Tx) error {
		seen := map[*group]bool{}
		for _, a := range changed {
			if seen[a.g] {
				continue
			}
			seen[a.g] = true
			m.mu.Lock()
			rec, p := m.recordLocked(a.g)
			m.mu.Unlock()
			if err := saveTx(ctx, tx, rec, p); err != nil {
				return err
			}
		}
		_, err := deleteInboxTx(ctx, tx, ids)
		return err
	})
	m.persist.Unlock()
	if err != nil {
		// The groups changed in memory, and the workers deliver that; the
		// notifications stay stored and are merged again (adding nothing)
		// on the next try, so nothing is lost if this process stops first.
		for _, a := range changed {
			m.kick(a.g)
		}
		return err
	}
	m.merged.Add(int64(len(rows)))
	for _, a := range changed {
		m.audit(ctx, a.event)
		m.kick(a.g)
	}
	m.reportOutbox()
	return nil
}

// kick starts the worker that delivers g: its own, or its digest's.
func (m *Manager) kick(g *group) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closingLocked() {
		return
	}
	if d := g.digest; d != nil {
		m.kickDigestLocked(d)
		return
	}
	if g.working {
		g.signal()
		return
	}
	g.working = true
	m.wg.Go(func() { m.work(g) })
}

// recover loads what the outbox holds and starts delivering it: groups
// whose message is not up to date, and the digests listing some of them.
// A first post that was begun and not recorded is looked for before it is
// made again.
func (m *Manager) recover(ctx context.Context) error {
	rows, err := m.st.outbox(ctx)
	if err != nil {
		return err
	}
	var loaded []*group
	for _, p := range rows {
		rec, ok, err := m.st.load(ctx, p.key)
		if err != nil {
			return err
		}
		if !ok {
			m.log.Warn("outbox row without its incident; removed", "group_key", clip(p.key, 200))
			if err := m.st.write(ctx, func(ctx context.Context, tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM incident_outbox WHERE group_key = ?`, p.key)
				return err
			}); err != nil {
				return err
			}
			continue
		}
		g := groupOf(rec)
		g.due, g.attempts, g.lastErr, g.dirty = p.due, p.attempts, p.lastErr, true
		if rec.postKey != "" && rec.messageID == "" {
			g.reconcile = true
		}
		if err := m.attach(ctx, g, rec.digest); err != nil {
			return err
		}
		loaded = append(loaded, g)
	}
	if err := m.reopenDigests(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	for _, g := range loaded {
		if g.digest == nil && g.msgID == "" {
			m.laneLocked(g.channel).waitingFirst++
			g.waitingFirst = true
		}
	}
	m.mu.Unlock()
	for _, g := range loaded {
		m.kick(g)
	}
	if len(loaded) > 0 {
		m.log.Info("resuming undelivered incident messages", "groups", len(loaded))
	}
	m.reportOutbox()
	return nil
}

// reportOutbox sets the outbox gauges from what this replica holds.
func (m *Manager) reportOutbox() {
	now := m.o.Now()
	m.mu.Lock()
	n, oldest := 0, time.Duration(0)
	for _, g := range m.groups {
		if !g.due.IsZero() {
			n++
			oldest = max(oldest, now.Sub(g.due))
		}
	}
	m.mu.Unlock()
	m.o.Metrics.Outbox(n, oldest)
}

// recordLocked is g's row as it stands, and its outbox row when its
// message is not up to date; m.mu is held.
func (m *Manager) recordLocked(g *group) (record, *pending) {
	rec := record{key: g.key, receiver: g.receiver, channel: g.channel, messageID: g.msgID, thread: g.thread,
		firstSeen: g.firstSeen, updatedAt: m.o.Now().UTC(), state: g.snap.clone(),
		shown:   shown{Alerts: make(map[string]string, len(g.posted)), Truncated: g.postedTr},
		postKey: g.postKey, postAt: g.postAt}
	for fp, s := range g.posted {
		rec.shown.Alerts[fp] = s
	}
	if g.digest != nil {
		rec.digest = g.digest.key
	}
	if g.due.IsZero() {
		return rec, nil
	}
	return rec, &pending{key: g.key, channel: g.channel, due: g.due, attempts: g.attempts, lastErr: g.lastErr}
}

// save writes g's latest state and outbox row.
func (m *Manager) save(ctx context.Context, g *group) error {
	m.persist.Lock()
	defer m.persist.Unlock()
	m.mu.Lock()
	rec, p := m.recordLocked(g)
	m.mu.Unlock()
	return m.st.write(ctx, func(ctx context.Context, tx *store.Tx) error { return saveTx(ctx, tx, rec, p) })
}

func (m *Manager) audit(ctx context.Context, e audit.Event) {
	if e.Type == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := m.o.Audit.Record(ctx, e); err != nil {
		m.log.Error("incident audit event not recorded", "type", string(e.Type), "err", err)
	}
}

// backoff is the wait before try n+1 of a failing delivery: 1s, 2s, 4s,
// ... up to limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := time.Second << min(max(n-1, 0), 10)
	return min(d, limit)
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sleep waits d, or less when Run ends or Retry is called.
func (m *Manager) sleep(d time.Duration) {
	m.mu.Lock()
	c, r := m.closing, m.retry
	m.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c:
	case <-r:
	}
}

// Retry makes every delivery that waits out a backoff after a failure try
// again now. The application calls it when a chat platform that was down
// is back, so the messages waiting for it go out at once rather than at
// their next try (up to RetryMax later).
func (m *Manager) Retry() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retry != nil {
		close(m.retry)
		m.retry = make(chan struct{})
	}
}

// subjectOf is the audit subject of a notification.
func subjectOf(receiver string) string { return "alertmanager:" + receiver }

// requestIDOf ties a group's audit events together.
func requestIDOf(groupKey string) string {
	h := sha256.Sum256([]byte(groupKey))
	return "incident-" + hex.EncodeToString(h[:6])
}

// postKeyOf is the idempotency key of a message: the same for every try
// of the same first post, different for the next incident of the group.
func postKeyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "parley-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// quiet reports whether nothing is being delivered: no worker runs and no
// group or digest waits for delivery.
func (m *Manager) quiet() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.groups {
		if g.working || g.dirty || !g.due.IsZero() || g.gathering {
			return false
		}
	}
	for _, d := range m.digests {
		if d.working || d.dirty {
			return false
		}
	}
	return true
}
