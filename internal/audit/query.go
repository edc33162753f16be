package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// Filter selects events for List. Zero fields do not filter.
type Filter struct {
	AfterSeq       int64     // only events with Seq > AfterSeq
	ThroughSeq     int64     // only events with Seq <= ThroughSeq
	Since, Until   time.Time // Since <= Time < Until
	Types          []Type    // any of these types
	RequestID      string
	Subject        string // "platform:user"
	Channel        string // "platform:id"
	Action         string
	ConfirmationID string
	Limit          int  // at most this many events; 0 means all
	NewestFirst    bool // descending Seq; with Limit, the newest ones
}

// List returns the events matching f, in Seq order (descending with
// NewestFirst).
func (r *Recorder) List(ctx context.Context, f Filter) ([]Event, error) {
	var out []Event
	err := r.Each(ctx, f, func(e Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Each calls fn for every event matching f, in List's order, without
// holding them all in memory (exports of a long log). It stops at fn's
// first error and returns it. fn must not use the database: an in-memory
// store has one connection, and Each holds it.
func (r *Recorder) Each(ctx context.Context, f Filter, fn func(Event) error) error {
	if err := r.caughtUp(); err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	q, args := f.query()
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		rw, err := scanRow(rows)
		if err != nil {
			return fmt.Errorf("list audit events: %w", err)
		}
		e, err := rw.event()
		if err != nil {
			return fmt.Errorf("list audit events: #%d: %w", rw.seq, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	return nil
}

// query builds the SELECT for f.
func (f Filter) query() (string, []any) {
	var where []string
	var args []any
	add := func(clause string, vals ...any) {
		where = append(where, clause)
		args = append(args, vals...)
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if f.ThroughSeq > 0 {
		add("seq <= ?", f.ThroughSeq)
	}
	if !f.Since.IsZero() {
		add("time_ms >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("time_ms < ?", f.Until.UnixMilli())
	}
	if len(f.Types) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(f.Types)), ", ")
		vals := make([]any, len(f.Types))
		for i, t := range f.Types {
			vals[i] = string(t)
		}
		add("type IN ("+marks+")", vals...)
		frequent := store.AuditFrequentTypes()
		if !slices.ContainsFunc(f.Types, func(t Type) bool { return slices.Contains(frequent, string(t)) }) {
			// Only types the partial index holds (migration 10): say
			// so, in its words, and the database reads it.
			add(store.AuditTypeIndexed)
		}
	}
	for _, eq := range []struct{ col, val string }{
		{"request_id", f.RequestID}, {"subject", f.Subject}, {"channel", f.Channel},
		{"action", f.Action}, {"confirmation_id", f.ConfirmationID},
	} {
		if eq.val != "" {
			add(eq.col+" = ?", eq.val)
		}
	}
	if f.ConfirmationID != "" {
		// The index holds only events with a confirmation (migration 10);
		// this term, literally, is what lets the database use it.
		add("confirmation_id <> ''")
	}

	q := `SELECT ` + columns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.NewestFirst {
		q += ` ORDER BY seq DESC`
	} else {
		q += ` ORDER BY seq ASC`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return q, args
}

// Get returns the event with the given Seq, or an error wrapping
// ErrNotFound.
func (r *Recorder) Get(ctx context.Context, seq int64) (Event, error) {
	if err := r.caughtUp(); err != nil {
		return Event{}, fmt.Errorf("audit event #%d: %w", seq, err)
	}
	rw, err := scanRow(r.db.QueryRowContext(ctx,
		`SELECT `+columns+` FROM audit_events WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, fmt.Errorf("audit event #%d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Event{}, fmt.Errorf("audit event #%d: %w", seq, err)
	}
	e, err := rw.event()
	if err != nil {
		return Event{}, fmt.Errorf("audit event #%d: %w", seq, err)
	}
	return e, nil
}

// Head returns the Seq and hash of the last recorded event (0 and Genesis
// for an empty log). Publishing it elsewhere anchors the log: see Anchor.
func (r *Recorder) Head(ctx context.Context) (seq int64, hash string, err error) {
	if err := r.caughtUp(); err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	err = r.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	if err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	if seq == 0 {
		hash = Genesis
	}
	return seq, hash, nil
}

// SeqRange returns the first and last Seq of the events recorded at
// Since <= time < Until (zero bounds are open), or 0, 0 when there are
// none. An archive exports the whole range by Seq (AfterSeq, ThroughSeq),
// so that it is one unbroken piece of the chain even if replicas' clocks
// disagreed by a little around a bound.
func (r *Recorder) SeqRange(ctx context.Context, since, until time.Time) (first, last int64, err error) {
	if err := r.caughtUp(); err != nil {
		return 0, 0, fmt.Errorf("audit events between %s and %s: %w", since, until, err)
	}
	f := Filter{Since: since, Until: until}
	q, args := f.query()
	q = strings.Replace(q, `SELECT `+columns+` FROM`, `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM`, 1)
	q = strings.TrimSuffix(q, ` ORDER BY seq ASC`)
	if err := r.db.QueryRowContext(ctx, q, args...).Scan(&first, &last); err != nil {
		return 0, 0, fmt.Errorf("audit events between %s and %s: %w", since, until, err)
	}
	return first, last, nil
}
