package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// The incident tables (schema step 9 of internal/store):
//
//	incidents         one row per Alertmanager group key: everything known
//	                  about the group (state), what its message last showed
//	                  (shown), the message, and a first post begun whose id
//	                  is not recorded yet (post_key, post_at)
//	incident_inbox    notifications accepted by any replica, not yet merged
//	incident_outbox   groups whose message is not up to date, with when the
//	                  oldest undelivered change arrived (due_at): delivered,
//	                  or given up after Options.ExpireAfter
//	incident_digests  alert-storm messages listing groups, and their rows

// record is one row of incidents.
type record struct {
	key       string
	receiver  string
	channel   string // platform:id
	messageID string
	thread    string
	firstSeen time.Time
	updatedAt time.Time
	state     snapshot // everything known, shown or not
	shown     shown    // what the message last showed
	digest    string   // the digest listing the group ("" = its own message)
	postKey   string   // a first post begun and not recorded
	postAt    time.Time
}

// shown is what a group's message last showed: each alert's status and
// the count Alertmanager left out. Notes in the thread say what changed
// since.
type shown struct {
	Alerts    map[string]string `json:"alerts"`
	Truncated int               `json:"truncated,omitempty"`
}

// snapshot is everything known about a group: the alerts (fingerprint and
// status are what re-sends are compared against) and the gathered
// evidence, so the message renders the same after a restart.
type snapshot struct {
	Alerts            []alertRec        `json:"alerts"`
	GroupLabels       map[string]string `json:"group_labels,omitempty"`
	CommonLabels      map[string]string `json:"common_labels,omitempty"`
	CommonAnnotations map[string]string `json:"common_annotations,omitempty"`
	ExternalURL       string            `json:"external_url,omitempty"`
	Truncated         int               `json:"truncated,omitempty"`
	Evidence          *evidence         `json:"evidence,omitempty"`
	Suggested         []string          `json:"suggested,omitempty"` // suggestions already audited
}

// alertRec is one alert as remembered.
type alertRec struct {
	Fingerprint  string            `json:"fp"`
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at,omitzero"`
	GeneratorURL string            `json:"generator_url,omitempty"`
}

func (a alertRec) name() string { return Alert{Labels: a.Labels}.alertname() }

// kept are the annotations worth remembering per alert.
var kept = []string{"summary", "description", "runbook_url", "dashboard"}

func recOf(a Alert) alertRec {
	r := alertRec{Fingerprint: a.Fingerprint, Status: a.Status, Labels: a.Labels, StartsAt: a.StartsAt.UTC(), GeneratorURL: a.GeneratorURL}
	if a.Status == Resolved {
		r.EndsAt = a.EndsAt.UTC()
	}
	for _, k := range kept {
		if v := a.Annotations[k]; v != "" {
			if r.Annotations == nil {
				r.Annotations = map[string]string{}
			}
			r.Annotations[k] = clip(v, 1000)
		}
	}
	return r
}

// pending is a group's row in incident_outbox: its message is not up to
// date since due (the oldest change not delivered).
type pending struct {
	key      string
	channel  string
	due      time.Time
	attempts int
	lastErr  string
}

// inboxRow is one accepted notification waiting in incident_inbox.
type inboxRow struct {
	id       int64
	key      string
	received time.Time
	payload  Payload
	bad      error // the stored payload could not be decoded
}

// errInboxFull means the inbox holds QueueSize notifications already.
var errInboxFull = errors.New("incident inbox full")

// stateStore reads and writes the incident tables, each call under its own
// deadline.
type stateStore struct {
	db      *store.DB
	timeout time.Duration
}

func (s *stateStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
}

// write runs fn in one write transaction under the store's deadline.
func (s *stateStore) write(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.db.WriteTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
}

const recordColumns = `receiver, channel, message_id, thread, first_seen, updated_at, state, shown, digest, post_key, post_at`

