package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
	"github.com/parley-chatops/parley/internal/store"
)

// An alert storm: more groups reach a channel than its messages can be
// delivered (Slack takes about one message a second per channel). Once
// DigestAfter groups of a channel wait for their first message, new groups
// are not given a message each: they are listed, one line a group, in the
// channel's digest, one message edited in place as groups join and
// change, DigestSize groups a message. Every group is accounted for: in
// a message of its own or on a line of a digest, audited either way
// (incident.posted, with the digest's id for a listed group).

// lane is one channel's delivery state. Guarded by Manager.mu.
type lane struct {
	waitingFirst int     // groups waiting for a first message of their own
	open         *digest // the digest new storm groups join; nil when none
	// sends bounds the deliveries in progress to the channel: the
	// platform paces a channel (Slack about one message a second), and a
	// delivery waiting in the platform's queue would spend its
	// SendTimeout there. The others wait here, without a deadline.
	sends chan struct{}
}

// maxChannelSends is how many deliveries to one channel are in progress
// at once.
const maxChannelSends = 2

// laneLocked returns the channel's lane; m.mu is held.
func (m *Manager) laneLocked(channel string) *lane {
	l := m.lanes[channel]
	if l == nil {
		l = &lane{sends: make(chan struct{}, maxChannelSends)}
		m.lanes[channel] = l
	}
	return l
}

// takeSend waits for a delivery slot of the channel; false when Run ends
// first. The caller calls the returned release when its delivery is done.
func (m *Manager) takeSend(channel string) (release func(), ok bool) {
	m.mu.Lock()
	if m.lanes == nil {
		m.mu.Unlock()
		return nil, false
	}
	sends, closing := m.laneLocked(channel).sends, m.closing
	m.mu.Unlock()
	select {
	case sends <- struct{}{}:
		return func() { <-sends }, true
	case <-closing:
		return nil, false
	}
}

// digest is one alert-storm message. Guarded by Manager.mu.
type digest struct {
	key       string
	channel   string
	msgID     string
	created   time.Time
	rows      []digestRow       // one per group ever listed, in the order they joined
	members   map[string]*group // the listed groups in memory
	version   map[string]int    // group key -> changes of its row
	dirty     bool
	due       time.Time
	working   bool
	unsaved   bool
	lastSend  time.Time // monotonic
	attempts  int
	lastErr   string
	postKey   string
	postAt    time.Time
	reconcile bool
	wake      chan struct{}
}

// digestRow is one group's line in a digest, as stored.
type digestRow struct {
	Key      string    `json:"key"`
	Name     string    `json:"name"`
	Where    string    `json:"where,omitempty"`
	Firing   int       `json:"firing"`
	Resolved int       `json:"resolved"`
	Since    time.Time `json:"since"`
	// Listed: a delivered version of the digest shows the group.
	Listed bool `json:"listed,omitempty"`
	// Receiver and request id, for the group's audit events.
	Receiver string `json:"receiver,omitempty"`
}

func (d *digest) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func newDigest(channel string, created time.Time) *digest {
	key := fmt.Sprintf("%s/%d", channel, created.UnixMilli())
	return &digest{key: key, channel: channel, created: created.UTC(), members: map[string]*group{}, version: map[string]int{},
		wake: make(chan struct{}, 1)}
}

func digestOf(rec digestRecord) *digest {
	d := newDigest(rec.channel, rec.created)
	d.key, d.msgID, d.rows, d.postKey, d.postAt = rec.key, rec.messageID, rec.rows, rec.postKey, rec.postAt
	d.reconcile = rec.postKey != "" && rec.messageID == ""
	return d
}

// rowOf is g's line; m.mu is held.
func rowOf(g *group) digestRow {
	v := view{snap: g.snap}
	t := targetOf(g.snap)
	r := digestRow{Key: g.key, Receiver: g.receiver}
	names := v.byName()
	if len(names) > 0 {
		r.Name = names[0].name
		if len(names) > 1 {
			r.Name += fmt.Sprintf(" +%d", len(names)-1)
		}
	}
	if t.service != "" {
		r.Where = t.service
		if t.namespace != "" {
			r.Where += " in " + t.namespace
		}
	} else {
		r.Where = labelString(g.snap.CommonLabels, []string{"alertname", "severity"}, 40)
	}
	r.Firing, r.Resolved = v.firing()
	r.Since, _ = v.span()
	return r
}

