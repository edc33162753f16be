// Package store opens Parley's database and owns its schema: the embedded
// SQLite file by default (one Parley process), or a shared PostgreSQL
// database when several replicas must see the same pending confirmations
// and one audit chain.
//
// The store is deliberately thin: it opens the database with the settings a
// small, durable service needs, applies versioned schema migrations at open
// (the same versions, with the same meaning, for both dialects), and hands
// out read helpers and write transactions to the packages that own the
// queries (internal/audit, internal/confirm). Those write one portable
// statement with '?' placeholders; the Dialect rewrites placeholders and
// supplies the few clauses that differ (row locks, advisory locks).
//
// SQLite: WAL journal, a busy timeout, foreign keys, full fsync, and
// immediate write transactions serialised inside the process, so a
// read-then-write in WriteTx sees no other writer in between.
//
// PostgreSQL: WriteTx runs at READ COMMITTED and does not serialise writers,
// in this process or across replicas; a read-then-write must lock what it
// read (Dialect.ForUpdate, Tx.Lock) or be one conditional statement.
// ReadTx runs at REPEATABLE READ, so its reads agree with each other.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

// openTimeout bounds connecting and migrating at Open.
const openTimeout = time.Minute

// maxConns bounds the connection pool of a file database. WAL lets readers
// run beside the one writer, so a few connections are useful; many are not.
// One of them is kept for writing once the first write ran (DB.wconn).
const maxConns = 8

// cacheKiB is each file-database connection's own page cache, in KiB
// (SQLite's default is 2,000). Parley's writes append at the right edge of
// a few B-trees and its reads are short, so a few hundred pages hold the
// working set; the operating system's page cache holds the rest of the
// file for every connection at once. With the default, the pool's caches
// grew to about 4 MiB of the process's resident memory in a 10,000-request
// run, for no measurable speed.
const cacheKiB = 512

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
	db      *sql.DB
	dialect Dialect
	path    string // the SQLite path, or PostgreSQL's host and database without credentials
	// writer is a one-slot semaphore that serialises write transactions
	// inside this process, so that concurrent writers queue here (honouring
	// their contexts) instead of spinning on SQLite's busy handler. Nil on
	// PostgreSQL, whose row locks do that job across processes.
	writer chan struct{}
	// wconn is the connection that runs this process's write transactions
	// on a SQLite file, kept for them alone (nil until the first one, and
	// on :memory: and PostgreSQL), and wstmts the statements prepared on
	// it. A write transaction on it is BEGIN IMMEDIATE ... COMMIT run as
	// statements rather than a *sql.Tx, which starts a goroutine to watch
	// every transaction and every query inside one. Both are used only
	// with writer held.
	wconn  *sql.Conn
	wstmts map[*Stmt]*sql.Stmt
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
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
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

	db := &DB{db: sqldb, dialect: SQLite, path: path, writer: make(chan struct{}, 1)}
	if err := db.ready(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// ready checks the connection and brings the schema up to date, within
// openTimeout.
func (db *DB) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := db.db.PingContext(ctx); err != nil {
		return err
	}
	return db.migrate(ctx)
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

// SQL returns the underlying database handle, for health checks and
// statements written for one dialect. Its placeholders are the driver's
// own; the ExecContext, QueryContext and QueryRowContext methods of DB take
// '?' on every dialect. Writes that must not interleave with other writers
// go through WriteTx.
func (db *DB) SQL() *sql.DB { return db.db }

// Dialect returns which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Path returns the SQLite path the database was opened with, or for
// PostgreSQL "postgres://user@host:port/database" without the password.
func (db *DB) Path() string { return db.path }

// ExecContext runs a single statement outside any transaction.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.db.ExecContext(ctx, db.dialect.Rebind(query), args...)
}

// QueryContext runs a query outside any transaction.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.db.QueryContext(ctx, db.dialect.Rebind(query), args...)
}

