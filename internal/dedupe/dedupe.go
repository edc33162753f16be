// Package dedupe remembers which chat events have been taken, in the shared
// database, so that an event the platform delivers again is handled once
// across replicas: after a failover the platform redelivers what the old
// leader never acknowledged, and the new leader must not answer it twice.
//
// A key is recorded with one INSERT ... ON CONFLICT DO NOTHING (the same
// statement on SQLite and PostgreSQL): whichever process inserts it first
// handles the event, every other one sees it as already taken. Keys are
// purged once older than a TTL, far longer than any redelivery takes.
//
// The pipeline keeps its own in-memory de-duplication in front of this one;
// a failing store never drops a message (the pipeline handles it and logs).
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/store"
)

// Defaults.
const (
	DefaultTTL     = 24 * time.Hour
	DefaultTimeout = 5 * time.Second
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// TTL is how long a key is remembered (default 24h). Platforms
	// redeliver within minutes; a day leaves a wide margin.
	TTL time.Duration
	// Timeout bounds each database call (default 5s).
	Timeout time.Duration
}

// Store is the durable, shared record of seen event keys. It is safe for
// concurrent use, by several processes on the same database.
type Store struct {
	db      *store.DB
	ttl     time.Duration
	timeout time.Duration
}

// New returns a store on db, whose schema has the seen_events table
// (migration 5).
func New(db *store.DB, o Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("dedupe: no database")
	}
	if o.TTL < 0 || o.Timeout < 0 {
		return nil, errors.New("dedupe: negative TTL or timeout")
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return &Store{db: db, ttl: o.TTL, timeout: o.Timeout}, nil
}

// Seen reports whether key was taken before, by this process or another
// one, and records it as taken at now when it was not. Of several callers
// racing on one new key, exactly one gets false.
func (s *Store) Seen(ctx context.Context, key string, now time.Time) (bool, error) {
	if key == "" {
		return false, errors.New("dedupe: empty key")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var seen bool
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		seen, err = s.SeenTx(ctx, tx, key, now)
		return err
	})
	if err != nil {
		return false, err
	}
	return seen, nil
}

// SeenTx is Seen inside tx, a write transaction on the store's database:
// the key is taken only if tx commits, together with whatever else tx
// writes (the audit record of the message the key stands for). Another
// transaction taking the same key waits for tx to end, then sees it taken
// or takes it.
func (s *Store) SeenTx(ctx context.Context, tx *store.Tx, key string, now time.Time) (bool, error) {
	if key == "" {
		return false, errors.New("dedupe: empty key")
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
		key, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("dedupe: record %s: %w", key, err)
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("dedupe: record %s: %w", key, err)
	}
	return inserted == 0, nil
}

// Shared is true: the Store remembers every key.
func (s *Store) Shared(string) bool { return true }

// Purge forgets the keys taken more than the TTL before now and returns
// how many it removed.
func (s *Store) Purge(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM seen_events WHERE seen_at < ?`, now.Add(-s.ttl).UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("dedupe: purge: %w", err)
	}
	return n, nil
}

// Durable records only the events of platforms whose event ids are
// durable (unique and stable across processes: Slack and Discord ids), as
// their descriptors say; other keys (the console numbers its lines per
// session: "console-1" comes again in the next one and is no redelivery)
// are never taken for seen. Keys are "platform:event id". It implements
// the pipeline's SeenEvents.
type Durable struct {
	Store     *Store
	Platforms chat.Platforms
}

// Seen is Store.Seen for durable platforms and false for the others.
func (d Durable) Seen(ctx context.Context, key string, now time.Time) (bool, error) {
	if d.Shared(key) {
		return d.Store.Seen(ctx, key, now)
	}
	return false, nil
}

// SeenTx is Store.SeenTx for durable platforms and false, writing
// nothing, for the others.
func (d Durable) SeenTx(ctx context.Context, tx *store.Tx, key string, now time.Time) (bool, error) {
	if d.Shared(key) {
		return d.Store.SeenTx(ctx, tx, key, now)
	}
	return false, nil
}

// Shared reports whether key is of a platform whose event ids are durable:
// only those keys are remembered.
func (d Durable) Shared(key string) bool {
	name, _, _ := strings.Cut(key, ":")
	p, ok := d.Platforms.Lookup(name)
	return ok && p.DurableEvents
}

// Purge is Store.Purge.
func (d Durable) Purge(ctx context.Context, now time.Time) (int64, error) {
	return d.Store.Purge(ctx, now)
}
