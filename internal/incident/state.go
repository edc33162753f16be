package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Schema is the incidents table: one row per Alertmanager group key, with
// the message that represents it and what that message last showed. It
// is portable SQL (SQLite and PostgreSQL) and is applied by Manager.Run;
// internal/store may later take it into its versioned migrations.
const Schema = `CREATE TABLE IF NOT EXISTS incidents (
	group_key  TEXT PRIMARY KEY,
	receiver   TEXT NOT NULL,
	channel    TEXT NOT NULL,
	message_id TEXT NOT NULL,
	thread     TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	state      TEXT NOT NULL
)`

// record is one row.
type record struct {
	key       string
	receiver  string
	channel   string // platform:id
	messageID string
	thread    string
	firstSeen time.Time
	updatedAt time.Time
	state     snapshot
}

// snapshot is what a group's message showed when it was last sent: the
// alerts (fingerprint and status are what re-sends are compared against)
// and the gathered evidence, so the message can be edited the same way
// after a restart.
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

// stateStore keeps records in the incidents table.
type stateStore struct {
	db      *sql.DB
	rebind  func(string) string
	timeout time.Duration
}

func (s *stateStore) init(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, Schema); err != nil {
		return fmt.Errorf("incidents table: %w", err)
	}
	return nil
}

// load returns the record of a group key; ok is false when there is none.
func (s *stateStore) load(ctx context.Context, key string) (rec record, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var first, updated int64
	var state string
	err = s.db.QueryRowContext(ctx, s.rebind(`SELECT receiver, channel, message_id, thread, first_seen, updated_at, state
		FROM incidents WHERE group_key = ?`), key).
		Scan(&rec.receiver, &rec.channel, &rec.messageID, &rec.thread, &first, &updated, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("load incident: %w", err)
	}
	if err := json.Unmarshal([]byte(state), &rec.state); err != nil {
		return record{}, false, fmt.Errorf("load incident: decode state: %w", err)
	}
	rec.key = key
	rec.firstSeen, rec.updatedAt = time.UnixMilli(first).UTC(), time.UnixMilli(updated).UTC()
	return rec, true, nil
}

// save writes a record, replacing the key's previous one.
func (s *stateStore) save(ctx context.Context, rec record) error {
	state, err := json.Marshal(rec.state)
	if err != nil {
		return fmt.Errorf("save incident: encode state: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO incidents
		(group_key, receiver, channel, message_id, thread, first_seen, updated_at, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_key) DO UPDATE SET receiver = excluded.receiver, channel = excluded.channel,
			message_id = excluded.message_id, thread = excluded.thread, first_seen = excluded.first_seen,
			updated_at = excluded.updated_at, state = excluded.state`),
		rec.key, rec.receiver, rec.channel, rec.messageID, rec.thread,
		rec.firstSeen.UnixMilli(), rec.updatedAt.UnixMilli(), string(state))
	if err != nil {
		return fmt.Errorf("save incident: %w", err)
	}
	return nil
}
