package app

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// cli runs one parley command in-process, as cmd/parley does, and returns
// its exit status, stdout and stderr.
type cli struct {
	t     *testing.T
	dir   string
	env   map[string]string
	stdin []byte
	now   func() time.Time
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, dir: t.TempDir(), env: map[string]string{}}
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdin: bytes.NewReader(c.stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return c.env[k] },
		Now:    c.now,
	}
	code := Main(context.Background(), args, env)
	c.stdin = nil
	return code, out.String(), errOut.String()
}

// must runs a command that must succeed.
func (c *cli) must(args ...string) (string, string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("parley %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

func (c *cli) path(name string) string { return filepath.Join(c.dir, name) }

// conversation records a realistic audit log through the real pipeline: a
// read, a refusal, a confirmed change and a second, refused confirm.
const conversation = `alice@ops: status of checkout in prod
eve@ops: scale checkout to 5 in prod
alice@ops: scale checkout to 5 in prod
alice@ops: confirm
alice@ops: confirm
bob@ops: roll back payments in prod
bob@ops: cancel
`

var headRE = regexp.MustCompile(`head (\d+):([0-9a-f]{64})`)

// head reads "head SEQ:HASH" from a verify or backup report.
func head(t *testing.T, report string) string {
	t.Helper()
	m := headRE.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no head in %q", report)
	}
	return m[1] + ":" + m[2]
}

// The SQLite path of docs/operations.md: back up while Parley has the
// database open, verify the copy, restore it into a new place and over an
// existing database (refused while in use, kept aside when replaced), and
// refuse a backup that was tampered with.
func TestBackupRestoreVerifySQLite(t *testing.T) {
	c := newCLI(t)
	db := c.path("data/parley.db")
	c.stdin = []byte(conversation)
	c.must("chat", "--db", db, "--transcript", "-")
	verify, _ := c.must("audit", "verify", "--db", db)
	want := head(t, verify)

	// Online: another handle has the database open and keeps recording
	// while the backup runs, as serve would.
	live, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(live, audit.Options{})
	done := make(chan error, 1)
	go func() {
		var errs []error
		for i := range 20 {
			if _, err := rec.Record(context.Background(), audit.Event{Type: audit.MessageReceived, Subject: "console:carol", Text: "status " + strconv.Itoa(i)}); err != nil {
				errs = append(errs, err)
			}
		}
		done <- fmt.Errorf("%v", errs)
	}()
	_, report := c.must("backup", "--db", db, "--to", c.path("backup.db"))
	if e := <-done; e.Error() != "[]" {
		t.Fatalf("recording during the backup: %v", e)
	}
	if !strings.Contains(report, "audit log OK") {
		t.Fatalf("backup report: %s", report)
	}
	if fi, err := os.Stat(c.path("backup.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	backupHead := head(t, report)
	if n, _ := strconv.Atoi(strings.Split(backupHead, ":")[0]); n < 20 {
		t.Errorf("backup head %s: fewer events than the conversation recorded", backupHead)
	}
	code, _, errOut := c.run("backup", "--db", db, "--to", c.path("backup.db"))
	if code == 0 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("a second backup over the first: exit %d %s", code, errOut)
	}

	// Restore into a new place, and the restored log verifies with the
	// backup's head.
	out, _ := c.must("restore", "--from", c.path("backup.db"), "--db", c.path("restored/parley.db"))
	if !strings.Contains(out, "audit log OK") {
		t.Errorf("restore report: %s", out)
	}
	verify, _ = c.must("audit", "verify", "--db", c.path("restored/parley.db"), "--anchor", want)
	if got := head(t, verify); got != backupHead {
		t.Errorf("restored head %s, backup head %s", got, backupHead)
	}

	// Over the live database: refused without --force, refused while
	// open, then done with the old database kept aside.
	code, _, errOut = c.run("restore", "--from", c.path("backup.db"), "--db", db)
	if code == 0 || !strings.Contains(errOut, "exists: stop Parley, then pass --force") {
		t.Errorf("restore over an existing database: exit %d %s", code, errOut)
	}
	code, _, errOut = c.run("restore", "--from", c.path("backup.db"), "--db", db, "--force")
	if code == 0 || !strings.Contains(errOut, "is in use") {
		t.Errorf("restore over an open database: exit %d %s", code, errOut)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC) }
	_, errOut = c.must("restore", "--from", c.path("backup.db"), "--db", db, "--force")
	if !strings.Contains(errOut, "kept as "+db+".replaced-20261120T100000Z") {
		t.Errorf("restore --force: %s", errOut)
	}
	if _, err := os.Stat(db + ".replaced-20261120T100000Z"); err != nil {
		t.Errorf("the replaced database is gone: %v", err)
	}
	c.must("audit", "verify", "--db", db, "--anchor", want)

	// Streams, for kubectl exec: backup to stdout, restore from stdin.
	code, stream, errOut := c.run("backup", "--db", db, "--to", "-")
	if code != 0 || !strings.HasPrefix(stream, "SQLite format 3\x00") || !strings.Contains(errOut, "bytes to stdout") {
		t.Fatalf("backup to stdout: exit %d %s", code, errOut)
	}
	c.stdin = []byte(stream)
	c.must("restore", "--from", "-", "--db", c.path("streamed.db"))
	c.must("audit", "verify", "--db", c.path("streamed.db"), "--anchor", want)

	// A backup whose audit log was edited is refused, and nothing is
	// written.
	raw, err := sql.Open("sqlite", c.path("backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, _, errOut = c.run("restore", "--from", c.path("backup.db"), "--db", c.path("tampered.db"))
	if code == 0 || !strings.Contains(errOut, "does not verify, nothing was restored") || !strings.Contains(errOut, "#3") {
		t.Errorf("restore of a tampered backup: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(c.path("tampered.db")); err == nil {
		t.Error("a tampered backup was restored")
	}
	c.stdin = []byte("not a database")
	code, _, errOut = c.run("restore", "--from", "-", "--db", c.path("junk.db"))
	if code == 0 || !strings.Contains(errOut, "not a usable Parley backup") {
		t.Errorf("restore of junk: exit %d %s", code, errOut)
	}
}

// Archival: export a time range as JSONL with the chain hashes, verify it
// without the database, and find the first edited line.
func TestExportVerifyFile(t *testing.T) {
	c := newCLI(t)
	db := c.path("parley.db")
	c.now = func() time.Time { return time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC) }
	c.stdin = []byte(conversation)
	c.must("chat", "--db", db, "--transcript", "-")
	c.now = func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	c.stdin = []byte(conversation)
	c.must("chat", "--db", db, "--transcript", "-")
	c.now = nil
	all, _ := c.must("audit", "export", "--db", db)
	total := strings.Count(all, "\n")

	_, report := c.must("audit", "export", "--db", db, "--until", "2026-11-15", "--out", c.path("2026-11.jsonl"))
	if !strings.Contains(report, "#1 (2026-11-01T09:00:00Z)") {
		t.Errorf("export report: %s", report)
	}
	c.must("audit", "export", "--db", db, "--since", "2026-11-15", "--until", "2027-01-01", "--out", c.path("2026-12.jsonl"))
	nov, _ := os.ReadFile(c.path("2026-11.jsonl"))
	dec, _ := os.ReadFile(c.path("2026-12.jsonl"))
	if n := strings.Count(string(nov), "\n") + strings.Count(string(dec), "\n"); n != total || len(nov) == 0 || len(dec) == 0 {
		t.Fatalf("the two months hold %d events, the log %d", n, total)
	}
	out, _ := c.must("audit", "verify", "--file", c.path("2026-11.jsonl"))
	novHead := head(t, out)
	out, _ = c.must("audit", "verify", "--file", c.path("2026-12.jsonl"), "--anchor", novHead)
	if !strings.Contains(out, "it continues #"+strings.Split(novHead, ":")[0]) {
		t.Errorf("december: %s", out)
	}
	out, _ = c.must("audit", "verify", "--file", c.path("2026-11.jsonl"), "--file", c.path("2026-12.jsonl"))
	dbVerify, _ := c.must("audit", "verify", "--db", db)
	if head(t, out) != head(t, dbVerify) {
		t.Errorf("archives end at %s, the database at %s", head(t, out), head(t, dbVerify))
	}

	// Someone edits line 4 of the November archive.
	lines := strings.SplitAfter(string(nov), "\n")
	lines[3] = strings.Replace(lines[3], `"console:`, `"console:x`, 1)
	if err := os.WriteFile(c.path("edited.jsonl"), []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := c.run("audit", "verify", "--file", c.path("edited.jsonl"))
	if code != 1 || !strings.Contains(out, "export FAILED at "+c.path("edited.jsonl")+" line 4 (#4)") {
		t.Errorf("edited export: exit %d %s", code, out)
	}

	// Bad input: a clear error, nothing written.
	for _, args := range [][]string{
		{"audit", "export", "--db", db, "--since", "yesterday-ish"},
		{"audit", "export", "--db", db, "--since", "2026-12-01", "--until", "2026-11-01"},
		{"audit", "verify", "--file", c.path("2026-11.jsonl"), "--db", db},
		{"audit", "verify", "--anchor", "12:nothex", "--db", db},
		{"audit", "list", "--db", db, "--out", c.path("x")},
		{"audit", "export", "--db", db, "--config", c.path("none.yaml")},
	} {
		if code, _, errOut := c.run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if _, err := os.Stat(c.path("x")); err == nil {
		t.Error("a refused command wrote a file")
	}
}

// PostgreSQL: Parley records into it (--config), `parley audit` lists,
// exports and verifies it, and the pg_dump / pg_restore path of
// docs/operations.md brings back a log that verifies with the same head.
func TestAuditAndBackupOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	c := newCLI(t)
	c.env["PARLEY_POSTGRES_DSN"] = dsn
	cfgFile := c.path("config.yaml")
	if err := os.WriteFile(cfgFile, []byte("store: {driver: postgres, dsn: {env: PARLEY_POSTGRES_DSN}}\nkubernetes: {sandbox: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.stdin = []byte(conversation)
	c.must("chat", "--config", cfgFile, "--transcript", "-")

	list, _ := c.must("audit", "list", "--config", cfgFile, "--type", "action.succeeded")
	if !strings.Contains(list, "scale prod/checkout replicas=5") {
		t.Errorf("audit list on PostgreSQL:\n%s", list)
	}
	verify, _ := c.must("audit", "verify", "--config", cfgFile)
	want := head(t, verify)
	c.must("audit", "export", "--config", cfgFile, "--since", "30d", "--out", c.path("pg.jsonl"))
	out, _ := c.must("audit", "verify", "--file", c.path("pg.jsonl"))
	if head(t, out) != want {
		t.Errorf("export head %s, database head %s", head(t, out), want)
	}
	if code, _, errOut := c.run("backup", "--config", cfgFile, "--to", c.path("b.db")); code == 0 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup on PostgreSQL: exit %d %s", code, errOut)
	}

	// pg_dump, lose the data, pg_restore, verify. The test's database is
	// a schema of a shared server, so the dump names it; an operator's
	// dump is the whole database.
	bin := pgBin(t)
	conn, schema := libpqDSN(t, dsn)
	dump := c.path("parley.dump")
	pg(t, bin, "pg_dump", "--format=custom", "--file="+dump, "--schema="+schema, "--dbname="+conn)
	dropSchema(t, dsn, schema)
	if code, _, _ := c.run("audit", "verify", "--config", cfgFile); code == 0 {
		t.Fatal("verify passed with the data gone")
	}
	pg(t, bin, "pg_restore", "--no-owner", "--dbname="+conn, dump)
	verify, _ = c.must("audit", "verify", "--config", cfgFile, "--anchor", want)
	if head(t, verify) != want {
		t.Errorf("restored head %s, want %s", head(t, verify), want)
	}
	// And Parley runs on the restored database, continuing the chain.
	c.stdin = []byte("alice@ops: status of checkout in prod\n")
	c.must("chat", "--config", cfgFile, "--transcript", "-")
	c.must("audit", "verify", "--config", cfgFile, "--anchor", want)
}

// pgBin finds PostgreSQL's client programs as pgtest finds the server's.
func pgBin(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Sort(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_dump")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return filepath.Dir(p)
	}
	if os.Getenv(pgtest.RequireEnv) == "1" {
		t.Fatal("pg_dump and pg_restore not found")
	}
	t.Skip("pg_dump and pg_restore not found")
	return ""
}

// libpqDSN turns a pgtest DSN into one libpq's tools take (no
// search_path parameter) and the schema it named.
func libpqDSN(t *testing.T, dsn string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), schema
}

func pg(t *testing.T, bin, tool string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, tool), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}

func dropSchema(t *testing.T, dsn, schema string) {
	t.Helper()
	db, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
		t.Fatal(err)
	}
}
