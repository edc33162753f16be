// Package pipeline is the one path every chat request takes, whatever the
// platform: input checks, de-duplication, rate limiting, pending
// confirmations, routing, parameter validation, policy, confirmation,
// execution and audit. Adapters feed it chat.Messages; it answers through a
// chat.Sender. It depends on the other parts through the small interfaces
// below, defined here where they are used.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/crashpoint"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/internal/redact"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// Policy decides who may do what. *policy.Policy implements it.
type Policy interface {
	Decide(in policy.Input) policy.Decision
	Permitted(subject string, groups []string, channel, action string) bool
	CanApprove(d policy.Decision, requester, approver string, approverGroups []string) error
}

// Auditor records audit events and reads them back. *audit.Recorder
// implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) (audit.Event, error)
	// RecordWith commits the store writes write makes together with the
	// events it returns, or neither: a confirmation's every change of
	// state carries its audit event in the same transaction.
	RecordWith(ctx context.Context, write func(tx *store.Tx) ([]audit.Event, error)) ([]audit.Event, error)
	// EnqueueOne hands an event over without waiting for it to be
	// stored: it shares the commit of the next write someone waits for.
	EnqueueOne(ctx context.Context, e audit.Event) *audit.Pending
	List(ctx context.Context, f audit.Filter) ([]audit.Event, error)
	Each(ctx context.Context, f audit.Filter, fn func(audit.Event) error) error
}

// Confirmations stores pending confirmations. *confirm.Store implements it.
// The ...Tx methods run inside Auditor.RecordWith's transaction.
type Confirmations interface {
	CreateTx(ctx context.Context, tx *store.Tx, c confirm.Confirmation) (confirm.Confirmation, error)
	MarkShown(ctx context.Context, id string) error
	Get(ctx context.Context, id string) (confirm.Confirmation, error)
	FindByCode(ctx context.Context, channel, code string) (confirm.Confirmation, error)
	LatestByCode(ctx context.Context, channel, code string) (confirm.Confirmation, error)
	PendingIn(ctx context.Context, channel string) ([]confirm.Confirmation, error)
	ClaimTx(ctx context.Context, tx *store.Tx, id, approver string, now time.Time) (confirm.Confirmation, error)
	Finish(ctx context.Context, id string, state confirm.State, outcome string) error
	CancelTx(ctx context.Context, tx *store.Tx, id, by string) (confirm.Confirmation, error)
	ExpireDueTx(ctx context.Context, tx *store.Tx, now time.Time) ([]confirm.Confirmation, error)
	// Recovery after a crash: what stopped processes left, taken over one
	// by one and settled with its audit event.
	Abandoned(ctx context.Context) ([]confirm.Confirmation, error)
	Adopt(ctx context.Context, c confirm.Confirmation) (confirm.Confirmation, error)
	SettleTx(ctx context.Context, tx *store.Tx, c confirm.Confirmation, to confirm.State, outcome string) error
	// Self names this process on the requests it takes; IsAbandoned
	// tells whether a request taken by owner at a time was left by a
	// stopped process.
	Self() string
	IsAbandoned(owner string, at time.Time) bool
}

// SeenEvents remembers taken event keys across processes, so that an event
// a platform redelivers to another replica (after a failover) is handled
// once. *dedupe.Store implements it.
type SeenEvents interface {
	// Shared reports whether key is remembered at all (the events of
	// platforms whose event ids are durable); Seen and SeenTx report
	// other keys as new and write nothing.
	Shared(key string) bool
	// Seen reports whether key was taken before, recording it when not.
	Seen(ctx context.Context, key string, now time.Time) (bool, error)
	// SeenTx is Seen inside tx, on the audit log's database: the key is
	// taken only if tx commits.
	SeenTx(ctx context.Context, tx *store.Tx, key string, now time.Time) (bool, error)
	// Purge forgets keys old enough that no redelivery can follow.
	Purge(ctx context.Context, now time.Time) (int64, error)
}

// Binding configures a channel: the namespace a request there defaults to
// and, optionally, the only actions offered there.
type Binding struct {
	Namespace string
	Actions   []string
}

