package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Bounds of the per-thread audit-trail message: past these, the next step
// starts a new message, so a long trail never hits Slack's limits.
const (
	trailMaxSteps   = 40
	trailMaxChars   = 2800
	trailsPerQueue  = 256 // threads whose trail message a channel remembers
	maxRateLimited  = 20  // 429 answers absorbed for one call before giving up
	maxIdleChannels = 4096
)

// errStopped is returned for replies still queued when Run ends.
var errStopped = fmt.Errorf("slack: adapter stopped: %w", action.ErrUnavailable)

// outbox owns the per-channel delivery queues. Each channel has one FIFO
// queue drained by at most one worker goroutine at a time, which paces the
// calls (PostInterval apart), honours 429 Retry-After and retries transient
// failures. Workers are started on demand and owned by Run.
type outbox struct {
	a *Adapter

	mu     sync.Mutex
	ctx    context.Context // Run's; nil while not running
	closed bool
	wg     sync.WaitGroup
	queues map[string]*queue
}

type queue struct {
	channel string

	mu      sync.Mutex
	jobs    []*job
	running bool
	trails  map[string]*trail // thread -> its audit-trail message
	order   []string          // trails in insertion order, for eviction

	next time.Time // earliest time of the next call; the worker's alone
}

// trail is the one coalesced audit-trail message of a thread.
type trail struct {
	ts      string   // the message, once posted
	steps   []string // every step shown in it, delivered or queued
	pending *job     // a queued, not yet started update that new steps join
	posted  chan struct{}
	once    sync.Once
}

func (t *trail) markPosted() { t.once.Do(func() { close(t.posted) }) }

func (t *trail) fits(step string) bool {
	return len(t.steps) < trailMaxSteps && trailSize(append(t.steps[:len(t.steps):len(t.steps)], step)) <= trailMaxChars
}

// job is one delivery. A blocking job has a done channel and the caller's
// context; an async job (an audit step joining a posted trail) reports a
// final failure through OnUndelivered.
type job struct {
	ctx   context.Context
	reply chat.Reply
	raw   string // a top-level message of ready mrkdwn (a slash command's anchor)
	trail *trail
	steps []chat.Reply // audit steps this job delivers
	done  chan result
}

type result struct {
	ts  string
	err error
}

func newOutbox(a *Adapter) *outbox {
	return &outbox{a: a, queues: map[string]*queue{}}
}

func (o *outbox) open(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ctx, o.closed = ctx, false
}

// close refuses new jobs and waits for the workers, which fail what is left
// quickly once Run's context has ended.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wg.Wait()
	o.mu.Lock()
	o.ctx = nil
	o.mu.Unlock()
}

// queue returns the channel's queue, starting nothing.
func (o *outbox) queue(channel string) (*queue, context.Context, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx == nil || o.closed {
		return nil, nil, fmt.Errorf("slack: adapter is not running: %w", action.ErrUnavailable)
	}
	q, ok := o.queues[channel]
	if !ok {
		if len(o.queues) >= maxIdleChannels {
			o.dropIdleLocked()
		}
		q = &queue{channel: channel, trails: map[string]*trail{}}
		o.queues[channel] = q
	}
	return q, o.ctx, nil
}

func (o *outbox) dropIdleLocked() {
	for id, q := range o.queues {
		q.mu.Lock()
		idle := !q.running && len(q.jobs) == 0
		q.mu.Unlock()
		if idle {
			delete(o.queues, id)
		}
	}
}

