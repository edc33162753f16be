package store

import "testing"

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`: `SELECT 1`,
		`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`:            `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`,
		`UPDATE t SET x = '?' WHERE y = ?`:                       `UPDATE t SET x = '?' WHERE y = $1`,
		`SELECT 'it''s ?', ? FROM "odd?name"`:                    `SELECT 'it''s ?', $1 FROM "odd?name"`,
		"SELECT ? -- why?\nFROM t WHERE a = ?":                   "SELECT $1 -- why?\nFROM t WHERE a = $2",
		`SELECT ? FROM t -- trailing?`:                           `SELECT $1 FROM t -- trailing?`,
		`INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`: `INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		`SELECT 'unterminated ?`:                                 `SELECT 'unterminated ?`,
	} {
		if got := Postgres.Rebind(in); got != want {
			t.Errorf("Postgres.Rebind(%q) = %q, want %q", in, got, want)
		}
		if got := SQLite.Rebind(in); got != in {
			t.Errorf("SQLite.Rebind(%q) = %q, want it unchanged", in, got)
		}
	}
}

func TestDialectClauses(t *testing.T) {
	if Postgres.ForUpdate() != " FOR UPDATE" || SQLite.ForUpdate() != "" {
		t.Errorf("ForUpdate: postgres %q, sqlite %q", Postgres.ForUpdate(), SQLite.ForUpdate())
	}
	if !Postgres.Shared() || SQLite.Shared() {
		t.Error("only PostgreSQL is shared between processes")
	}
	// Pinned: replicas of different builds, running side by side during a
	// rolling upgrade, must agree on the key of a name.
	if got := lockKey("migrate"); got != -2136835311516038663 {
		t.Errorf(`lockKey("migrate") = %d, want -2136835311516038663`, got)
	}
	if lockKey("confirmation-codes:slack:C1") == lockKey("confirmation-codes:slack:C2") {
		t.Error("different names share a lock key")
	}
}
