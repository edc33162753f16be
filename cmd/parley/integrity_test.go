package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// integrityLog makes a real SQLite database with a few hundred audit
// events (a dozen pages of them) by running the binary, and returns its
// folder and a configuration that checks the newest 50 events at start.
func integrityLog(t *testing.T) (dir, cfg, db string) {
	t.Helper()
	dir = t.TempDir()
	db = filepath.Join(dir, "parley.db")
	cfg = filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfg, []byte("database: "+db+"\naudit: {verify_tail: 50}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	for range 60 {
		transcript.WriteString("alice@ops: status of checkout in prod\n")
	}
	if out, code := run(t, dir, binPath, transcript.String(), "chat", "--transcript", "-", "--config", cfg); code != 0 {
		t.Fatalf("chat exited %d:\n%s", code, out)
	}
	return dir, cfg, db
}

// openRaw opens the database without Parley, as an intruder or a broken
// disk would change it, with the WAL folded into the main file.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	return raw
}

// wantRefusal checks a start refused on a damaged database: exit 1 and a
// message saying what is wrong and how to go on.
func wantRefusal(t *testing.T, out string, code int, what string) {
	t.Helper()
	if code != 1 {
		t.Fatalf("start on a damaged database exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"failed its start-up integrity check", what,
		"parley audit verify --config", "restore the database from a backup", "--allow-damaged-audit"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "checkout (prod)") {
		t.Errorf("a request was answered on the damaged database:\n%s", out)
	}
}

// overridden returns the integrity.overridden events, read with the
// release binary's audit export.
func overridden(t *testing.T, dir, cfg string) []map[string]any {
	t.Helper()
	out, code := run(t, dir, binPath, "", "audit", "export", "--config", cfg, "--type", "integrity.overridden")
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, out)
	}
	var evs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// Garbage written over a page of audit events: the start is refused, with
// what is wrong and how to go on; with --allow-damaged-audit Parley starts,
// answers, and records that it did.
func TestStartRefusesDamagedAuditPage(t *testing.T) {
	dir, cfg, db := integrityLog(t)
	raw := openRaw(t, db)
	var pageSize int64
	if err := raw.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	rows, err := raw.Query(`SELECT pageno FROM dbstat WHERE name = 'audit_events' AND pagetype = 'leaf' ORDER BY pageno`)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if len(leaves) < 4 {
		t.Fatalf("only %d leaf pages of audit events", len(leaves))
	}
	// A leaf among the newest events, not the last one (where appends go):
	// its cells, after the page header and cell pointers, become garbage.
	page := leaves[len(leaves)-2]
	garbage := make([]byte, pageSize/2)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(garbage, (page-1)*pageSize+pageSize/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	out, code := run(t, dir, binPath, "alice@ops: status of checkout in prod\n", "chat", "--transcript", "-", "--config", cfg)
	wantRefusal(t, out, code, "database failed its integrity check")

	out, code = run(t, dir, binPath, "alice@ops: status of checkout in prod\n", "chat", "--transcript", "-", "--config", cfg, "--allow-damaged-audit")
	if code != 0 || !strings.Contains(out, "checkout (prod)") {
		t.Fatalf("with --allow-damaged-audit: exit %d:\n%s", code, out)
	}
	evs := overridden(t, dir, cfg)
	if len(evs) != 1 || !strings.Contains(evs[0]["error"].(string), "integrity check") {
		t.Errorf("integrity.overridden events: %v, want one saying what was wrong", evs)
	}
	// The full check still names the damage.
	if out, code := run(t, dir, binPath, "", "audit", "verify", "--config", cfg); code == 0 {
		t.Errorf("audit verify passed on a damaged database:\n%s", out)
	}
}

// A row edited among the newest events: the start is refused, naming the
// event; one edited further back than audit.verify_tail passes the quick
// start-up check and is left to `parley audit verify`, the full check.
func TestStartRefusesEditedAuditRow(t *testing.T) {
	dir, cfg, db := integrityLog(t)
	raw := openRaw(t, db)
	var last int64
	if err := raw.QueryRow(`SELECT MAX(seq) FROM audit_events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	// Further back than the 50 checked at start.
	if _, err := raw.Exec(`UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, dir, binPath, "alice@ops: status of checkout in prod\n", "chat", "--transcript", "-", "--config", cfg)
	if code != 0 || !strings.Contains(out, "checkout (prod)") {
		t.Fatalf("an edit older than the checked tail stopped the start (exit %d):\n%s", code, out)
	}
	if out, code := run(t, dir, binPath, "", "audit", "verify", "--config", cfg); code != 1 || !strings.Contains(out, "FAILED at #3") {
		t.Errorf("audit verify after the old edit: exit %d:\n%s", code, out)
	}

	// Among the newest: refused, naming the event.
	if _, err := raw.Exec(`UPDATE audit_events SET subject = 'console:alice' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit_events SET outcome = 'nothing happened' WHERE seq = ?`, last-5); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out, code = run(t, dir, binPath, "alice@ops: status of checkout in prod\n", "chat", "--transcript", "-", "--config", cfg)
	wantRefusal(t, out, code, "failed verification at #")
	out, code = run(t, dir, binPath, "alice@ops: status of checkout in prod\n", "chat", "--transcript", "-", "--config", cfg, "--allow-damaged-audit")
	if code != 0 || !strings.Contains(out, "checkout (prod)") {
		t.Fatalf("with --allow-damaged-audit: exit %d:\n%s", code, out)
	}
	if evs := overridden(t, dir, cfg); len(evs) != 1 {
		t.Errorf("integrity.overridden events: %v, want one", evs)
	}
}
