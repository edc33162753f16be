package incident

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
)

// work is a group's worker: it posts the group's message, then edits it
// as alerts and evidence change, at most once per GroupWait, until nothing
// is pending; then it forgets the group (the incidents table remembers
// it). A delivery that fails is tried again, 1s, 2s, 4s ... RetryMax
// apart, until ExpireAfter has passed since the oldest change it carries
// arrived; then it is given up (expire). When Run ends the worker stops
// at once, leaving what is pending to the outbox.
func (m *Manager) work(g *group) {
	for {
		m.mu.Lock()
		if m.closingLocked() {
			g.working = false
			m.mu.Unlock()
			return
		}
		if g.digest != nil { // the group now belongs to a digest
			g.working = false
			m.mu.Unlock()
			return
		}
		if g.unsaved && !g.dirty {
			m.mu.Unlock()
			m.retrySave(g)
			continue
		}
		if !g.dirty {
			// Linger until an edit would be allowed again, so a change
			// arriving meanwhile is paced like any other.
			if rest := m.o.GroupWait - time.Since(g.lastSend); !g.gathering && rest > 0 {
				m.mu.Unlock()
				m.sleepOrWake(rest, g.wake)
				continue
			}
			if !g.gathering {
				g.working = false
				if m.groups[g.key] == g {
					delete(m.groups, g.key)
				}
				m.mu.Unlock()
				return
			}
			m.mu.Unlock()
			m.sleepOrWake(time.Hour, g.wake) // the gatherer always signals when it ends
			continue
		}
		if g.msgID != "" {
			if wait := m.o.GroupWait - time.Since(g.lastSend); wait > 0 {
				m.mu.Unlock()
				m.sleepOrWake(wait, g.wake)
				continue
			}
		}
		if m.expiredLocked(g.due) {
			m.mu.Unlock()
			m.expire(g)
			continue
		}
		plan := m.plan(g)
		m.mu.Unlock()

		err := m.flush(g, plan)
		if err == nil {
			continue
		}
		m.mu.Lock()
		closing := m.closingLocked()
		if !closing {
			g.attempts++
			g.lastErr = clip(err.Error(), 500)
			g.images = append(plan.images, g.images...)
		}
		if g.gen == plan.gen {
			g.dirty = true
		}
		attempts, channel := g.attempts, g.channel
		m.mu.Unlock()
		if closing {
			continue // stopped mid-send: the outbox keeps it
		}
		platform, _, _ := splitChannel(channel)
		m.o.Metrics.SendFailed(platform)
		wait := backoff(attempts, m.o.RetryMax)
		m.log.Warn("incident message not delivered; retrying", "channel", channel, "group_key", clip(g.key, 200),
			"attempt", attempts, "retry_in", wait, "err", err)
		if err := m.save(context.Background(), g); err != nil {
			m.o.Metrics.StateSaveFailed()
			m.log.Error("incident outbox not updated", "group_key", clip(g.key, 200), "err", err)
		}
		m.sleep(wait)
	}
}

// retrySave writes the state of a delivered message that could not be
// written right after the delivery, backing off while the store refuses.
func (m *Manager) retrySave(g *group) {
	err := m.save(context.Background(), g)
	m.mu.Lock()
	if err == nil {
		g.unsaved = false
		g.attempts = 0
	} else {
		g.attempts++
	}
	attempts := g.attempts
	m.mu.Unlock()
	if err != nil {
		m.o.Metrics.StateSaveFailed()
		m.log.Error("incident state still not saved; retrying", "group_key", clip(g.key, 200), "err", err)
		m.sleep(backoff(attempts, m.o.RetryMax))
	}
}

// expiredLocked reports whether a change that arrived at due has waited
// ExpireAfter.
func (m *Manager) expiredLocked(due time.Time) bool {
	return !due.IsZero() && m.o.Now().Sub(due) >= m.o.ExpireAfter
}

// expire gives up what g's message does not show yet: counted, logged,
// audited (incident.expired), and removed from the outbox. The group
// stays as it was shown; its next change is delivered as usual.
func (m *Manager) expire(g *group) {
	m.mu.Lock()
	what := "an update of the message"
	if g.msgID == "" {
		what = "the first message"
	}
	due, attempts, lastErr, channel := g.due, g.attempts, g.lastErr, g.channel
	g.dirty, g.images, g.due, g.attempts, g.lastErr = false, nil, time.Time{}, 0, ""
	if g.waitingFirst {
		m.laneLocked(g.channel).waitingFirst--
		g.waitingFirst = false
	}
	v := m.viewLocked(g)
	m.mu.Unlock()
	m.expired(g, channel, what, due, attempts, lastErr, v.counts())
	if err := m.save(context.Background(), g); err != nil {
		m.o.Metrics.StateSaveFailed()
		m.log.Error("expired incident message still in the outbox", "group_key", clip(g.key, 200), "err", err)
	}
}

