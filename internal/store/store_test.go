package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openFile(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "parley.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestOpenCreatesFileWithSettings(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %o, want 600", mode)
	}

	var journal string
	if err := db.SQL().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if journal != "wal" {
		t.Errorf("journal_mode = %q, want wal", journal)
	}
	var fk, busy, sync int
	if err := db.SQL().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if fk != 1 || busy != int(busyTimeout.Milliseconds()) || sync != 2 {
		t.Errorf("foreign_keys=%d busy_timeout=%d synchronous=%d, want 1, %d, 2", fk, busy, busyTimeout.Milliseconds(), sync)
	}
	// Every connection of the pool, not only the first, has the small
	// page cache: hold several at once and ask each.
	var conns []*sql.Conn
	for range 3 {
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i, c := range conns {
		var cache int
		if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
			t.Fatal(err)
		}
		if cache != -cacheKiB {
			t.Errorf("connection %d: cache_size = %d, want %d (KiB)", i, cache, -cacheKiB)
		}
	}

	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := migrations(SQLite)[len(migrations(SQLite))-1].version; v != want {
		t.Errorf("SchemaVersion = %d, want %d", v, want)
	}
	for _, table := range []string{"audit_events", "audit_head", "confirmations", "seen_events"} {
		var n int
		if err := db.SQL().QueryRowContext(ctx,
			`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
}

func TestReopenKeepsDataAndAppliesNothingTwice(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	if _, err := db.SQL().ExecContext(ctx, `UPDATE audit_head SET seq = 7, hash = 'x' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	var seq int
	if err := db2.SQL().QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != 7 {
		t.Errorf("after reopen audit_head.seq = %d, want 7", seq)
	}
	var n int
	if err := db2.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations(SQLite)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(migrations(SQLite)))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	if _, err := db.SQL().ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", filepath.Join(t.TempDir(), "a?mode=ro")} {
		if _, err := Open(context.Background(), p); !errors.Is(err, ErrBadPath) {
			t.Errorf("Open(%q) = %v, want ErrBadPath", p, err)
		}
	}
}

func TestOpenPlainNameWithURICharacters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a#b%20c.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the literal path: %v", err)
	}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Schema must be visible on every use of the pool, i.e. one connection.
	for range 3 {
		if _, err := db.SchemaVersion(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := db.SQL().Stats().MaxOpenConnections; got != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", got)
	}
}

func TestWriteTxRollsBackOnError(t *testing.T) {
	db, _ := openFile(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.WriteTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = 42`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTx = %v, want boom", err)
	}
	var seq int
	if err := db.SQL().QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != 0 {
		t.Errorf("seq = %d after rollback, want 0", seq)
	}
}

func TestWriteTxSerialisesReadModifyWrite(t *testing.T) {
	db, _ := openFile(t)
	ctx := context.Background()
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				err := db.WriteTx(ctx, func(tx *Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?`, n+1)
					return err
				})
				if err != nil {
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
	if err := db.SQL().QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != workers*each {
		t.Errorf("seq = %d, want %d (lost updates)", seq, workers*each)
	}
}

