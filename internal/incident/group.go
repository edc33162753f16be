package incident

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
)

// group is one alert group in memory. Fields are guarded by Manager.mu.
type group struct {
	key       string
	gen       int // incremented when the group starts a new incident
	receiver  string
	channel   string // platform:id
	requestID string
	msgID     string
	thread    string
	firstSeen time.Time
	snap      snapshot          // everything known, shown or not
	posted    map[string]string // fingerprint -> status the message last showed
	postedTr  int               // truncated count the message last showed
	dirty     bool              // snap has changes the message does not show
	// due is when the oldest change the message does not show arrived
	// (zero: up to date): the outbox's clock, expiry counts from it.
	due time.Time
	// arrived is when the notification that makes the first message
	// arrived, for its latency.
	arrived   time.Time
	lastSend  time.Time // monotonic
	gathering bool
	images    []chat.Image
	attempts  int    // failed tries since the last delivery
	lastErr   string // the last failure
	working   bool   // a worker delivers it
	unsaved   bool   // delivered, and the state that says so is not written yet
	// postKey and postAt: a first post begun and not yet recorded;
	// reconcile: that came from the store (a crash), so the message may
	// exist and is looked for before it is posted again.
	postKey   string
	postAt    time.Time
	reconcile bool
	// digest lists the group instead of a message of its own; row is its
	// line there, listed once the digest showing it was delivered.
	digest       *digest
	waitingFirst bool // counted in its lane's waitingFirst
	wake         chan struct{}
}

func (g *group) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// markDirtyLocked notes a change the message does not show yet, arrived
// at at.
func (g *group) markDirtyLocked(at time.Time) {
	g.dirty = true
	if g.due.IsZero() {
		g.due = at
	}
}

// groupOf is the group of a stored record.
func groupOf(rec record) *group {
	g := &group{key: rec.key, requestID: requestIDOf(rec.key), wake: make(chan struct{}, 1),
		receiver: rec.receiver, channel: rec.channel, msgID: rec.messageID, thread: rec.thread,
		firstSeen: rec.firstSeen, snap: rec.state, posted: maps.Clone(rec.shown.Alerts), postedTr: rec.shown.Truncated,
		postKey: rec.postKey, postAt: rec.postAt}
	if g.posted == nil {
		g.posted = map[string]string{}
	}
	if e := g.snap.Evidence; e != nil && !e.Done {
		g.snap.Evidence = nil // gathering was cut short: gather again
	}
	return g
}

// accepted is a notification that changed a group, with its audit event
// (recorded once the change is stored).
type accepted struct {
	g     *group
	event audit.Event
}

// accept merges a stored notification into its group (loading the group
// from the store when it is not in memory). It returns the group when the
// notification changed it; an error only when the store cannot be read.
func (m *Manager) accept(ctx context.Context, r inboxRow) (accepted, error) {
	p := r.payload
	m.mu.Lock()
	g := m.groups[p.GroupKey]
	m.mu.Unlock()
	if g == nil {
		var err error
		if g, err = m.load(ctx, p, r.received); err != nil {
			return accepted{}, err
		}
		if g == nil {
			return accepted{}, nil // unrouted, reported
		}
	}
	m.mu.Lock()
	res := g.merge(p, r.received)
	if res.changed {
		m.groups[g.key] = g
		g.markDirtyLocked(r.received)
		if res.restarted {
			m.leaveDigestLocked(g)
		}
		m.placeLocked(g)
	}
	channel, requestID := g.channel, g.requestID
	m.mu.Unlock()
	if !res.changed {
		m.o.Metrics.Duplicate()
		m.log.Debug("notification adds nothing; dropped", "group_key", clip(p.GroupKey, 200))
		return accepted{}, nil
	}
	platform, _, _ := splitChannel(channel)
	return accepted{g: g, event: audit.Event{Type: audit.IncidentReceived, RequestID: requestID, Platform: platform, Channel: channel,
		Subject: subjectOf(p.Receiver), Outcome: res.String(),
		Details: map[string]string{"group_key": p.GroupKey, "status": p.Status, "receiver": p.Receiver,
			"alerts": fmt.Sprint(len(p.Alerts)), "truncated": fmt.Sprint(p.TruncatedAlerts)}}}, nil
}

// placeLocked decides where a group's next first message goes: a message
// of its own, or, when its channel already has DigestAfter groups waiting
// for theirs, the channel's digest. m.mu is held.
func (m *Manager) placeLocked(g *group) {
	if g.msgID != "" || g.digest != nil || g.waitingFirst {
		if g.digest != nil {
			g.digest.updateRowLocked(g)
		}
		return
	}
	l := m.laneLocked(g.channel)
	if l.waitingFirst < m.o.DigestAfter {
		l.waitingFirst++
		g.waitingFirst = true
		return
	}
	m.joinDigestLocked(l, g)
}

// load makes the group of a notification: from the incidents table when
// it was seen before, else new and routed. nil means unrouted.
func (m *Manager) load(ctx context.Context, p Payload, received time.Time) (*group, error) {
	rec, ok, err := m.st.load(ctx, p.GroupKey)
	if err != nil {
		return nil, err
	}
	if ok {
		g := groupOf(rec)
		if err := m.attach(ctx, g, rec.digest); err != nil {
			return nil, err
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
	g := &group{key: p.GroupKey, requestID: requestIDOf(p.GroupKey), wake: make(chan struct{}, 1), posted: map[string]string{},
		receiver: p.Receiver, channel: channel, firstSeen: received.UTC()}
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
func (g *group) merge(p Payload, received time.Time) mergeResult {
	var r mergeResult
	if (g.msgID != "" || g.digest != nil) && len(g.posted) > 0 && allResolved(g.posted) && bringsFiring(g, p) {
		// The last incident of this group was resolved and shown; a new
		// firing is a new incident with its own message.
		g.gen++
		g.msgID, g.thread, g.firstSeen = "", "", received.UTC()
		g.snap = snapshot{}
		g.posted, g.postedTr, g.images, g.arrived = map[string]string{}, 0, nil, time.Time{}
		g.postKey, g.postAt, g.reconcile = "", time.Time{}, false
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
	if r.changed && g.msgID == "" && g.arrived.IsZero() {
		g.arrived = received
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

func anyFiring(posted map[string]string) bool {
	for _, s := range posted {
		if s == Firing {
			return true
		}
	}
	return false
}

func (s snapshot) clone() snapshot {
	c := s
	c.Alerts = append([]alertRec(nil), s.Alerts...)
	c.Evidence = s.Evidence.clone()
	c.Suggested = append([]string(nil), s.Suggested...)
	return c
}
