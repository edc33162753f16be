package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Dialect names the SQL database behind a DB. The packages that own the
// queries (internal/audit, internal/confirm) write one portable statement
// with '?' placeholders; DB and Tx rewrite the placeholders, and the few
// places where the dialects truly differ ask the Dialect.
type Dialect string

// Dialects.
const (
	// SQLite is the embedded single-file database: one Parley process.
	SQLite Dialect = "sqlite"
	// Postgres is a shared PostgreSQL database: any number of replicas.
	Postgres Dialect = "postgres"
)

// Shared reports whether several Parley processes may use the database at
// once. On a shared database nothing a process reads is safe from another
// process between two statements unless it locks it (ForUpdate, Tx.Lock)
// or changes it with one conditional statement.
func (d Dialect) Shared() bool { return d == Postgres }

// ForUpdate is the clause that locks the rows a SELECT reads until the
// transaction ends: " FOR UPDATE" on PostgreSQL, "" on SQLite, where a
// write transaction already holds the one database-wide write lock.
func (d Dialect) ForUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Rebind rewrites the '?' placeholders of q for the dialect: $1, $2, ... on
// PostgreSQL, unchanged on SQLite. Question marks inside quoted strings or
// identifiers, and in comments, are left alone.
func (d Dialect) Rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an
			// escaped one and keeps the literal open.
			end := i + 1
			for end < len(q) {
				if q[end] == c {
					if end+1 < len(q) && q[end+1] == c {
						end += 2
						continue
					}
					break
				}
				end++
			}
			if end >= len(q) {
				end = len(q) - 1
			}
			b.WriteString(q[i : end+1])
			i = end
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end])
			i += end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lockKey maps a lock name to the 64-bit key of a PostgreSQL advisory lock.
// Names are prefixed so that Parley's keys stay apart from other users of
// the same database.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("parley:"))
	h.Write([]byte(name))
	return int64(h.Sum64()) // a bit pattern, not a quantity: wrapping is intended
}

// Tx is a transaction handed to WriteTx and ReadTx callbacks. Its query
// methods take '?' placeholders on every dialect.
type Tx struct {
	// q runs the statements: tx, or on a SQLite file the connection that
	// holds the write transaction (DB.wconn), with tx nil.
	q       querier
	tx      *sql.Tx
	db      *DB
	dialect Dialect
	// pinned, when set (DB.WriteBatch), is the context every statement
	// runs under.
	pinned context.Context
	// stmts are the prepared statements bound to tx.
	stmts map[*Stmt]*sql.Stmt
	// savepoints numbers the savepoints taken, for their names.
	savepoints int
}

// querier runs statements: a *sql.Tx or a *sql.Conn.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Dialect returns the dialect of the database the transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

func (tx *Tx) ctx(ctx context.Context) context.Context {
	if tx.pinned != nil {
		return tx.pinned
	}
	return ctx
}

// ExecContext runs a statement that returns no rows.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.q.ExecContext(tx.ctx(ctx), tx.dialect.Rebind(query), args...)
}

// QueryContext runs a query that returns rows.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.q.QueryContext(tx.ctx(ctx), tx.dialect.Rebind(query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.q.QueryRowContext(tx.ctx(ctx), tx.dialect.Rebind(query), args...)
}

// stmt binds s to the transaction, once per transaction.
func (tx *Tx) stmt(ctx context.Context, s *Stmt) (*sql.Stmt, error) {
	if tx.tx == nil {
		return tx.db.connStmt(ctx, s) // the write connection keeps them
	}
	if ts, ok := tx.stmts[s]; ok {
		return ts, nil
	}
	ts := tx.tx.StmtContext(ctx, s.s)
	if tx.stmts == nil {
		tx.stmts = map[*Stmt]*sql.Stmt{}
	}
	tx.stmts[s] = ts
	return ts, nil
}

// ExecStmt runs a prepared statement that returns no rows.
func (tx *Tx) ExecStmt(ctx context.Context, s *Stmt, args ...any) (sql.Result, error) {
	ctx = tx.ctx(ctx)
	ts, err := tx.stmt(ctx, s)
	if err != nil {
		return nil, err
	}
	return ts.ExecContext(ctx, args...)
}

// QueryRowStmt runs a prepared query that returns at most one row.
func (tx *Tx) QueryRowStmt(ctx context.Context, s *Stmt, args ...any) *sql.Row {
	ctx = tx.ctx(ctx)
	ts, err := tx.stmt(ctx, s)
	if err != nil {
		// Not prepared on this connection: run it as text, which fails
		// the same way (the error comes out of Scan) or answers.
		return tx.q.QueryRowContext(ctx, s.query, args...)
	}
	return ts.QueryRowContext(ctx, args...)
}

// ErrTxBroken means a transaction can no longer be used: a savepoint
// could not be rolled back (the connection broke, or the database ended
// the transaction on its own). Nothing of it will commit.
var ErrTxBroken = errors.New("transaction broken")

// Savepoint runs fn inside a savepoint: when fn fails, what it wrote is
// undone and the transaction carries on without it (on PostgreSQL too,
// where a failed statement otherwise aborts the whole transaction). It
// returns fn's error; when the savepoint itself fails, the error wraps
// ErrTxBroken and the transaction must be abandoned.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	tx.savepoints++
	name := "sp" + strconv.Itoa(tx.savepoints)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("%w: savepoint: %v", ErrTxBroken, err)
	}
	if err := fn(); err != nil {
		// Rolling back to a savepoint keeps it; release it too, so that
		// the transaction goes on as if fn had never run.
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: roll back to savepoint: %v", ErrTxBroken, rerr))
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: release savepoint: %v", ErrTxBroken, rerr))
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("%w: release savepoint: %v", ErrTxBroken, err)
	}
	return nil
}

// Lock takes the named lock until the transaction ends, so that writers
// in every process that lock the same name run one at a time: a
// transaction-scoped advisory lock on PostgreSQL. On SQLite it does
// nothing: a write transaction already excludes every other writer.
// Use it inside WriteTx only.
func (tx *Tx) Lock(ctx context.Context, name string) error {
	if tx.dialect != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(tx.ctx(ctx), `SELECT pg_advisory_xact_lock($1)`, lockKey(name)); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}
