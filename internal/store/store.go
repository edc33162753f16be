// Package store opens Parley's embedded SQLite database and owns its schema.
//
// The store is deliberately thin: it opens the file with the settings a
// small, durable, single-host service needs (WAL journal, a busy timeout,
// foreign keys, full fsync, immediate write transactions), applies versioned
// schema migrations at open, and hands out the *sql.DB and a serialised
// write transaction to the packages that own the queries (internal/audit,
// internal/confirm). All SQL is plain and portable so that a PostgreSQL
// dialect can be added later beside this one.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver (pure Go)
)

// Memory is the path that opens a private in-memory database on a single
// connection, for tests and throwaway runs. Nothing survives Close.
const Memory = ":memory:"

// busyTimeout is how long a connection waits for another process's write
// lock before giving up with SQLITE_BUSY. Writers inside this process never
// wait on it: WriteTx serialises them first.
const busyTimeout = 10 * time.Second

// maxConns bounds the connection pool of a file database. WAL lets readers
// run beside the one writer, so a few connections are useful; many are not.
const maxConns = 8

// Error kinds.
var (
	// ErrSchemaTooNew means the database was migrated by a newer Parley than
	// this one; running older code against it could corrupt it.
	ErrSchemaTooNew = errors.New("database schema is newer than this program")
	// ErrBadPath means the database path cannot be used.
	ErrBadPath = errors.New("unusable database path")
)

// DB is an open Parley database.
type DB struct {
	db   *sql.DB
	path string
	// writer is a one-slot semaphore that serialises write transactions
	// inside this process, so that concurrent writers queue here (honouring
	// their contexts) instead of spinning on SQLite's busy handler.
	writer chan struct{}
}

// Open opens (creating if needed) the SQLite database at path and brings
// its schema up to date. The parent directory is created with mode 0700 and
// a new database file with mode 0600: the audit log is not for every user of
// the host. Pass Memory for an in-memory database.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("open database: %w: empty path", ErrBadPath)
	}
	// The driver splits the DSN at the first '?'; a path containing one
	// would silently open a different file. (Without a "file:" prefix the
	// rest is a plain file name to SQLite, '#' and '%' included.)
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("open database %s: %w: path contains '?'", path, ErrBadPath)
	}
	memory := path == Memory
	if !memory {
		if err := prepareFile(path); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate") // every BeginTx is BEGIN IMMEDIATE: writers take the lock up front
	if !memory {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a committed audit event survives power loss, not only a crash.
		q.Add("_pragma", "synchronous(FULL)")
	}
	sqldb, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if memory {
		// Each connection to :memory: is its own database: keep exactly one,
		// forever.
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
	} else {
		sqldb.SetMaxOpenConns(maxConns)
		sqldb.SetMaxIdleConns(maxConns)
	}

	db := &DB{db: sqldb, path: path, writer: make(chan struct{}, 1)}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// prepareFile creates the parent directory and, for a new database, an
// empty file with restrictive permissions (SQLite gives its -wal and -shm
// files the same mode as the database file).
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, os.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("create file: %w", err)
	}
	return f.Close()
}

// SQL returns the underlying database handle for reads and single
// statements. Writes that must not interleave with other writers go through
// WriteTx.
func (db *DB) SQL() *sql.DB { return db.db }

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Close closes the database. Pending write transactions must have ended.
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// WriteTx runs fn in a write transaction and commits it when fn returns
// nil; otherwise it rolls back and returns fn's error. Write transactions of
// this process run one at a time, in arrival order as far as the scheduler
// allows, and each holds SQLite's write lock from its first statement
// (BEGIN IMMEDIATE), so a read-then-write inside fn sees no other writer in
// between. Inside fn use only tx, never SQL(): an in-memory database has a
// single connection, which tx holds.
func (db *DB) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	select {
	case db.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for write lock: %w", ctx.Err())
	}
	defer func() { <-db.writer }()

	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the original error is the one worth reporting
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ReadTx runs fn in a read-only transaction: every query inside sees the
// same snapshot of the database, while writers carry on (WAL). Use it when
// several reads must agree, such as verifying the audit chain against its
// head. fn's error is returned as is.
func (db *DB) ReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to keep or lose
	return fn(tx)
}