// pushLocked appends j and starts the worker if none runs. q.mu is held.
func (o *outbox) pushLocked(q *queue, j *job) error {
	q.jobs = append(q.jobs, j)
	if q.running {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.ctx == nil {
		q.jobs = q.jobs[:len(q.jobs)-1]
		return errStopped
	}
	q.running = true
	runCtx := o.ctx
	o.wg.Add(1)
	go o.work(runCtx, q)
	return nil
}

// send queues a reply and waits for its delivery.
func (o *outbox) send(ctx context.Context, r chat.Reply) (string, error) {
	q, _, err := o.queue(r.Channel)
	if err != nil {
		return "", err
	}
	j := &job{ctx: ctx, reply: r, done: make(chan result, 1)}
	q.mu.Lock()
	err = o.pushLocked(q, j)
	q.mu.Unlock()
	if err != nil {
		return "", err
	}
	return wait(ctx, j)
}

func wait(ctx context.Context, j *job) (string, error) {
	select {
	case res := <-j.done:
		return res.ts, res.err
	case <-ctx.Done():
		select {
		case res := <-j.done:
			return res.ts, res.err
		default:
		}
		return "", fmt.Errorf("slack: reply not delivered: %w", ctx.Err())
	}
}

// sendRaw posts ready mrkdwn text as a new message in channel through the
// channel's queue and returns its ts.
func (o *outbox) sendRaw(ctx context.Context, channel, text string) (string, error) {
	q, _, err := o.queue(channel)
	if err != nil {
		return "", err
	}
	j := &job{ctx: ctx, reply: chat.Reply{Platform: chat.Slack, Channel: channel}, raw: text, done: make(chan result, 1)}
	q.mu.Lock()
	err = o.pushLocked(q, j)
	q.mu.Unlock()
	if err != nil {
		return "", err
	}
	return wait(ctx, j)
}

// sendAudit coalesces an audit step into its thread's trail message. The
// first step of a trail posts the message and waits for it; later steps
// join the pending update and return the trail's id at once.
func (o *outbox) sendAudit(ctx context.Context, r chat.Reply) (string, error) {
	q, _, err := o.queue(r.Channel)
	if err != nil {
		return "", err
	}
	step := strings.TrimSpace(r.Text)
	q.mu.Lock()
	tr := q.trails[r.Thread]
	if tr == nil || !tr.fits(step) {
		tr = &trail{posted: make(chan struct{})}
		q.rememberLocked(r.Thread, tr)
	}
	tr.steps = append(tr.steps, step)
	if tr.ts == "" {
		// Not posted yet: this step waits for the message like a reply.
		j := &job{ctx: ctx, reply: r, trail: tr, steps: []chat.Reply{r}, done: make(chan result, 1)}
		err := o.pushLocked(q, j)
		q.mu.Unlock()
		if err != nil {
			return "", err
		}
		return wait(ctx, j)
	}
	ts := tr.ts
	if tr.pending != nil {
		tr.pending.steps = append(tr.pending.steps, r)
		q.mu.Unlock()
		return ts, nil
	}
	j := &job{reply: r, trail: tr, steps: []chat.Reply{r}}
	tr.pending = j
	err = o.pushLocked(q, j)
	q.mu.Unlock()
	if err != nil {
		return "", err
	}
	return ts, nil
}

func (q *queue) rememberLocked(thread string, tr *trail) {
	if _, ok := q.trails[thread]; !ok {
		q.order = append(q.order, thread)
	}
	q.trails[thread] = tr
	for len(q.order) > trailsPerQueue {
		delete(q.trails, q.order[0])
		q.order = q.order[1:]
	}
}

// work drains q until it is empty.
func (o *outbox) work(runCtx context.Context, q *queue) {
	defer o.wg.Done()
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		if j.trail != nil && j.trail.pending == j {
			j.trail.pending = nil // later steps start a new update
		}
		q.mu.Unlock()

		ctx, cancel := jobContext(runCtx, j.ctx)
		ts, err := o.deliver(ctx, q, j)
		cancel()
		if err != nil && runCtx.Err() != nil {
			err = errStopped
		}
		o.finish(runCtx, j, ts, err)
	}
}