// expired reports one given-up message.
func (m *Manager) expired(g *group, channel, what string, due time.Time, attempts int, lastErr, alerts string) {
	platform, _, _ := splitChannel(channel)
	waited := m.o.Now().Sub(due).Round(time.Second)
	m.o.Metrics.Expired(platform)
	m.log.Error("incident message given up: not delivered in time", "channel", channel, "group_key", clip(g.key, 200),
		"what", what, "waited", waited, "attempts", attempts, "err", lastErr)
	if lastErr == "" {
		lastErr = "not delivered"
	}
	m.audit(context.Background(), audit.Event{Type: audit.IncidentExpired, RequestID: g.requestID, Platform: platform,
		Channel: channel, Subject: subjectOf(g.receiver), Error: clip(lastErr, 500),
		Outcome: fmt.Sprintf("%s was not delivered within %s and was given up", what, action.FormatDuration(m.o.ExpireAfter)),
		Details: map[string]string{"group_key": g.key, "what": what, "pending_since": due.UTC().Format(time.RFC3339),
			"attempts": fmt.Sprint(attempts), "alerts": alerts}})
}

// sleepOrWake waits d, or less when wake fires (the group or digest
// changed) or Run ends.
func (m *Manager) sleepOrWake(d time.Duration, wake <-chan struct{}) {
	m.mu.Lock()
	c := m.closing
	m.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-c:
	}
}

// flushPlan is one send of a group, prepared under the lock.
type flushPlan struct {
	gen       int
	first     bool
	reconcile bool
	postKey   string
	postAt    time.Time
	msgID     string
	thread    string
	channel   string
	view      view
	notes     []string
	images    []chat.Image
	posted    map[string]string
	truncated int
	arrived   time.Time
	at        time.Time // when the plan was made
}

// viewLocked is what g's message shows now; m.mu is held.
func (m *Manager) viewLocked(g *group) view {
	return view{key: g.key, receiver: g.receiver, snap: g.snap.clone(), firstSeen: g.firstSeen, now: m.o.Now(),
		hasLogs: m.hasLogs, window: m.o.Window, gathers: m.canGather, silence: m.o.Silence, podLogs: m.o.PodLogs}
}

// plan takes what is to be sent and clears the dirty flag; m.mu is held.
func (m *Manager) plan(g *group) flushPlan {
	p := flushPlan{
		gen: g.gen, first: g.msgID == "", msgID: g.msgID, thread: g.thread, channel: g.channel,
		images: g.images, truncated: g.snap.Truncated, arrived: g.arrived, at: m.o.Now(),
		posted: make(map[string]string, len(g.snap.Alerts)),
	}
	for _, a := range g.snap.Alerts {
		p.posted[a.Fingerprint] = a.Status
	}
	if p.first {
		if g.postKey == "" {
			g.postKey = postKeyOf("incident", g.key, g.firstSeen.UTC().Format(time.RFC3339Nano))
			g.postAt = m.o.Now().UTC()
		}
		p.postKey, p.postAt, p.reconcile = g.postKey, g.postAt, g.reconcile
	} else {
		p.notes = notes(g.posted, g.snap.Alerts, m.o.Now())
	}
	p.view = m.viewLocked(g)
	g.images = nil
	g.dirty = false
	return p
}

// errStopped is a send cut short because Run ended.
var errStopped = errors.New("incident delivery stopped: no longer the posting replica")

