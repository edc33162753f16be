// Package chatstate keeps the small state chat adapters need across
// restarts and replicas, in the shared database (table chat_state): what a
// compact Discord button custom_id stands for, and which Slack threads
// Parley answered in (so a reply there without a mention is read by any
// replica, after any restart). Each entry is a key and a value, written
// once: the first writer of a key wins and later writes of it are no-ops,
// so callers derive keys from what they store or from a stable id.
// Entries are purged once older than a TTL.
package chatstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// Defaults.
const (
	// DefaultTTL outlives any confirmation and keeps an incident's buttons
	// clickable for a month.
	DefaultTTL     = 30 * 24 * time.Hour
	DefaultTimeout = 5 * time.Second
	// MaxValue bounds a value in bytes.
	MaxValue = 8 << 10
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	TTL     time.Duration    // how long an entry is kept (default 30 days)
	Timeout time.Duration    // each database call (default 5s)
	Now     func() time.Time // the clock (default time.Now)
}

// Store is the shared chat state. It is safe for concurrent use, by
// several processes on the same database.
type Store struct {
	db      *store.DB
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
}

// New returns a store on db, whose schema has the chat_state table
// (migration 6).
func New(db *store.DB, o Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("chatstate: no database")
	}
	if o.TTL < 0 || o.Timeout < 0 {
		return nil, errors.New("chatstate: negative TTL or timeout")
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{db: db, ttl: o.TTL, timeout: o.Timeout, now: o.Now}, nil
}

// Put records value under key. A key already there keeps its value: the
// first writer wins, so a repeated Put of the same pair is harmless.
func (s *Store) Put(ctx context.Context, key, value string) error {
	switch {
	case key == "":
		return errors.New("chatstate: empty key")
	case len(value) > MaxValue:
		return fmt.Errorf("chatstate: value of %d bytes for %s: at most %d", len(value), key, MaxValue)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO chat_state (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			key, value, s.now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("chatstate: record %s: %w", key, err)
	}
	return nil
}

// Get returns the value recorded under key, and false when there is none
// (never recorded, or purged).
func (s *Store) Get(ctx context.Context, key string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var value string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM chat_state WHERE key = ?`, key).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("chatstate: read %s: %w", key, err)
	}
	return value, true, nil
}

// Purge forgets the entries recorded more than the TTL before now and
// returns how many it removed.
func (s *Store) Purge(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM chat_state WHERE created_at < ?`, now.Add(-s.ttl).UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("chatstate: purge: %w", err)
	}
	return n, nil
}