// load returns the record of a group key; ok is false when there is none.
func (s *stateStore) load(ctx context.Context, key string) (rec record, ok bool, err error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return scanRecord(key, s.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM incidents WHERE group_key = ?`, key))
}

func scanRecord(key string, row *sql.Row) (rec record, ok bool, err error) {
	var first, updated, postAt int64
	var state, shownJSON string
	err = row.Scan(&rec.receiver, &rec.channel, &rec.messageID, &rec.thread, &first, &updated, &state, &shownJSON,
		&rec.digest, &rec.postKey, &postAt)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("load incident: %w", err)
	}
	if err := json.Unmarshal([]byte(state), &rec.state); err != nil {
		return record{}, false, fmt.Errorf("load incident: decode state: %w", err)
	}
	if shownJSON == "" {
		// A row written before schema step 9: its state was what the
		// message showed.
		rec.shown = shown{Alerts: map[string]string{}, Truncated: rec.state.Truncated}
		if rec.messageID != "" {
			for _, a := range rec.state.Alerts {
				rec.shown.Alerts[a.Fingerprint] = a.Status
			}
		}
	} else if err := json.Unmarshal([]byte(shownJSON), &rec.shown); err != nil {
		return record{}, false, fmt.Errorf("load incident: decode shown: %w", err)
	}
	if rec.shown.Alerts == nil {
		rec.shown.Alerts = map[string]string{}
	}
	rec.key = key
	rec.firstSeen, rec.updatedAt = time.UnixMilli(first).UTC(), time.UnixMilli(updated).UTC()
	if postAt > 0 {
		rec.postAt = time.UnixMilli(postAt).UTC()
	}
	return rec, true, nil
}

// saveTx writes a record, and its outbox row when p is not nil (else
// removes it: the message is up to date).
func saveTx(ctx context.Context, tx *store.Tx, rec record, p *pending) error {
	state, err := json.Marshal(rec.state)
	if err != nil {
		return fmt.Errorf("save incident: encode state: %w", err)
	}
	sh, err := json.Marshal(rec.shown)
	if err != nil {
		return fmt.Errorf("save incident: encode shown: %w", err)
	}
	var postAt int64
	if !rec.postAt.IsZero() {
		postAt = rec.postAt.UnixMilli()
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incidents
		(group_key, `+recordColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_key) DO UPDATE SET receiver = excluded.receiver, channel = excluded.channel,
			message_id = excluded.message_id, thread = excluded.thread, first_seen = excluded.first_seen,
			updated_at = excluded.updated_at, state = excluded.state, shown = excluded.shown,
			digest = excluded.digest, post_key = excluded.post_key, post_at = excluded.post_at`,
		rec.key, rec.receiver, rec.channel, rec.messageID, rec.thread,
		rec.firstSeen.UnixMilli(), rec.updatedAt.UnixMilli(), string(state), string(sh),
		rec.digest, rec.postKey, postAt); err != nil {
		return fmt.Errorf("save incident: %w", err)
	}
	if p == nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM incident_outbox WHERE group_key = ?`, rec.key); err != nil {
			return fmt.Errorf("save incident: clear outbox: %w", err)
		}
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incident_outbox (group_key, channel, due_at, attempts, last_error, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_key) DO UPDATE SET channel = excluded.channel, due_at = excluded.due_at,
			attempts = excluded.attempts, last_error = excluded.last_error, updated_at = excluded.updated_at`,
		rec.key, rec.channel, p.due.UnixMilli(), p.attempts, clip(p.lastErr, 500), rec.updatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("save incident: outbox: %w", err)
	}
	return nil
}

// outbox lists every group whose message is not up to date, oldest first.
func (s *stateStore) outbox(ctx context.Context) ([]pending, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT group_key, channel, due_at, attempts, last_error FROM incident_outbox ORDER BY due_at, group_key`)
	if err != nil {
		return nil, fmt.Errorf("read incident outbox: %w", err)
	}
	defer rows.Close()
	var out []pending
	for rows.Next() {
		var p pending
		var due int64
		if err := rows.Scan(&p.key, &p.channel, &due, &p.attempts, &p.lastErr); err != nil {
			return nil, fmt.Errorf("read incident outbox: %w", err)
		}
		p.due = time.UnixMilli(due).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incident outbox: %w", err)
	}
	return out, nil
}

