package store

import (
	"context"
	"database/sql"
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
	tx      *sql.Tx
	dialect Dialect
}

// Dialect returns the dialect of the database the transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// ExecContext runs a statement that returns no rows.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, tx.dialect.Rebind(query), args...)
}

// QueryContext runs a query that returns rows.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.dialect.Rebind(query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.dialect.Rebind(query), args...)
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
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(name)); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}