// QueryRowContext runs a query returning at most one row outside any
// transaction.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.db.QueryRowContext(ctx, db.dialect.Rebind(query), args...)
}

// Close closes the database. Pending write transactions must have ended.
func (db *DB) Close() error {
	cerr := db.closeConn()
	if err := errors.Join(cerr, db.db.Close()); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// WriteTx runs fn in a write transaction and commits it when fn returns
// nil; otherwise it rolls back and returns fn's error. Inside fn use only
// tx, never the DB: an in-memory database has a single connection, which
// tx holds.
//
// On SQLite, write transactions of this process run one at a time, in
// arrival order as far as the scheduler allows, and each holds SQLite's
// write lock from its first statement (BEGIN IMMEDIATE), so a
// read-then-write inside fn sees no other writer in between. On a file
// they all run on one connection kept for them (see DB.wconn).
//
// On PostgreSQL the transaction is READ COMMITTED and writers run side by
// side, here and in other replicas: fn must lock the rows it reads before
// writing on their strength (SELECT ...+tx.Dialect().ForUpdate(), or
// tx.Lock for something that is not a row yet), or make the change one
// conditional statement (UPDATE ... WHERE state = 'pending').
func (db *DB) WriteTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.writeTx(ctx, false, fn)
}

// WriteBatch is WriteTx for a transaction that several callers share (the
// audit log's group commit): every statement on tx runs under ctx, the
// batch's, whatever context a caller's code passes, so that one caller
// giving up cannot interrupt a statement of the shared transaction (on
// SQLite an interrupted write rolls the whole transaction back). Each
// caller's part should run in tx.Savepoint, so that its failure undoes
// only its own writes. On SQLite ctx bounds only the wait for the write
// lock: once the batch has begun, its statements run to the end.
func (db *DB) WriteBatch(ctx context.Context, fn func(tx *Tx) error) error {
	return db.writeTx(ctx, true, fn)
}

func (db *DB) writeTx(ctx context.Context, pinned bool, fn func(tx *Tx) error) (err error) {
	if db.writer != nil {
		select {
		case db.writer <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("wait for write lock: %w", ctx.Err())
		}
		defer func() { <-db.writer }()
	}

	if pinned && db.dialect == SQLite {
		// A batch's statements wait for nothing but the disk once the
		// write lock is taken, and an interrupted write would roll the
		// whole batch back: ctx bounded the wait for the lock above; the
		// statements run to the end. (It also spares a watcher goroutine
		// per statement.)
		ctx = context.WithoutCancel(ctx)
	}
	if db.dialect == SQLite && db.path != Memory {
		return db.connTx(ctx, pinned, fn)
	}
	sqltx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Also when fn panicked, so that the connection (on :memory:,
		// the only one) is not left inside the transaction. The original
		// error comes first; a failed rollback (the connection broke) is
		// reported beside it.
		if rerr := sqltx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) && err != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
	}()
	tx := &Tx{q: sqltx, tx: sqltx, db: db, dialect: db.dialect}
	if pinned {
		tx.pinned = ctx
	}
	if err = fn(tx); err != nil {
		return err
	}
	if err = sqltx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// Stmt is a statement prepared once on the database and run by
// transactions through Tx.ExecStmt and Tx.QueryRowStmt, so that a hot
// query is parsed and planned once per connection instead of once per
// run. Prepare it outside any transaction: an in-memory database has a
// single connection, which a transaction holds.
type Stmt struct {
	s     *sql.Stmt
	query string // rebound
	db    *DB
}

// Prepare prepares query, written with '?' placeholders on every dialect.
// Close the statement before the database, and outside any write
// transaction.
func (db *DB) Prepare(ctx context.Context, query string) (*Stmt, error) {
	s, err := db.db.PrepareContext(ctx, db.dialect.Rebind(query))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &Stmt{s: s, query: db.dialect.Rebind(query), db: db}, nil
}