func TestWriteTxHonoursContextWhileWaiting(t *testing.T) {
	db, _ := openFile(t)
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.WriteTx(ctx, func(*Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.WriteTx(cctx, func(*Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteTx with cancelled context = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReadTxSeesOneSnapshot(t *testing.T) {
	db, _ := openFile(t)
	ctx := context.Background()
	err := db.ReadTx(ctx, func(tx *Tx) error {
		var before int
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&before); err != nil {
			return err
		}
		// A writer commits while the snapshot is open.
		if err := db.WriteTx(ctx, func(w *Tx) error {
			_, err := w.ExecContext(ctx, `UPDATE audit_head SET seq = seq + 5`)
			return err
		}); err != nil {
			return err
		}
		var after int
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&after); err != nil {
			return err
		}
		if after != before {
			t.Errorf("inside ReadTx seq moved from %d to %d", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seq int
	if err := db.SQL().QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != 5 {
		t.Errorf("after ReadTx seq = %d, want 5", seq)
	}
}

// A database at version 4 (before seen_events, chat_state, llm_spend,
// confirmations.shown_at and the incident tables, with the incidents
// table the incident manager used to create itself) is brought to the
// latest version at the next open, its data kept.
func TestOpenUpgradesVersion4(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE audit_head SET seq = 3, hash = 'h' WHERE id = 1`,
		`DROP TABLE seen_events`,
		`DROP TABLE chat_state`,
		`DROP TABLE llm_spend`,
		`ALTER TABLE confirmations DROP COLUMN shown_at`,
		`DROP TABLE incident_inbox`,
		`DROP TABLE incident_outbox`,
		`DROP TABLE incident_digests`,
		`DROP TABLE incidents`,
		`CREATE TABLE incidents (group_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, channel TEXT NOT NULL,
			message_id TEXT NOT NULL, thread TEXT NOT NULL, first_seen BIGINT NOT NULL, updated_at BIGINT NOT NULL, state TEXT NOT NULL)`,
		`INSERT INTO incidents VALUES ('g1', 'parley', 'slack:C1', '1700.1', '1700.1', 1, 2, '{"alerts":[]}')`,
		`DELETE FROM schema_migrations WHERE version >= 5`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	latest := migrations(SQLite)[len(migrations(SQLite))-1].version
	if v, err := db.SchemaVersion(ctx); err != nil || v != latest {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
	}
	var msgID, shown string
	if err := db.QueryRowContext(ctx, `SELECT message_id, shown FROM incidents WHERE group_key = 'g1'`).Scan(&msgID, &shown); err != nil || msgID != "1700.1" || shown != "" {
		t.Errorf("incident row after the upgrade: %q %q %v", msgID, shown, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO chat_state (key, value, created_at) VALUES (?, ?, ?)`, "k", "v", 1); err != nil {
		t.Errorf("chat_state after the upgrade: %v", err)
	}
	if _, err := db.ExecContext(ctx, `SELECT shown_at FROM confirmations`); err != nil {
		t.Errorf("confirmations.shown_at after the upgrade: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO seen_events (key, seen_at) VALUES (?, ?)`, "slack:Ev1", 1); err != nil {
		t.Errorf("seen_events after the upgrade: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO llm_spend (time_ms, channel, prompt_tokens, cost_usd, estimated) VALUES (?, ?, ?, ?, ?)`,
		1, "slack:C1", 812, 0.0001, 1); err != nil {
		t.Errorf("llm_spend after the upgrade: %v", err)
	}
	var seq int
	if err := db.QueryRowContext(ctx, `SELECT seq FROM audit_head`).Scan(&seq); err != nil || seq != 3 {
		t.Errorf("audit_head.seq = %d, %v; want 3", seq, err)
	}
}

// A database at version 9 has the audit indexes of step 1; step 10 makes
// the (type, seq) index hold only the types not written for every request
// and the confirmation index only events that have a confirmation.
func TestOpenUpgradesAuditIndexes(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	for _, stmt := range []string{
		`DROP INDEX audit_events_confirmation`,
		`DROP INDEX audit_events_type`,
		`CREATE INDEX audit_events_type ON audit_events (type, seq)`,
		`CREATE INDEX audit_events_confirmation ON audit_events (confirmation_id)`,
		`DELETE FROM schema_migrations WHERE version >= 10`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	indexes := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			t.Fatal(err)
		}
		indexes[name] = sql
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if sql := indexes["audit_events_type"]; !strings.Contains(sql, "WHERE "+AuditTypeIndexed) {
		t.Errorf("audit_events_type after the upgrade: %q, want the partial index", sql)
	}
	if sql := indexes["audit_events_confirmation"]; !strings.Contains(sql, "WHERE confirmation_id <> ''") {
		t.Errorf("audit_events_confirmation after the upgrade: %q, want the partial index", sql)
	}
	for _, name := range []string{"audit_events_request", "audit_events_subject", "audit_events_channel"} {
		if indexes[name] == "" {
			t.Errorf("%s is missing after the upgrade", name)
		}
	}
}

// The partial type index's condition names exactly the frequent types.
func TestAuditTypeIndexedNamesTheFrequentTypes(t *testing.T) {
	quoted := make([]string, len(AuditFrequentTypes()))
	for i, typ := range AuditFrequentTypes() {
		quoted[i] = "'" + typ + "'"
	}
	if want := "type NOT IN (" + strings.Join(quoted, ", ") + ")"; AuditTypeIndexed != want {
		t.Errorf("AuditTypeIndexed = %s, want %s", AuditTypeIndexed, want)
	}
}

// TestWriteTxPanicReleasesTheWriteLock: a write transaction whose callback
// panics is rolled back, and SQLite's write lock is free again, for this
// process and for others.
func TestWriteTxPanicReleasesTheWriteLock(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	panicInWriteTx(t, db)
	other := openRaw(t, path)
	if _, err := other.ExecContext(ctx, `UPDATE audit_head SET hash = 'other'`); err != nil {
		t.Fatalf("another connection cannot write after the panic: %v", err)
	}
	if seq := headSeq(t, db); seq != 0 {
		t.Fatalf("seq = %d; want 0 (the panicked write rolled back)", seq)
	}
	if err := setSeq(ctx, db, "7"); err != nil {
		t.Fatalf("WriteTx after the panic: %v", err)
	}
}

// TestWriteTxGivesUpOnALockHeldElsewhere: while another process holds
// SQLite's write lock, a write transaction gives up when its context ends,
// and the next one, once the lock is free, goes through.
func TestWriteTxGivesUpOnALockHeldElsewhere(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	other := openRaw(t, path)
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := db.WriteTx(short, func(*Tx) error { return nil }); err == nil {
		t.Fatal("WriteTx succeeded while another connection held the write lock")
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if err := setSeq(ctx, db, "3"); err != nil {
		t.Fatalf("WriteTx once the lock is free: %v", err)
	}
}

// TestStmtCloseReleasesItOnTheWriteConnection: a prepared statement run in
// write transactions lives on the write connection until it is closed.
func TestStmtCloseReleasesItOnTheWriteConnection(t *testing.T) {
	db, _ := openFile(t)
	ctx := context.Background()
	st, err := db.Prepare(ctx, `UPDATE audit_head SET seq = ?`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := db.WriteTx(ctx, func(tx *Tx) error {
			_, err := tx.ExecStmt(ctx, st, i+1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(db.wstmts) != 1 {
		t.Fatalf("write connection holds %d statements, want 1", len(db.wstmts))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if len(db.wstmts) != 0 {
		t.Errorf("write connection holds %d statements after Close, want 0", len(db.wstmts))
	}
	if seq := headSeq(t, db); seq != 3 {
		t.Fatalf("seq = %d; want 3", seq)
	}
}

// openRaw opens path as another process would: its own connection pool,
// without Parley's write serialisation, with a short busy timeout.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(2000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// TestWriteTxPanicOnMemoryFreesTheConnection: on :memory: a write
// transaction holds the only connection; a callback that panics must not
// keep it.
func TestWriteTxPanicOnMemoryFreesTheConnection(t *testing.T) {
	db, err := Open(context.Background(), Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	panicInWriteTx(t, db)
	if err := setSeq(ctx, db, "seq + 1"); err != nil {
		t.Fatalf("WriteTx after the panic: %v", err)
	}
	if seq := headSeq(t, db); seq != 1 {
		t.Fatalf("seq = %d; want 1 (the panicked write rolled back)", seq)
	}
}

// panicInWriteTx runs a write transaction that moves the audit head and
// then panics, and checks that the panic reached the caller.
func panicInWriteTx(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	defer func() {
		if recover() == nil {
			t.Fatal("the callback's panic did not reach the caller")
		}
	}()
	db.WriteTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = 42`); err != nil {
			t.Fatal(err)
		}
		panic("boom")
	})
}

// setSeq sets the audit head's seq to expr in a write transaction.
func setSeq(ctx context.Context, db *DB, expr string) error {
	return db.WriteTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = `+expr)
		return err
	})
}

// headSeq reads the audit head's seq, outside any transaction.
func headSeq(t *testing.T, db *DB) int {
	t.Helper()
	var seq int
	if err := db.QueryRowContext(context.Background(), `SELECT seq FROM audit_head`).Scan(&seq); err != nil {
		t.Fatalf("read the audit head: %v", err)
	}
	return seq
}