// Config tunes the pipeline. Zero values take the defaults.
type Config struct {
	MaxTextBytes   int           // longest request read (default 16 KiB)
	RateBurst      int           // requests a subject may send at once (default 20)
	RateEvery      time.Duration // one more request allowed per interval (default 3s)
	ActionTimeout  time.Duration // deadline of one action run (default 30s)
	MinConfidence  float64       // below it a mutating intent is not offered for confirmation (default 0.5)
	Trail          bool          // render every audit step into the thread
	Bindings       map[string]Binding
	Now            func() time.Time
	Logger         *slog.Logger
	RouterName     string // recorded on audit events when the intent has no Source
	DedupeCapacity int    // event ids remembered (default 10000)
	// FilterCatalog offers the router only the actions the sender may run
	// here. Set it for model-based routers: a model never sees a tool the
	// user may not use. (The rules router gets everything, so a refusal
	// can name what was asked.)
	FilterCatalog bool
	// HistoryTurns is how many earlier turns of a thread, the sender's
	// own, the router sees, for follow-ups like "and in staging?" (default
	// 4; negative: none).
	HistoryTurns int
	Metrics      *telemetry.Metrics // nil: no metrics
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Router        intent.Router
	Actions       *action.Registry
	Inventory     intent.InventorySource // may be nil
	Policy        Policy
	Audit         Auditor
	Confirmations Confirmations
	Sender        chat.Sender
	// CancelEval stops a running evaluation ("cancel eval 42"); nil when
	// there is no evaluation runner. It reports whether the run was running.
	CancelEval func(id int) bool
	// SeenEvents, when set, extends de-duplication beyond this process
	// (several replicas on one database). The in-memory check runs first;
	// a failing SeenEvents never drops a message.
	SeenEvents SeenEvents
}

// Pipeline handles chat messages. It is safe for concurrent use.
type Pipeline struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	// catalog is the registered actions' specs, taken once (the registry
	// does not change); read-only.
	catalog []action.Spec

	mu      sync.Mutex
	seen    map[string]time.Time // event id -> first seen
	seenQ   []string
	buckets map[string]*bucket
	history map[string][]intent.Turn // thread and sender -> recent turns
	swept   time.Time                // last expiry sweep triggered by a message
	histQ   []string
	// requestsScanned is up to when Recover looked for unanswered requests.
	requestsScanned time.Time
}

// New returns a pipeline.
func New(cfg Config, deps Deps) (*Pipeline, error) {
	switch {
	case deps.Router == nil:
		return nil, errors.New("pipeline: no router")
	case deps.Actions == nil:
		return nil, errors.New("pipeline: no actions")
	case deps.Policy == nil:
		return nil, errors.New("pipeline: no policy")
	case deps.Audit == nil:
		return nil, errors.New("pipeline: no audit recorder")
	case deps.Confirmations == nil:
		return nil, errors.New("pipeline: no confirmation store")
	case deps.Sender == nil:
		return nil, errors.New("pipeline: no sender")
	}
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 16 << 10
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 20
	}
	if cfg.RateEvery <= 0 {
		cfg.RateEvery = 3 * time.Second
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 30 * time.Second
	}
	if cfg.MinConfidence == 0 {
		cfg.MinConfidence = 0.5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DedupeCapacity <= 0 {
		cfg.DedupeCapacity = 10000
	}
	if cfg.HistoryTurns == 0 {
		cfg.HistoryTurns = 4
	}
	return &Pipeline{
		cfg:     cfg,
		deps:    deps,
		log:     cfg.Logger.With("component", "pipeline"),
		seen:    map[string]time.Time{},
		buckets: map[string]*bucket{},
		history: map[string][]intent.Turn{},
		catalog: deps.Actions.Specs(),
	}, nil
}