// jobContext ends when Run ends or, for a blocking job, when its caller
// gives up.
func jobContext(runCtx, caller context.Context) (context.Context, context.CancelFunc) {
	if caller == nil {
		return context.WithCancel(runCtx)
	}
	ctx, cancel := context.WithCancel(caller)
	stop := context.AfterFunc(runCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (o *outbox) finish(runCtx context.Context, j *job, ts string, err error) {
	if j.done != nil {
		j.done <- result{ts: ts, err: err}
		return
	}
	if err == nil {
		return
	}
	o.a.log.Warn("audit step not delivered", "channel", j.reply.Channel, "thread", j.reply.Thread, "steps", len(j.steps), "err", err)
	for _, s := range j.steps {
		o.a.undelivered(context.WithoutCancel(runCtx), s, err)
	}
}

// deliver performs one job: the message (post, update or trail), then any
// images into the thread.
func (o *outbox) deliver(ctx context.Context, q *queue, j *job) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("slack: reply not delivered: %w", err)
	}
	r := j.reply
	switch pr, private := o.a.private.get(r.Thread); {
	case j.raw != "":
		return o.deliverRaw(ctx, q, r.Channel, j.raw)
	case j.trail != nil:
		return o.deliverTrail(ctx, q, j)
	case private:
		return "", o.deliverPrivateRequest(ctx, q, r, pr)
	case r.Visibility == chat.Private && r.Recipient != "" && r.UpdateOf == "" && len(r.Images) == 0:
		err := o.deliverEphemeral(ctx, q, r, r.Channel, r.Recipient, r.Thread)
		if err == nil || !ephemeralImpossible(err) {
			return "", err
		}
		// Slack takes no ephemeral message for this person here (they
		// left the channel, or it is a DM Parley is not in): they still
		// get the answer, in the thread.
		o.a.log.Info("cannot answer privately; answering in the thread", "channel", r.Channel, "err", err)
	}
	msg := Render(r)
	var ts string
	err := o.call(ctx, q, func(ctx context.Context, plain bool) error {
		opts := messageOptions(msg, r, plain)
		var err error
		if r.UpdateOf != "" {
			_, ts, _, err = o.a.api.UpdateMessageContext(ctx, r.Channel, r.UpdateOf, opts...)
			if err == nil && ts == "" {
				ts = r.UpdateOf
			}
			return err
		}
		opts = append(opts, slack.MsgOptionDisableLinkUnfurl())
		if r.Thread != "" {
			opts = append(opts, slack.MsgOptionTS(r.Thread))
		}
		if r.IdempotencyKey != "" {
			opts = append(opts, slack.MsgOptionMetadata(keyMetadata(r.IdempotencyKey)))
		}
		_, ts, err = o.a.api.PostMessageContext(ctx, r.Channel, opts...)
		return err
	})
	if err != nil {
		return "", err
	}
	if r.UpdateOf == "" {
		o.a.threads.mark(ctx, r.Channel, firstNonEmpty(r.Thread, ts))
	}
	o.uploadImages(ctx, q, r, ts)
	return ts, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// deliverRaw posts ready mrkdwn text as a new message.
func (o *outbox) deliverRaw(ctx context.Context, q *queue, channel, text string) (string, error) {
	var ts string
	err := o.call(ctx, q, func(ctx context.Context, _ bool) error {
		var err error
		_, ts, err = o.a.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl())
		return err
	})
	return ts, err
}

// deliverEphemeral posts r as an ephemeral message only user sees, in the
// thread when there is one. Slack cannot edit an ephemeral message with
// chat.update, so it has no id for later updates.
func (o *outbox) deliverEphemeral(ctx context.Context, q *queue, r chat.Reply, channel, user, thread string) error {
	msg := Render(r)
	return o.call(ctx, q, func(ctx context.Context, plain bool) error {
		opts := messageOptions(msg, r, plain)
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		_, err := o.a.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
}

// ephemeralImpossible reports whether Slack refused an ephemeral message
// for where or whom it was addressed, rather than failing.
func ephemeralImpossible(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "user_not_in_channel", "channel_not_found", "not_in_channel":
			return true
		}
	}
	return false
}

// deliverPrivateRequest answers a private slash request (help): through
// the command's response_url, which works even in a channel Parley is not
// in, else as an ephemeral message.
func (o *outbox) deliverPrivateRequest(ctx context.Context, q *queue, r chat.Reply, pr privateRequest) error {
	err := o.a.postResponse(ctx, pr.responseURL, Render(r))
	if err == nil {
		return nil
	}
	o.a.log.Info("response_url not answered; replying with an ephemeral message", "err", err)
	return o.deliverEphemeral(ctx, q, r, pr.channel, pr.user, "")
}

func messageOptions(msg Message, r chat.Reply, plain bool) []slack.MsgOption {
	if plain {
		return []slack.MsgOption{slack.MsgOptionText(PlainText(r), false)}
	}
	return []slack.MsgOption{slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...)}
}

