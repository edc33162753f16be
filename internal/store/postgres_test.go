package store

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openPG(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgresOpenCreatesSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	db := openPG(t, dsn)
	ctx := context.Background()
	if db.Dialect() != Postgres || !db.Dialect().Shared() {
		t.Errorf("Dialect = %s, want shared postgres", db.Dialect())
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := migrations(Postgres)
	if want := steps[len(steps)-1].version; v != want {
		t.Errorf("SchemaVersion = %d, want %d", v, want)
	}
	// The same versions, with the same names, as SQLite's.
	lite := migrations(SQLite)
	if len(lite) != len(steps) {
		t.Fatalf("%d postgres steps, %d sqlite steps", len(steps), len(lite))
	}
	for i := range steps {
		if steps[i].version != lite[i].version || steps[i].name != lite[i].name {
			t.Errorf("step %d: postgres %d %q, sqlite %d %q", i, steps[i].version, steps[i].name, lite[i].version, lite[i].name)
		}
	}
	// 64-bit times and a double-precision confidence: a 32-bit type would
	// overflow Unix milliseconds or change the value the audit hash covers.
	for col, want := range map[string]string{
		"audit_events.time_ms":       "bigint",
		"audit_events.seq":           "bigint",
		"audit_events.confidence":    "double precision",
		"audit_head.seq":             "bigint",
		"confirmations.expires_at":   "bigint",
		"confirmations.heartbeat_at": "bigint",
		"confirmations.owner":        "text",
		"seen_events.key":            "text",
		"seen_events.seen_at":        "bigint",
	} {
		table, column, _ := strings.Cut(col, ".")
		var got string
		if err := db.QueryRowContext(ctx, `SELECT data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`, table, column).Scan(&got); err != nil {
			t.Fatalf("%s: %v", col, err)
		}
		if got != want {
			t.Errorf("%s is %s, want %s", col, got, want)
		}
	}
	var seq int64
	if err := db.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = ?`, 1).Scan(&seq); err != nil || seq != 0 {
		t.Errorf("audit_head seq = %d, %v; want 0", seq, err)
	}
}

func TestPostgresConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	const replicas = 4
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = OpenPostgres(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var n int
	if err := dbs[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations(Postgres)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(migrations(Postgres)))
	}
}

func TestPostgresReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	db, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, 7, "x"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openPG(t, dsn)
	var seq int
	if err := db.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil || seq != 7 {
		t.Errorf("after reopen audit_head.seq = %d, %v; want 7", seq, err)
	}
	if _, err := db.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPostgres(ctx, dsn); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("OpenPostgres = %v, want ErrSchemaTooNew", err)
	}
}

// TestPostgresErrorsHideThePassword: the DSN's password must not reach an
// error or Path, whichever way opening fails.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	dsn := pgtest.Start(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	db := openPG(t, dsn)
	if strings.Contains(db.Path(), password) || !strings.HasPrefix(db.Path(), "postgres://postgres@127.0.0.1:") {
		t.Errorf("Path() = %q, want the host and database without the password", db.Path())
	}

	const secret = "s3cret-PASSWORD-value"
	wrong := *u
	wrong.User = url.UserPassword("postgres", secret)
	closed := wrong
	closed.Host = "127.0.0.1:1" // nothing listens there
	for name, bad := range map[string]string{
		"wrong password":    wrong.String(),
		"nothing listening": closed.String(),
		"malformed url":     "postgres://postgres:" + secret + "@127.0.0.1:notaport/db",
		"malformed keyval":  "host=127.0.0.1 password=" + secret + " port='5432",
		"no database":       "postgres://postgres:" + secret + "@127.0.0.1:5432",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenPostgres(context.Background(), bad)
			if err == nil {
				t.Fatal("OpenPostgres succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
	if _, err := OpenPostgres(context.Background(), "postgres://x:"+secret+"@h:bad/db"); !errors.Is(err, ErrBadDSN) {
		t.Errorf("malformed DSN = %v, want ErrBadDSN", err)
	}
}

func TestPostgresWriteTxRollsBackOnError(t *testing.T) {
	db := openPG(t, pgtest.Start(t))
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.WriteTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?`, 42); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTx = %v, want boom", err)
	}
	var seq int
	if err := db.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil || seq != 0 {
		t.Errorf("seq = %d, %v after rollback, want 0", seq, err)
	}
}

// TestPostgresLockSerialisesReplicas: read-modify-write from two handles
// (two replicas) loses nothing when each locks what it reads, with a row
// lock or an advisory lock.
func TestPostgresLockSerialisesReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	for name, bump := range map[string]func(tx *Tx) error{
		"row lock": func(tx *Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`+tx.Dialect().ForUpdate()).Scan(&n); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ? WHERE id = 1`, n+1)
			return err
		},
		"advisory lock": func(tx *Tx) error {
			if err := tx.Lock(ctx, "test-counter"); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&n); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ? WHERE id = 1`, n+1)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := a.ExecContext(ctx, `UPDATE audit_head SET seq = 0`); err != nil {
				t.Fatal(err)
			}
			const workers, each = 8, 15
			var wg sync.WaitGroup
			errs := make(chan error, 2*workers)
			for i := range 2 * workers {
				db := a
				if i%2 == 1 {
					db = b
				}
				wg.Go(func() {
					for range each {
						if err := db.WriteTx(ctx, bump); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			var seq int
			if err := a.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			if seq != 2*workers*each {
				t.Errorf("seq = %d, want %d (lost updates)", seq, 2*workers*each)
			}
		})
	}
}

func TestPostgresReadTxSeesOneSnapshot(t *testing.T) {
	dsn := pgtest.Start(t)
	db, other := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	err := db.ReadTx(ctx, func(tx *Tx) error {
		var before int
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&before); err != nil {
			return err
		}
		// Another replica commits while the snapshot is open.
		if _, err := other.ExecContext(ctx, `UPDATE audit_head SET seq = seq + 5`); err != nil {
			return err
		}
		var after int
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&after); err != nil {
			return err
		}
		if after != before {
			t.Errorf("inside ReadTx seq moved from %d to %d", before, after)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = 0`); err == nil {
			t.Error("a write inside ReadTx succeeded; want a read-only transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
