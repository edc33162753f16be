package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// TestWritePipelined: the two-round-trip write commits what it built; a
// failing statement or a failing build leaves nothing and a connection
// the pool can use again; a head query without a row is sql.ErrNoRows.
func TestWritePipelined(t *testing.T) {
	db := openPG(t, pgtest.Start(t))
	// One connection: a connection left inside a transaction would fail
	// the next step.
	db.SQL().SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE rows (v INT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO counter VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	step := func(v int, extra ...Statement) error {
		var n int
		return db.WritePipelined(ctx, `SELECT n FROM counter WHERE id = 1 FOR UPDATE`, []any{&n}, func() ([]Statement, error) {
			return append([]Statement{
				{Query: `INSERT INTO rows (v) VALUES (?)`, Args: []any{v}},
				{Query: `UPDATE counter SET n = ? WHERE id = 1`, Args: []any{n + 1}},
			}, extra...), nil
		})
	}
	count := func() (n, rows int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT n, (SELECT COUNT(*) FROM rows) FROM counter`).Scan(&n, &rows); err != nil {
			t.Fatal(err)
		}
		return n, rows
	}

	if err := step(1); err != nil {
		t.Fatal(err)
	}
	if n, rows := count(); n != 1 || rows != 1 {
		t.Fatalf("after one write: counter %d, %d rows; want 1, 1", n, rows)
	}
	// A statement fails after the others ran: none of them stays.
	if err := step(2, Statement{Query: `INSERT INTO rows (v) VALUES (?)`, Args: []any{1}}); err == nil {
		t.Fatal("a duplicate key was written")
	}
	if n, rows := count(); n != 1 || rows != 1 {
		t.Fatalf("after a failed write: counter %d, %d rows; want 1, 1", n, rows)
	}
	// The build fails: nothing is sent.
	boom := errors.New("boom")
	var n int
	err := db.WritePipelined(ctx, `SELECT n FROM counter WHERE id = 1 FOR UPDATE`, []any{&n}, func() ([]Statement, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("build failure: %v, want boom", err)
	}
	// No row to lock.
	err = db.WritePipelined(ctx, `SELECT n FROM counter WHERE id = 2 FOR UPDATE`, []any{&n}, func() ([]Statement, error) { return nil, nil })
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no head row: %v, want sql.ErrNoRows", err)
	}
	// The one connection is usable: each failure was rolled back.
	if err := step(3); err != nil {
		t.Fatal(err)
	}
	if n, rows := count(); n != 2 || rows != 2 {
		t.Fatalf("after the last write: counter %d, %d rows; want 2, 2", n, rows)
	}
}

func TestWritePipelinedNeedsPostgres(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.WritePipelined(context.Background(), `SELECT 1`, nil, nil); !errors.Is(err, ErrNotPipelined) {
		t.Fatalf("WritePipelined on SQLite = %v, want ErrNotPipelined", err)
	}
}
