// Package storetest runs a test suite against every database Parley's
// store supports: SQLite in a temporary file and PostgreSQL from pgtest
// (skipped when PostgreSQL is not installed, unless
// PARLEY_REQUIRE_INTEGRATION=1). Packages built on internal/store (audit,
// confirm, dedupe) share it, so each suite proves both backends.
//
// A package using it starts one PostgreSQL server for its tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for hand edits
	_ "modernc.org/sqlite"             // "sqlite" driver for hand edits

	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// Backend is a kind of database the suites run against.
type Backend struct {
	Name string
	// Fresh makes an empty database for t.
	Fresh func(t testing.TB) Database
}

// Database is one test database.
type Database struct {
	// Open opens a new handle on it: a restarted process, or another
	// replica.
	Open func(ctx context.Context) (*store.DB, error)
	// Driver and DSN reach it without the store package (database/sql),
	// for hand edits that simulate tampering.
	Driver, DSN string
}

// OpenHandle opens a handle closed at the end of t.
func (d Database) OpenHandle(t testing.TB) *store.DB {
	t.Helper()
	db, err := d.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Backends are SQLite and PostgreSQL.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Fresh: func(t testing.TB) Database {
			path := filepath.Join(t.TempDir(), "parley.db")
			return Database{
				Open:   func(ctx context.Context) (*store.DB, error) { return store.Open(ctx, path) },
				Driver: "sqlite", DSN: path,
			}
		}},
		{Name: "postgres", Fresh: func(t testing.TB) Database {
			dsn := pgtest.Start(t)
			return Database{
				Open:   func(ctx context.Context) (*store.DB, error) { return store.OpenPostgres(ctx, dsn) },
				Driver: "pgx", DSN: dsn,
			}
		}},
	}
}

// ForBackends runs test once per backend, as subtests named after them.
func ForBackends(t *testing.T, test func(t *testing.T, bk Backend)) {
	t.Helper()
	for _, bk := range Backends() {
		t.Run(bk.Name, func(t *testing.T) { test(t, bk) })
	}
}
