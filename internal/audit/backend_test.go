package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for hand edits

	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// One PostgreSQL server for the package's tests; each test gets its own
// database on it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backend is a kind of database the suites run against.
type backend struct {
	name string
	// fresh makes an empty database for t.
	fresh func(t testing.TB) database
}

// database is one test database.
type database struct {
	// open opens a new handle on it: a restarted process, or another
	// replica.
	open func(ctx context.Context) (*store.DB, error)
	// driver and dsn reach it without the store package, for hand edits.
	driver, dsn string
}

// openHandle opens a handle closed at the end of t.
func (d database) openHandle(t testing.TB) *store.DB {
	t.Helper()
	db, err := d.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// backends are SQLite in a temporary file, and PostgreSQL from pgtest
// (skipped when PostgreSQL is not installed, unless
// PARLEY_REQUIRE_INTEGRATION=1).
func backends() []backend {
	return []backend{
		{name: "sqlite", fresh: func(t testing.TB) database {
			path := filepath.Join(t.TempDir(), "parley.db")
			return database{
				open:   func(ctx context.Context) (*store.DB, error) { return store.Open(ctx, path) },
				driver: "sqlite", dsn: path,
			}
		}},
		{name: "postgres", fresh: func(t testing.TB) database {
			dsn := pgtest.Start(t)
			return database{
				open:   func(ctx context.Context) (*store.DB, error) { return store.OpenPostgres(ctx, dsn) },
				driver: "pgx", dsn: dsn,
			}
		}},
	}
}

// forBackends runs test once per backend, as subtests named after them.
func forBackends(t *testing.T, test func(t *testing.T, bk backend)) {
	t.Helper()
	for _, bk := range backends() {
		t.Run(bk.name, func(t *testing.T) { test(t, bk) })
	}
}