// addInbox stores an accepted notification, unless the inbox holds limit
// already (errInboxFull). One statement: replicas adding at once may
// overshoot the limit by a few, never lose a row.
func (s *stateStore) addInbox(ctx context.Context, p Payload, received time.Time, limit int) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store notification: %w", err)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `INSERT INTO incident_inbox (group_key, received_at, payload)
		SELECT ?, ?, ? WHERE (SELECT COUNT(*) FROM incident_inbox) < ?`,
		p.GroupKey, received.UnixMilli(), string(body), limit)
	if err != nil {
		return fmt.Errorf("store notification: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store notification: %w", err)
	} else if n == 0 {
		return errInboxFull
	}
	return nil
}

// takeInbox reads up to n notifications, oldest first. They stay until
// deleteInboxTx removes them with the state they changed.
func (s *stateStore) takeInbox(ctx context.Context, n int) ([]inboxRow, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT id, group_key, received_at, payload FROM incident_inbox ORDER BY id LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("read incident inbox: %w", err)
	}
	defer rows.Close()
	var out []inboxRow
	for rows.Next() {
		var r inboxRow
		var received int64
		var body string
		if err := rows.Scan(&r.id, &r.key, &received, &body); err != nil {
			return nil, fmt.Errorf("read incident inbox: %w", err)
		}
		r.received = time.UnixMilli(received).UTC()
		if err := json.Unmarshal([]byte(body), &r.payload); err != nil {
			r.bad = err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incident inbox: %w", err)
	}
	return out, nil
}

// inboxLen counts the notifications waiting.
func (s *stateStore) inboxLen(ctx context.Context) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_inbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count incident inbox: %w", err)
	}
	return n, nil
}

// deleteInboxTx removes merged notifications. It reports how many were
// still there: none when another replica merged them first.
func deleteInboxTx(ctx context.Context, tx *store.Tx, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM incident_inbox WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("remove merged notifications: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("remove merged notifications: %w", err)
	}
	return n, nil
}

// digestRecord is one row of incident_digests.
type digestRecord struct {
	key       string
	channel   string
	messageID string
	postKey   string
	postAt    time.Time
	created   time.Time
	updated   time.Time
	rows      []digestRow
}

func saveDigestTx(ctx context.Context, tx *store.Tx, d digestRecord) error {
	rows, err := json.Marshal(d.rows)
	if err != nil {
		return fmt.Errorf("save digest: %w", err)
	}
	var postAt int64
	if !d.postAt.IsZero() {
		postAt = d.postAt.UnixMilli()
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incident_digests
		(digest_key, channel, message_id, post_key, post_at, created_at, updated_at, listing)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (digest_key) DO UPDATE SET message_id = excluded.message_id, post_key = excluded.post_key,
			post_at = excluded.post_at, updated_at = excluded.updated_at, listing = excluded.listing`,
		d.key, d.channel, d.messageID, d.postKey, postAt, d.created.UnixMilli(), d.updated.UnixMilli(), string(rows)); err != nil {
		return fmt.Errorf("save digest: %w", err)
	}
	return nil
}

const digestColumns = `digest_key, channel, message_id, post_key, post_at, created_at, updated_at, listing`

type scanner interface{ Scan(dest ...any) error }

func scanDigest(row scanner) (digestRecord, error) {
	var d digestRecord
	var postAt, created, updated int64
	var listing string
	if err := row.Scan(&d.key, &d.channel, &d.messageID, &d.postKey, &postAt, &created, &updated, &listing); err != nil {
		return digestRecord{}, err
	}
	if err := json.Unmarshal([]byte(listing), &d.rows); err != nil {
		return digestRecord{}, fmt.Errorf("decode digest %s: %w", d.key, err)
	}
	if postAt > 0 {
		d.postAt = time.UnixMilli(postAt).UTC()
	}
	d.created, d.updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return d, nil
}

// loadDigest reads one digest; ok is false when there is none.
func (s *stateStore) loadDigest(ctx context.Context, key string) (digestRecord, bool, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	d, err := scanDigest(s.db.QueryRowContext(ctx, `SELECT `+digestColumns+` FROM incident_digests WHERE digest_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return digestRecord{}, false, nil
	}
	if err != nil {
		return digestRecord{}, false, fmt.Errorf("load digest: %w", err)
	}
	return d, true, nil
}

// recentDigests lists the digests created since since, newest first per
// channel: the open ones a new storm group may join.
func (s *stateStore) recentDigests(ctx context.Context, since time.Time) ([]digestRecord, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+digestColumns+` FROM incident_digests WHERE created_at >= ? ORDER BY created_at DESC`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read digests: %w", err)
	}
	defer rows.Close()
	var out []digestRecord
	for rows.Next() {
		d, err := scanDigest(rows)
		if err != nil {
			return nil, fmt.Errorf("read digests: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read digests: %w", err)
	}
	return out, nil
}