// request is one message on its way through the pipeline.
type request struct {
	id  string
	msg chat.Message

	mu        sync.Mutex
	lastReply chat.Reply // the last answer sent for this request
	// noted are the request's audit events handed over without waiting
	// (note); settle waits for them.
	noted []*audit.Pending
	// lost is a failed audit write of the request that is already counted
	// and logged, for settle to return until an answer told it.
	lost error
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// Handle implements chat.Handler. It never panics on bad input: every
// message gets an answer and an audit record, or is dropped as a redelivery.
func (p *Pipeline) Handle(ctx context.Context, msg chat.Message) {
	req := &request{id: newRequestID(), msg: msg}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic handling message", "request", req.id, "panic", fmt.Sprint(r))
			p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: "Something went wrong inside Parley; nothing was changed. The error is logged under request " + req.id + ".", Visibility: chat.Private})
		}
	}()
	p.sweepIfDue(ctx)

	key := ""
	if msg.EventID != "" {
		key = msg.Platform + ":" + msg.EventID
		if p.duplicateHere(key) {
			p.dropDuplicate(msg)
			return
		}
	}
	shared := key != "" && p.deps.SeenEvents != nil && p.deps.SeenEvents.Shared(key)
	reason := p.checkInput(&req.msg)
	limited := reason == "" && !p.allowRate(msg.Subject())
	if reason != "" || limited {
		if shared && p.duplicateShared(ctx, key) {
			p.dropDuplicate(msg)
			return
		}
		if limited {
			p.cfg.Metrics.Message(msg.Platform, "rate_limited")
			p.cfg.Metrics.RateLimited(msg.Platform)
			reason = "You are sending requests faster than I take them; wait a few seconds and try again."
		} else {
			p.cfg.Metrics.Message(msg.Platform, "rejected")
		}
		p.rejectInput(ctx, req, reason)
		return
	}
	// Whatever the request noted is stored before Handle returns; every
	// answer waits for it anyway (reply), so this only catches a path
	// that ends without one.
	defer func() {
		if _, err := p.settle(ctx, req); err != nil {
			p.log.Error("audit events of an unanswered request were not written", "request", req.id, "err", err)
		}
	}()
	// takenBy lets a later start tell a request this process never
	// answered (it stopped) from one it is still handling.
	received := audit.Event{Type: audit.MessageReceived, Text: req.msg.Text,
		Details: map[string]string{takenBy: p.deps.Confirmations.Self()}}
	if shared {
		// The platform took the event back as delivered before it was
		// handled: the claim that keeps other replicas off it and the
		// record that lets a restart answer it commit together, so that
		// no crash leaves it claimed and unrecorded (dropped as a
		// redelivery, never answered).
		if p.take(ctx, req, key, received) {
			p.dropDuplicate(msg)
			return
		}
	} else {
		// Written with the request's first write that must be durable:
		// before any answer, any confirmation stored, any change run.
		p.note(ctx, req, received)
	}
	p.cfg.Metrics.Message(msg.Platform, "accepted")
	crashpoint.At(crashpoint.MessageTaken)
	if msg.Action != nil {
		p.handleClick(ctx, req)
		return
	}
	if cmd, ok := parseConfirmCommand(req.msg.Text); ok {
		p.handleConfirmCommand(ctx, req, cmd)
		return
	}
	if id, ok := parseCancelEval(req.msg.Text); ok && p.deps.CancelEval != nil {
		p.handleCancelEval(ctx, req, id)
		return
	}
	p.handleRequest(ctx, req)
}

// checkInput validates and cleans the message in place; it returns a
// user-facing reason when the message cannot be handled.
func (p *Pipeline) checkInput(m *chat.Message) string {
	if m.User == "" || m.Platform == "" {
		return "I could not tell who sent that message, so I am ignoring it."
	}
	if m.CutFrom > 0 || len(m.Text) > p.cfg.MaxTextBytes {
		size := max(m.CutFrom, len(m.Text))
		return fmt.Sprintf("That message is %s; I read requests of up to %s. Nothing was run.", byteSize(size), byteSize(p.cfg.MaxTextBytes))
	}
	if !utf8.ValidString(m.Text) {
		return "That message is not valid UTF-8 text, so I cannot read it. Nothing was run."
	}
	m.Text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, m.Text)
	if strings.TrimSpace(m.Text) == "" && m.Action == nil {
		return "That message was empty. Say \"help\" to see what I can do."
	}
	return ""
}

func (p *Pipeline) rejectInput(ctx context.Context, req *request, reason string) {
	text := reason
	if _, err := p.record(ctx, req, audit.Event{Type: audit.InputRejected, Text: req.msg.Text, Error: reason}); err != nil {
		text += auditNote(err)
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: text, Visibility: chat.Private})
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// dropDuplicate drops a redelivered event.
func (p *Pipeline) dropDuplicate(msg chat.Message) {
	p.log.Debug("dropping redelivered event", "event", msg.EventID)
	p.cfg.Metrics.Message(msg.Platform, "duplicate")
}

