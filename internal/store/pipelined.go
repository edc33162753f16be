package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNotPipelined means the database cannot run WritePipelined (SQLite,
// where a transaction costs no round trip anyway): use WriteTx.
var ErrNotPipelined = errors.New("pipelined writes need PostgreSQL")

// Statement is one statement of WritePipelined, with '?' placeholders.
// Rebinding is idempotent: a query already rebound (Dialect.Rebind, once
// ahead, for a hot one) is sent as it is.
type Statement struct {
	Query string
	Args  []any
}

// WritePipelined runs a write transaction in two round trips on
// PostgreSQL: BEGIN and the query head together, head's one row scanned
// into dest, then the statements build returns and COMMIT together. It is
// for a short transaction whose writes depend only on a row it locks (the
// audit chain's head: SELECT ... FOR UPDATE), where round trips under the
// lock bound how fast every replica writes. When any step fails, the
// transaction is rolled back and the error returned; when build fails,
// nothing was written. A head that finds no row returns sql.ErrNoRows.
func (db *DB) WritePipelined(ctx context.Context, head string, dest []any, build func() ([]Statement, error)) error {
	if db.dialect != Postgres {
		return ErrNotPipelined
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("pipelined write: unexpected driver connection %T", dc)
		}
		return db.pipelined(ctx, c.Conn(), head, dest, build)
	})
}

func (db *DB) pipelined(ctx context.Context, conn *pgx.Conn, head string, dest []any, build func() ([]Statement, error)) (err error) {
	open := false // a transaction is open on conn
	defer func() {
		if err == nil || !open {
			return
		}
		// Roll back on a context of its own: ctx may be what ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			// The connection's state is unknown: the pool must not
			// hand it out again.
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr), driver.ErrBadConn)
		}
	}()

	first := &pgx.Batch{}
	first.Queue("BEGIN")
	first.Queue(db.dialect.Rebind(head))
	res := conn.SendBatch(ctx, first)
	open = true // BEGIN may have run even when reading its result fails
	if _, err := res.Exec(); err != nil {
		res.Close()
		return fmt.Errorf("begin write: %w", err)
	}
	if err := res.QueryRow().Scan(dest...); err != nil {
		res.Close()
		if errors.Is(err, pgx.ErrNoRows) {
			return sql.ErrNoRows
		}
		return err
	}
	if err := res.Close(); err != nil {
		return err
	}

	stmts, err := build()
	if err != nil {
		return err
	}
	second := &pgx.Batch{}
	for _, s := range stmts {
		second.Queue(db.dialect.Rebind(s.Query), s.Args...)
	}
	second.Queue("COMMIT")
	res = conn.SendBatch(ctx, second)
	for range stmts {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return err
		}
	}
	tag, err := res.Exec()
	if err != nil {
		res.Close()
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		// PostgreSQL answers COMMIT in a failed transaction with ROLLBACK.
		res.Close()
		return fmt.Errorf("commit: the transaction was rolled back (%s)", tag)
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	open = false
	return nil
}