// flush sends one plan: the message (posted or edited), then the thread
// notes and charts, then records it. A first post is recorded as begun
// (its idempotency key) before it is made, and a post begun before a
// crash is looked for before it is made again.
func (m *Manager) flush(g *group, p flushPlan) error {
	release, ok := m.takeSend(p.channel)
	if !ok {
		return errStopped
	}
	defer release()
	m.mu.Lock()
	runCtx := m.runCtx
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(runCtx, m.o.SendTimeout)
	defer cancel()
	platform, channelID, _ := splitChannel(p.channel)
	reply, sugg := p.view.reply()
	reply = redact.ReplyWith(reply, m.redact) // payloads are redacted on arrival; this covers evidence and summaries too
	reply.Platform, reply.Channel = platform, channelID
	msgID, thread := p.msgID, p.thread
	found := false
	if p.first {
		if p.reconcile && m.finder != nil {
			probe := reply
			probe.IdempotencyKey = p.postKey
			id, err := m.finder.FindPosted(ctx, probe, p.postAt.Add(-time.Minute))
			switch {
			case err == nil && id != "":
				m.log.Info("first post interrupted by a restart was made; editing it instead of posting again",
					"group_key", clip(g.key, 200), "message_id", id)
				msgID, thread, found = id, id, true
			case err != nil && errors.Is(err, action.ErrUnavailable):
				return fmt.Errorf("look for a post interrupted by a restart: %w", err)
			case err != nil:
				m.log.Warn("cannot look for a post interrupted by a restart; posting (the channel may show it twice)",
					"group_key", clip(g.key, 200), "err", err)
			}
		}
		if !found {
			// The intent first: a crash after the post and before its id
			// is written leaves the key, which the next start looks for.
			// The write has its own deadline (StateTimeout), not a share
			// of SendTimeout's, and ends with Run.
			if err := m.save(runCtx, g); err != nil {
				m.o.Metrics.StateSaveFailed()
				return fmt.Errorf("record the post before making it: %w", err)
			}
			reply.IdempotencyKey = p.postKey
			id, err := m.o.Sender.Send(ctx, reply)
			if err != nil {
				return fmt.Errorf("post: %w", err)
			}
			msgID, thread = id, id
		}
	}
	if !p.first || found {
		reply.UpdateOf, reply.IdempotencyKey = msgID, ""
		if _, err := m.o.Sender.Send(ctx, reply); err != nil {
			if !found {
				return fmt.Errorf("update: %w", err)
			}
			m.log.Warn("found post not brought up to date; the next change edits it", "err", err)
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
	g.attempts, g.lastErr = 0, ""
	var fresh []suggestion
	for _, s := range sugg {
		if !slices.Contains(g.snap.Suggested, s.key()) {
			g.snap.Suggested = append(g.snap.Suggested, s.key())
			fresh = append(fresh, s)
		}
	}
	// Gather once the message is out: after its first post, or after a
	// restart cut a gathering short (the evidence was not kept).
	startGather := m.canGather && !g.gathering && g.snap.Evidence == nil && anyFiring(p.posted)
	if startGather {
		g.gathering = true
		g.snap.Evidence = &evidence{}
	}
	if p.first {
		g.postKey, g.postAt, g.reconcile, g.arrived = "", time.Time{}, false, time.Time{}
		if g.waitingFirst {
			m.laneLocked(g.channel).waitingFirst--
			g.waitingFirst = false
		}
	}
	switch {
	case !g.dirty && !g.gathering:
		g.due = time.Time{}
	case g.due.Before(p.at):
		// What is still pending arrived after this plan was made (or is
		// evidence being gathered): expiry counts from the plan.
		g.due = p.at
	}
	m.mu.Unlock()

	if startGather {
		m.startGather(g, p.gen, targetOf(p.view.snap))
	}
	// The save has its own deadline, not what the chat calls left of
	// SendTimeout: under a slow chat API the message is out and its state
	// must still be written.
	err := m.save(context.WithoutCancel(ctx), g)
	m.mu.Lock()
	g.unsaved = err != nil
	m.mu.Unlock()
	if err != nil {
		m.o.Metrics.StateSaveFailed()
		m.log.Error("incident state not saved; retrying (after a restart, a post begun is looked for before it is made again)",
			"group_key", clip(g.key, 200), "err", err)
	}
	ev := audit.Event{RequestID: g.requestID, Platform: platform, Channel: p.channel, Thread: thread,
		Subject: subjectOf(g.receiver), Outcome: clip(firstLine(reply.Text), 300), Text: clip(reply.Text, 1500),
		Details: map[string]string{"group_key": g.key, "message_id": msgID, "alerts": p.view.counts()}}
	if p.first {
		took := m.o.Now().Sub(p.arrived)
		if p.arrived.IsZero() || took < 0 {
			took = 0
		}
		m.o.Metrics.Posted(took)
		ev.Type, ev.Duration = audit.IncidentPosted, took
		if found {
			ev.Details["reconciled"] = "the post made before a restart was found and edited"
		}
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
			g.markDirtyLocked(m.o.Now())
		}
		m.mu.Unlock()
		g.signal()
	}
	images := func(imgs []chat.Image) {
		m.mu.Lock()
		if g.gen == gen {
			g.images = append(g.images, imgs...)
			g.markDirtyLocked(m.o.Now())
		}
		m.mu.Unlock()
		g.signal()
	}
	m.mu.Lock()
	ctx := m.runCtx
	m.mu.Unlock()
	m.wg.Go(func() {
		defer func() {
			m.mu.Lock()
			g.gathering = false
			m.mu.Unlock()
			g.signal()
		}()
		select {
		case m.gathers <- struct{}{}:
			defer func() { <-m.gathers }()
		case <-ctx.Done():
			return
		}
		m.gather(ctx, t, g.channel, g.requestID, update, images)
	})
}