func (o *outbox) deliverTrail(ctx context.Context, q *queue, j *job) (string, error) {
	tr := j.trail
	q.mu.Lock()
	steps := append([]string(nil), tr.steps...)
	ts := tr.ts
	q.mu.Unlock()
	msg := RenderTrail(steps)
	thread := j.reply.Thread
	err := o.call(ctx, q, func(ctx context.Context, plain bool) error {
		opts := []slack.MsgOption{slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...)}
		if plain {
			opts = []slack.MsgOption{slack.MsgOptionText(strings.Join(steps, "\n"), false)}
		}
		if ts != "" {
			_, _, _, err := o.a.api.UpdateMessageContext(ctx, j.reply.Channel, ts, opts...)
			return err
		}
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		_, posted, err := o.a.api.PostMessageContext(ctx, j.reply.Channel, opts...)
		if err == nil {
			ts = posted
		}
		return err
	})
	if err == nil {
		o.a.threads.mark(ctx, j.reply.Channel, firstNonEmpty(thread, ts))
	}
	q.mu.Lock()
	if err == nil && tr.ts == "" {
		tr.ts = ts
	}
	if err != nil && tr.ts == "" && q.trails[thread] == tr {
		delete(q.trails, thread) // the next step starts a fresh trail
	}
	q.mu.Unlock()
	tr.markPosted()
	return ts, err
}

// uploadImages shares each image into the reply's thread. A failed upload
// does not undo the posted message; it is reported through OnUndelivered.
func (o *outbox) uploadImages(ctx context.Context, q *queue, r chat.Reply, ts string) {
	thread := r.Thread
	if thread == "" {
		thread = ts
	}
	for _, img := range r.Images {
		if len(img.Data) == 0 {
			continue
		}
		name := img.Name
		if name == "" {
			name = "chart.png"
		}
		err := o.call(ctx, q, func(ctx context.Context, _ bool) error {
			_, err := o.a.api.UploadFileContext(ctx, slack.UploadFileParameters{
				Reader: bytes.NewReader(img.Data), FileSize: len(img.Data), Filename: name,
				Title: name, AltTxt: img.AltText, Channel: r.Channel, ThreadTimestamp: thread,
			})
			return err
		})
		if err != nil {
			o.a.log.Warn("image upload failed", "channel", r.Channel, "thread", thread, "image", name, "err", err)
			part := r
			part.Text, part.Fields, part.Table, part.Code, part.Buttons, part.Context = "image "+name+" could not be uploaded", nil, nil, "", nil, nil
			part.Images = []chat.Image{img}
			o.a.undelivered(context.WithoutCancel(ctx), part, err)
		}
	}
}

// call runs one Slack call paced PostInterval after the channel's previous
// one. It waits out 429 Retry-After (bounded by maxRateLimited), retries
// transient failures with exponential backoff up to MaxAttempts, and once
// retries a message Slack refused for its blocks as plain text.
func (o *outbox) call(ctx context.Context, q *queue, fn func(ctx context.Context, plain bool) error) error {
	opts := &o.a.opts
	attempts, limited, plain := 0, 0, false
	for {
		if err := sleepUntil(ctx, q.next); err != nil {
			return fmt.Errorf("slack: reply not delivered: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
		err := fn(cctx, plain)
		cancel()
		q.next = time.Now().Add(opts.PostInterval)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("slack: reply not delivered: %w", ctx.Err())
		}
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			limited++
			if limited > maxRateLimited {
				return o.a.wrap("rate limited", err, action.ErrUnavailable)
			}
			o.a.log.Debug("rate limited", "channel", q.channel, "retry_after", rl.RetryAfter)
			q.next = time.Now().Add(max(rl.RetryAfter, opts.PostInterval))
			continue
		}
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && !plain && refusedBlocks(se.Err) {
			o.a.log.Warn("slack refused the blocks; sending plain text", "channel", q.channel, "err", se.Err)
			plain = true
			continue
		}
		attempts++
		if !transient(err) || attempts >= opts.MaxAttempts {
			return o.a.wrap("post", err, kindOf(err))
		}
		q.next = time.Now().Add(backoff(opts.RetryBackoff, attempts))
	}
}

func refusedBlocks(code string) bool {
	switch code {
	case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long":
		return true
	}
	return false
}

// transient reports whether a failed call may succeed if tried again.
func transient(err error) bool {
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 500
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// kindOf maps a Slack failure to an action error kind.
func kindOf(err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "channel_not_found", "message_not_found", "thread_not_found":
			return action.ErrNotFound
		case "not_in_channel", "is_archived", "restricted_action", "cant_update_message", "missing_scope", "not_allowed_token_type":
			return action.ErrForbidden
		case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
			return action.ErrNotConfigured
		case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text":
			return action.ErrInvalid
		}
	}
	return action.ErrUnavailable
}

func backoff(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 10)
	return min(d, 30*time.Second)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