// Close releases the statement on every connection it was prepared on.
func (s *Stmt) Close() error {
	err := s.s.Close()
	if db := s.db; db.writer != nil {
		db.writer <- struct{}{}
		if ws, ok := db.wstmts[s]; ok {
			delete(db.wstmts, s)
			err = errors.Join(err, ws.Close())
		}
		<-db.writer
	}
	return err
}

// ReadTx runs fn in a read-only transaction: every query inside sees the
// same snapshot of the database, while writers carry on (WAL on SQLite,
// REPEATABLE READ on PostgreSQL). Use it when several reads must agree,
// such as verifying the audit chain against its head. fn's error is
// returned as is (with a failure to end the transaction joined to it).
func (db *DB) ReadTx(ctx context.Context, fn func(tx *Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == Postgres {
		// READ COMMITTED would take a new snapshot for every statement.
		opts.Isolation = sql.LevelRepeatableRead
	}
	sqltx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	ended := false
	defer func() {
		if !ended { // fn panicked: free the connection; the panic is the report
			sqltx.Rollback()
		}
	}()
	err = fn(&Tx{q: sqltx, tx: sqltx, db: db, dialect: db.dialect})
	ended = true
	// Read-only: rolling back only ends the transaction; a failure means
	// the connection broke after the reads.
	if rerr := sqltx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		err = errors.Join(err, fmt.Errorf("end read: %w", rerr))
	}
	return err
}

// connTx runs fn in a write transaction on the write connection (SQLite
// file, writer held).
func (db *DB) connTx(ctx context.Context, pinned bool, fn func(tx *Tx) error) (err error) {
	if db.wconn == nil {
		c, err := db.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("begin write: %w", err)
		}
		db.wconn, db.wstmts = c, map[*Stmt]*sql.Stmt{}
	}
	conn := db.wconn
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
			db.dropConn()
		}
		return fmt.Errorf("begin write: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Also when fn panicked: the connection must not stay inside the
		// transaction, holding the write lock. SQLite ends the
		// transaction itself on some errors (a full disk, an I/O error),
		// and then there is nothing to roll back. A connection that
		// cannot roll back is not used again.
		_, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		if rerr != nil && !strings.Contains(rerr.Error(), "no transaction is active") {
			if err != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
			}
			db.dropConn()
		}
	}()
	tx := &Tx{q: conn, db: db, dialect: db.dialect}
	if pinned {
		tx.pinned = ctx
	}
	if err = fn(tx); err != nil {
		return err
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// dropConn closes the write connection and its statements, and marks it
// unusable so that the pool discards it; the next write opens another.
// Its state is unknown: closing it is all that can be done, and its
// errors tell nothing more.
func (db *DB) dropConn() { db.releaseConn(true) }

// closeConn closes the write connection and its statements, when the
// database closes.
func (db *DB) closeConn() error {
	if db.writer == nil {
		return nil
	}
	db.writer <- struct{}{}
	defer func() { <-db.writer }()
	return db.releaseConn(false)
}

// releaseConn closes the write connection and its statements (writer
// held); a bad one is marked so that the pool does not keep it.
func (db *DB) releaseConn(bad bool) error {
	if db.wconn == nil {
		return nil
	}
	var errs []error
	for _, s := range db.wstmts {
		errs = append(errs, s.Close())
	}
	if bad {
		db.wconn.Raw(func(any) error { return driver.ErrBadConn })
	}
	errs = append(errs, db.wconn.Close())
	db.wconn, db.wstmts = nil, nil
	return errors.Join(errs...)
}

// connStmt returns s prepared on the write connection.
func (db *DB) connStmt(ctx context.Context, s *Stmt) (*sql.Stmt, error) {
	if ws, ok := db.wstmts[s]; ok {
		return ws, nil
	}
	ws, err := db.wconn.PrepareContext(ctx, s.query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	db.wstmts[s] = ws
	return ws, nil
}