// duplicateShared reports whether another replica (or an earlier run)
// took the event, taking it otherwise. When SeenEvents fails the event
// counts as new: answering a redelivery twice is better than dropping a
// request.
func (p *Pipeline) duplicateShared(ctx context.Context, key string) bool {
	seen, err := p.deps.SeenEvents.Seen(ctx, key, p.cfg.Now())
	if err != nil {
		p.log.Warn("shared de-duplication failed; handling the message", "event", key, "err", err)
		return false
	}
	return seen
}

// take claims the event in the shared store and records received in the
// same commit, and reports whether the event was a duplicate (nothing is
// recorded then). When that write fails the event counts as new, and
// received is handed to the audit log again: its failure, if the log is
// what failed, is told with the request's answer.
func (p *Pipeline) take(ctx context.Context, req *request, key string, received audit.Event) (duplicate bool) {
	now := p.cfg.Now()
	var claimErr error
	_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		seen, err := p.deps.SeenEvents.SeenTx(ctx, tx, key, now)
		if err != nil {
			claimErr = err
			return nil, err
		}
		claimErr, duplicate = nil, seen
		if seen {
			return nil, nil
		}
		return []audit.Event{received}, nil
	})
	switch {
	case err == nil:
		return duplicate
	case claimErr != nil:
		// The shared store failed, not the audit log: the event is taken
		// here only, and received is recorded as for any platform.
		p.log.Warn("shared de-duplication failed; handling the message", "event", key, "err", err)
		p.note(ctx, req, received)
	default:
		// The audit log failed (counted and logged): the answer says so.
		req.mu.Lock()
		req.lost = err
		req.mu.Unlock()
	}
	return false
}

// duplicateHere reports whether this process saw the event recently,
// remembering it.
func (p *Pipeline) duplicateHere(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[key]; ok {
		return true
	}
	p.seen[key] = p.cfg.Now()
	p.seenQ = append(p.seenQ, key)
	if len(p.seenQ) > p.cfg.DedupeCapacity {
		delete(p.seen, p.seenQ[0])
		p.seenQ = p.seenQ[1:]
	}
	return false
}

// bucket is a token bucket per subject.
type bucket struct {
	tokens float64
	last   time.Time
}