// joinDigestLocked lists g in its channel's open digest, starting one when
// there is none or it is full or old; m.mu is held.
func (m *Manager) joinDigestLocked(l *lane, g *group) {
	now := m.o.Now()
	d := l.open
	if d == nil || len(d.rows) >= m.o.DigestSize || now.Sub(d.created) >= m.o.DigestWindow {
		d = newDigest(g.channel, now)
		if old := m.digests[d.key]; old != nil { // two in one millisecond
			d = newDigest(g.channel, now.Add(time.Millisecond))
		}
		l.open = d
		m.digests[d.key] = d
	}
	g.digest = d
	d.members[g.key] = g
	d.rows = append(d.rows, rowOf(g))
	d.version[g.key]++
	d.dirty = true
	if d.due.IsZero() || (!g.due.IsZero() && g.due.Before(d.due)) {
		d.due = g.due
	}
	m.log.Info("alert storm: group listed in the channel's digest", "channel", g.channel, "group_key", clip(g.key, 200),
		"digest", d.key, "groups", len(d.rows))
}

// updateRowLocked refreshes g's line after a change; m.mu is held.
func (d *digest) updateRowLocked(g *group) {
	for i := range d.rows {
		if d.rows[i].Key == g.key {
			listed := d.rows[i].Listed
			d.rows[i] = rowOf(g)
			d.rows[i].Listed = listed
		}
	}
	d.version[g.key]++
	d.dirty = true
	if d.due.IsZero() || (!g.due.IsZero() && g.due.Before(d.due)) {
		d.due = g.due
	}
}

// leaveDigestLocked takes a group that starts a new incident out of its
// digest: its line stays as it was (resolved); the new incident is placed
// like any new group. m.mu is held.
func (m *Manager) leaveDigestLocked(g *group) {
	if d := g.digest; d != nil {
		delete(d.members, g.key)
		g.digest = nil
	}
}

// kickDigestLocked starts d's worker, or wakes it; m.mu is held.
func (m *Manager) kickDigestLocked(d *digest) {
	if d.working {
		d.signal()
		return
	}
	d.working = true
	m.wg.Go(func() { m.workDigest(d) })
}