func (p *Pipeline) allowRate(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	b, ok := p.buckets[subject]
	if !ok {
		b = &bucket{tokens: float64(p.cfg.RateBurst), last: now}
		p.buckets[subject] = b
	}
	b.tokens = min(float64(p.cfg.RateBurst), b.tokens+float64(now.Sub(b.last))/float64(p.cfg.RateEvery))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// identify fills the request's identity into e.
func identify(req *request, e *audit.Event) {
	e.RequestID = req.id
	e.Platform = req.msg.Platform
	e.Channel = req.msg.ChannelRef()
	e.Thread = req.msg.Thread
	if e.Subject == "" {
		e.Subject = req.msg.Subject()
	}
}

// note hands an audit event of the request to the log without waiting
// for it to be stored: it shares the commit of the request's next write
// that must be durable (record, recordWith, and every reply wait for it),
// or is written within the audit log's commit window. Use it for steps
// nothing is done on the strength of yet: a request received, routed and
// decided, a read about to run. Its failure is told with the next wait.
func (p *Pipeline) note(ctx context.Context, req *request, e audit.Event) {
	identify(req, &e)
	// The write outlives the request's cancellation (a shutdown in the
	// middle of an action must still be recorded); settle bounds the wait.
	pending := p.deps.Audit.EnqueueOne(context.WithoutCancel(ctx), e)
	req.mu.Lock()
	req.noted = append(req.noted, pending)
	req.mu.Unlock()
}

// settle waits until every event the request noted is stored, renders
// them into the thread when the trail is on, and returns the last. The
// first failure is counted, logged and returned; the caller tells the
// user.
func (p *Pipeline) settle(ctx context.Context, req *request) (audit.Event, error) {
	req.mu.Lock()
	list, lost := req.noted, req.lost
	req.noted, req.lost = nil, nil
	req.mu.Unlock()
	if len(list) == 0 {
		return audit.Event{}, lost
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	var last audit.Event
	var stored []audit.Event // for the trail only
	var first error
	for _, n := range list {
		evs, err := n.Wait(wctx)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if len(evs) > 0 {
			last = evs[len(evs)-1]
		}
		if p.cfg.Trail {
			stored = append(stored, evs...)
		}
	}
	p.trail(ctx, req, stored)
	if first != nil {
		p.cfg.Metrics.AuditWriteFailed()
		p.log.Error("audit write failed", "request", req.id, "err", first)
		return last, first
	}
	return last, lost
}

// forgetFullBuckets drops the rate buckets that have refilled: a full
// bucket is what a subject never seen gets, so keeping it only costs
// memory (one per subject ever seen, on a long-running serve). Call with
// p.mu held.
func (p *Pipeline) forgetFullBuckets(now time.Time) {
	burst := float64(p.cfg.RateBurst)
	for subject, b := range p.buckets {
		if b.tokens+float64(now.Sub(b.last))/float64(p.cfg.RateEvery) >= burst {
			delete(p.buckets, subject)
		}
	}
}

// record writes an audit event for the request, filling the request's
// identity, and waits until it is stored, with everything the request
// noted before it (one commit). It renders them into the thread when the
// trail is on. A failure is counted and logged here; the caller tells the
// user.
func (p *Pipeline) record(ctx context.Context, req *request, e audit.Event) (audit.Event, error) {
	p.note(ctx, req, e)
	last, err := p.settle(ctx, req)
	if err != nil {
		return audit.Event{}, err
	}
	return last, nil
}

// recordWith commits the store writes write makes together with the
// events it returns, each filled with the request's identity (see
// Auditor.RecordWith), and renders the events into the thread when the
// trail is on. What the request noted before is stored first, in its own
// commit: the request is on record as taken before any store change is
// made for it (a crash inside the change leaves a request to answer, not
// none). A failure is counted and logged here; the caller tells the user.
func (p *Pipeline) recordWith(ctx context.Context, req *request, write func(tx *store.Tx) ([]audit.Event, error)) ([]audit.Event, error) {
	if _, err := p.settle(ctx, req); err != nil {
		return nil, err
	}
	return p.recordEvents(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		events, err := write(tx)
		for i := range events {
			identify(req, &events[i])
		}
		return events, err
	})
}

// recordEvents is recordWith for events that carry their own identity
// (recovery and expiry, which no message triggered); req names the work in
// the log. The trail renders each event into its own thread.
func (p *Pipeline) recordEvents(ctx context.Context, req *request, write func(tx *store.Tx) ([]audit.Event, error)) ([]audit.Event, error) {
	// The audit write outlives the request's cancellation (a shutdown in
	// the middle of an action must still be recorded), within a bound.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	stored, err := p.deps.Audit.RecordWith(actx, write)
	cancel()
	if err != nil {
		p.cfg.Metrics.AuditWriteFailed()
		p.log.Error("audit write failed", "request", req.id, "err", err)
		return nil, err
	}
	p.trail(ctx, req, stored)
	return stored, nil
}

// trail renders stored events into their threads when the trail is on.
func (p *Pipeline) trail(ctx context.Context, req *request, stored []audit.Event) {
	if !p.cfg.Trail {
		return
	}
	for _, e := range stored {
		_, channel, _ := strings.Cut(e.Channel, ":") // "platform:id"
		step := chat.Reply{Kind: chat.KindAudit, Text: audit.Format(e), Platform: e.Platform, Channel: channel, Thread: e.Thread}
		if _, err := p.deps.Sender.Send(ctx, step); err != nil {
			// The step is in the audit log; only its echo in the thread is lost.
			p.log.Warn("audit trail step not delivered", "request", req.id, "seq", e.Seq, "err", err)
		}
	}
}

// auditTimeout bounds one audit write.
const auditTimeout = 10 * time.Second

// reply sends a reply in the request's thread. A reply that cannot be
// delivered is logged and audited (reply.failed), never dropped silently;
// replyChecked also returns the failure to a caller that must act on it.
func (p *Pipeline) reply(ctx context.Context, req *request, r chat.Reply) string {
	id, _ := p.replyChecked(ctx, req, r) // a failure is logged and audited inside
	return id
}

// replyChecked is reply, returning the delivery error. A reply tells of
// what the request did, so what it noted is stored first; if that fails,
// the reply says so.
func (p *Pipeline) replyChecked(ctx context.Context, req *request, r chat.Reply) (string, error) {
	if _, err := p.settle(ctx, req); err != nil {
		r.Text += auditNote(err)
	}
	req.mu.Lock()
	req.lastReply = r
	req.mu.Unlock()
	id, err := p.send(ctx, req, r)
	if err != nil {
		p.log.Warn("reply failed", "request", req.id, "err", err)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		defer cancel()
		if _, aerr := p.deps.Audit.Record(actx, audit.Event{
			Type: audit.ReplyFailed, RequestID: req.id, Platform: req.msg.Platform,
			Channel: req.msg.ChannelRef(), Thread: req.msg.Thread, Subject: req.msg.Subject(),
			Error: err.Error(), Outcome: preview(r.Text, 200),
		}); aerr != nil {
			// Neither the chat nor the audit log took it: the log line is
			// what is left.
			p.cfg.Metrics.AuditWriteFailed()
			p.log.Error("auditing an undelivered reply failed", "request", req.id, "err", aerr, "reply", preview(r.Text, 200))
		}
	}
	return id, err
}

// auditNote is what a reply adds when the audit record of what it reports
// could not be written: the user hears it, in plain words.
func auditNote(err error) string {
	return fmt.Sprintf("\n(I could not write this to the audit log: %v. Tell whoever runs Parley.)", err)
}

// send delivers r in the request's thread. Every reply and trail step
// passes here, so this is where secrets are taken out of what Parley says:
// a token in a request, an error or an action's output is never echoed.
func (p *Pipeline) send(ctx context.Context, req *request, r chat.Reply) (string, error) {
	r = redact.Reply(r)
	r.Platform = req.msg.Platform
	if r.Visibility == chat.Private && r.Recipient == "" {
		r.Recipient = req.msg.User // private answers go to the asker
	}
	if r.Channel == "" {
		r.Channel = req.msg.Channel
	}
	if r.Thread == "" {
		r.Thread = req.msg.Thread
	}
	return p.deps.Sender.Send(ctx, r)
}

func preview(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// threadKey keys a thread's history per user: a follow-up ("scale it to
// 4") reads only its sender's earlier turns, never another person's in the
// same thread or console channel.
func threadKey(m chat.Message) string { return m.ChannelRef() + "/" + m.Thread + "/" + m.Subject() }

// turns returns the sender's recent turns in the message's thread.
func (p *Pipeline) turns(m chat.Message) []intent.Turn {
	if p.cfg.HistoryTurns < 0 || m.Thread == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]intent.Turn(nil), p.history[threadKey(m)]...)
}

// remember adds a routed turn to the thread's history, bounded in turns
// per thread and in threads.
func (p *Pipeline) remember(m chat.Message, t intent.Turn) {
	if p.cfg.HistoryTurns < 0 || m.Thread == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := threadKey(m)
	h, ok := p.history[k]
	if !ok {
		p.histQ = append(p.histQ, k)
		if len(p.histQ) > 2000 {
			delete(p.history, p.histQ[0])
			p.histQ = p.histQ[1:]
		}
	}
	h = append(h, t)
	if len(h) > p.cfg.HistoryTurns {
		h = h[len(h)-p.cfg.HistoryTurns:]
	}
	p.history[k] = h
}

// sweepIfDue expires overdue confirmations before a message is handled,
// at most once a second: the sweep is a write to the store, and a busy
// channel must not pay it on every message. The app's ticker sweeps too.
func (p *Pipeline) sweepIfDue(ctx context.Context) {
	now := p.cfg.Now()
	p.mu.Lock()
	due := now.Sub(p.swept) >= time.Second || now.Before(p.swept)
	if due {
		p.swept = now
		p.forgetFullBuckets(now)
	}
	p.mu.Unlock()
	if due {
		p.sweep(ctx)
	}
}