// attach puts a group loaded from the store back into the digest that
// lists it, loading the digest when it is not in memory.
func (m *Manager) attach(ctx context.Context, g *group, key string) error {
	m.mu.Lock()
	m.groups[g.key] = g
	d := m.digests[key]
	m.mu.Unlock()
	if key == "" {
		return nil
	}
	if d == nil {
		rec, ok, err := m.st.loadDigest(ctx, key)
		if err != nil {
			return err
		}
		if !ok {
			m.log.Warn("digest of a group is gone; the group gets a message of its own", "group_key", clip(g.key, 200), "digest", key)
			return nil
		}
		m.mu.Lock()
		if d = m.digests[key]; d == nil {
			d = digestOf(rec)
			m.digests[key] = d
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g.digest = d
	d.members[g.key] = g
	if g.dirty {
		d.version[g.key]++
		d.dirty = true
		if d.due.IsZero() || (!g.due.IsZero() && g.due.Before(d.due)) {
			d.due = g.due
		}
	}
	return nil
}

// reopenDigests makes each channel's newest digest that still takes
// groups the one a storm continues in, after a restart or a change of
// leader.
func (m *Manager) reopenDigests(ctx context.Context) error {
	recs, err := m.st.recentDigests(ctx, m.o.Now().Add(-m.o.DigestWindow))
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range recs { // newest first
		l := m.laneLocked(rec.channel)
		if l.open != nil || len(rec.rows) >= m.o.DigestSize {
			continue
		}
		d := m.digests[rec.key]
		if d == nil {
			d = digestOf(rec)
			m.digests[rec.key] = d
		}
		l.open = d
	}
	return nil
}

// workDigest is a digest's worker: it posts the digest, then edits it as
// groups join and change, at most once per GroupWait, retrying a failed
// delivery like a group's worker, until nothing is pending.
func (m *Manager) workDigest(d *digest) {
	for {
		m.mu.Lock()
		if m.closingLocked() {
			d.working = false
			m.mu.Unlock()
			return
		}
		if d.unsaved && !d.dirty {
			m.mu.Unlock()
			err := m.saveDigest(context.Background(), d, nil)
			m.mu.Lock()
			d.unsaved = err != nil
			m.mu.Unlock()
			if err != nil {
				m.o.Metrics.StateSaveFailed()
				m.log.Error("digest state still not saved; retrying", "digest", d.key, "err", err)
				m.sleep(backoff(2, m.o.RetryMax))
			}
			continue
		}
		if !d.dirty {
			if rest := m.o.GroupWait - time.Since(d.lastSend); rest > 0 {
				m.mu.Unlock()
				m.sleepOrWake(rest, d.wake)
				continue
			}
			d.working = false
			if l := m.lanes[d.channel]; l == nil || l.open != d {
				// Closed and delivered: forget it and its groups (the
				// store remembers them).
				delete(m.digests, d.key)
				for k, g := range d.members {
					if m.groups[k] == g && !g.working {
						delete(m.groups, k)
					}
				}
			}
			m.mu.Unlock()
			return
		}
		if d.msgID != "" {
			if wait := m.o.GroupWait - time.Since(d.lastSend); wait > 0 {
				m.mu.Unlock()
				m.sleepOrWake(wait, d.wake)
				continue
			}
		}
		if m.expiredLocked(d.due) {
			m.mu.Unlock()
			m.expireDigest(d)
			continue
		}
		plan := m.planDigest(d)
		m.mu.Unlock()

		err := m.flushDigest(d, plan)
		if err == nil {
			continue
		}
		m.mu.Lock()
		closing := m.closingLocked()
		d.dirty = true
		if !closing {
			d.attempts++
			d.lastErr = clip(err.Error(), 500)
			for _, g := range d.members {
				if !g.due.IsZero() {
					g.attempts, g.lastErr = d.attempts, d.lastErr
				}
			}
		}
		attempts := d.attempts
		m.mu.Unlock()
		if closing {
			continue
		}
		platform, _, _ := splitChannel(d.channel)
		m.o.Metrics.SendFailed(platform)
		wait := backoff(attempts, m.o.RetryMax)
		m.log.Warn("alert-storm digest not delivered; retrying", "channel", d.channel, "digest", d.key,
			"attempt", attempts, "retry_in", wait, "err", err)
		m.sleep(wait)
	}
}

// digestPlan is one send of a digest, prepared under the lock.
type digestPlan struct {
	first     bool
	reconcile bool
	postKey   string
	postAt    time.Time
	msgID     string
	rows      []digestRow
	version   map[string]int
	shown     map[string]map[string]string // group key -> alert statuses shown
	at        time.Time
}

// planDigest takes what is to be sent and clears the dirty flag; m.mu is
// held.
func (m *Manager) planDigest(d *digest) digestPlan {
	p := digestPlan{first: d.msgID == "", msgID: d.msgID, rows: append([]digestRow(nil), d.rows...),
		version: make(map[string]int, len(d.version)), shown: map[string]map[string]string{}, at: m.o.Now()}
	for k, v := range d.version {
		p.version[k] = v
	}
	for k, g := range d.members {
		st := make(map[string]string, len(g.snap.Alerts))
		for _, a := range g.snap.Alerts {
			st[a.Fingerprint] = a.Status
		}
		p.shown[k] = st
	}
	if p.first {
		if d.postKey == "" {
			d.postKey = postKeyOf("digest", d.key)
			d.postAt = m.o.Now().UTC()
		}
		p.postKey, p.postAt, p.reconcile = d.postKey, d.postAt, d.reconcile
	}
	d.dirty = false
	return p
}

// flushDigest delivers one plan, then records which groups the channel
// now sees.
func (m *Manager) flushDigest(d *digest, p digestPlan) error {
	release, ok := m.takeSend(d.channel)
	if !ok {
		return errStopped
	}
	defer release()
	m.mu.Lock()
	runCtx := m.runCtx
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(runCtx, m.o.SendTimeout)
	defer cancel()
	platform, channelID, _ := splitChannel(d.channel)
	reply := redact.ReplyWith(digestReply(p.rows, m.o.Now()), m.redact)
	reply.Platform, reply.Channel = platform, channelID
	msgID, found := p.msgID, false
	if p.first {
		if p.reconcile && m.finder != nil {
			probe := reply
			probe.IdempotencyKey = p.postKey
			id, err := m.finder.FindPosted(ctx, probe, p.postAt.Add(-time.Minute))
			switch {
			case err == nil && id != "":
				msgID, found = id, true
			case err != nil && errors.Is(err, action.ErrUnavailable):
				return fmt.Errorf("look for a digest post interrupted by a restart: %w", err)
			case err != nil:
				m.log.Warn("cannot look for a digest post interrupted by a restart; posting", "digest", d.key, "err", err)
			}
		}
		if !found {
			if err := m.saveDigest(runCtx, d, nil); err != nil { // its own deadline, as a group's
				m.o.Metrics.StateSaveFailed()
				return fmt.Errorf("record the digest post before making it: %w", err)
			}
			reply.IdempotencyKey = p.postKey
			id, err := m.o.Sender.Send(ctx, reply)
			if err != nil {
				return fmt.Errorf("post digest: %w", err)
			}
			msgID = id
		}
	}
	if !p.first || found {
		reply.UpdateOf, reply.IdempotencyKey = msgID, ""
		if _, err := m.o.Sender.Send(ctx, reply); err != nil {
			return fmt.Errorf("update digest: %w", err)
		}
	}

	now := m.o.Now()
	m.mu.Lock()
	d.msgID, d.lastSend, d.attempts, d.lastErr = msgID, time.Now(), 0, ""
	if p.first {
		d.postKey, d.postAt, d.reconcile = "", time.Time{}, false
	}
	type listed struct {
		row     digestRow
		g       *group
		arrived time.Time
	}
	var fresh []listed
	var members []*group
	for i := range d.rows {
		r := &d.rows[i]
		if _, planned := p.version[r.Key]; !planned || i >= len(p.rows) {
			continue
		}
		g := d.members[r.Key]
		if !r.Listed {
			r.Listed = true
			l := listed{row: *r, g: g}
			if g != nil {
				l.arrived = g.arrived
			}
			fresh = append(fresh, l)
		}
		if g == nil {
			continue
		}
		members = append(members, g)
		if d.version[r.Key] != p.version[r.Key] {
			if g.due.Before(p.at) {
				g.due = p.at
			}
			continue // changed again since the plan: still pending
		}
		g.posted, g.postedTr, g.dirty, g.due, g.attempts, g.lastErr = p.shown[r.Key], g.snap.Truncated, false, time.Time{}, 0, ""
		g.arrived = time.Time{}
	}
	switch {
	case !d.dirty:
		d.due = time.Time{}
	case d.due.Before(p.at):
		d.due = p.at
	}
	m.mu.Unlock()

	err := m.saveDigest(context.WithoutCancel(ctx), d, members)
	m.mu.Lock()
	d.unsaved = err != nil
	m.mu.Unlock()
	if err != nil {
		m.o.Metrics.StateSaveFailed()
		m.log.Error("digest state not saved; retrying", "digest", d.key, "err", err)
	}
	for _, l := range fresh {
		took := now.Sub(l.arrived)
		if l.arrived.IsZero() || took < 0 {
			took = 0
		}
		m.o.Metrics.Digested()
		m.o.Metrics.Posted(took)
		m.audit(ctx, audit.Event{Type: audit.IncidentPosted, RequestID: requestIDOf(l.row.Key), Platform: platform, Channel: d.channel,
			Thread: msgID, Subject: subjectOf(l.row.Receiver), Duration: took,
			Outcome: clip(fmt.Sprintf("listed in the alert-storm digest: %s, %s, %s", l.row.Name, l.row.Where, firingResolved(l.row.Firing, l.row.Resolved)), 300),
			Details: map[string]string{"group_key": l.row.Key, "message_id": msgID, "digest": d.key}})
	}
	ev := audit.Event{RequestID: requestIDOf(d.key), Platform: platform, Channel: d.channel, Thread: msgID, Subject: "parley",
		Outcome: clip(firstLine(reply.Text), 300),
		Details: map[string]string{"digest": d.key, "message_id": msgID, "groups": fmt.Sprint(len(p.rows)), "new": fmt.Sprint(len(fresh))}}
	if p.first {
		ev.Type = audit.IncidentPosted
	} else {
		ev.Type = audit.IncidentUpdated
		m.o.Metrics.Updated()
	}
	m.audit(ctx, ev)
	return nil
}

// saveDigest writes the digest and, in the same transaction, the groups
// a delivery brought up to date.
func (m *Manager) saveDigest(ctx context.Context, d *digest, members []*group) error {
	m.persist.Lock()
	defer m.persist.Unlock()
	m.mu.Lock()
	rec := digestRecord{key: d.key, channel: d.channel, messageID: d.msgID, postKey: d.postKey, postAt: d.postAt,
		created: d.created, updated: m.o.Now().UTC(), rows: append([]digestRow(nil), d.rows...)}
	type member struct {
		rec record
		p   *pending
	}
	var ms []member
	for _, g := range members {
		r, p := m.recordLocked(g)
		ms = append(ms, member{r, p})
	}
	m.mu.Unlock()
	return m.st.write(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := saveDigestTx(ctx, tx, rec); err != nil {
			return err
		}
		for _, x := range ms {
			if err := saveTx(ctx, tx, x.rec, x.p); err != nil {
				return err
			}
		}
		return nil
	})
}

// expireDigest gives up what the digest does not show yet: every listed
// group with an undelivered change is reported as its own expiry.
func (m *Manager) expireDigest(d *digest) {
	type gone struct {
		g        *group
		due      time.Time
		attempts int
		lastErr  string
		what     string
		alerts   string
	}
	var out []gone
	var members []*group
	m.mu.Lock()
	for _, r := range d.rows {
		g := d.members[r.Key]
		if g == nil || g.due.IsZero() {
			continue
		}
		what := "an update of its line in the alert-storm digest"
		if !r.Listed {
			what = "its line in the alert-storm digest"
		}
		out = append(out, gone{g: g, due: g.due, attempts: d.attempts, lastErr: d.lastErr, what: what,
			alerts: view{snap: g.snap}.counts()})
		g.dirty, g.due, g.attempts, g.lastErr = false, time.Time{}, 0, ""
		members = append(members, g)
	}
	d.dirty, d.due, d.attempts, d.lastErr = false, time.Time{}, 0, ""
	m.mu.Unlock()
	for _, x := range out {
		m.expired(x.g, d.channel, x.what, x.due, x.attempts, x.lastErr, x.alerts)
	}
	if err := m.saveDigest(context.Background(), d, members); err != nil {
		m.o.Metrics.StateSaveFailed()
		m.log.Error("expired digest lines still in the outbox", "digest", d.key, "err", err)
	}
}

// digestReply renders a digest: every group it lists, one line each.
func digestReply(rows []digestRow, now time.Time) chat.Reply {
	firing, resolved := 0, 0
	for _, r := range rows {
		if r.Firing > 0 {
			firing++
		} else {
			resolved++
		}
	}
	r := chat.Reply{Kind: chat.KindError}
	var b strings.Builder
	if firing > 0 {
		fmt.Fprintf(&b, "*[FIRING:%d] Alert storm: %d alert %s listed here*\n", firing, len(rows), plural(len(rows), "group", "groups"))
	} else {
		fmt.Fprintf(&b, "*[RESOLVED] Alert storm: %d alert %s listed here, all resolved*\n", len(rows), plural(len(rows), "group", "groups"))
		r.Kind = chat.KindSuccess
	}
	b.WriteString("Incident messages were queueing up in this channel, so these groups are listed together instead of a message each. " +
		"This message is updated as they change; ask Parley to diagnose a service for its evidence.")
	r.Text = b.String()
	r.Fields = []chat.Field{{Label: "Groups", Value: firingResolved(firing, resolved)}}
	t := &chat.Table{Header: []string{"status", "alert", "where", "alerts", "since"}}
	for _, row := range rows {
		status := Firing
		if row.Firing == 0 {
			status = Resolved
		}
		t.Rows = append(t.Rows, []string{status, clip(row.Name, 40), clip(row.Where, 40), firingResolved(row.Firing, row.Resolved), clock(row.Since)})
	}
	r.Table = t
	r.Context = []string{"updated " + clock(now)}
	return r
}
