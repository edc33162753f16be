package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrDamaged means the database failed its integrity check.
var ErrDamaged = errors.New("database failed its integrity check")

// maxProblems bounds how many problems QuickCheck reports.
const maxProblems = 10

// tables are the tables Parley's schema owns, for the PostgreSQL check.
var tables = []string{"schema_migrations", "audit_events", "audit_head", "confirmations", "seen_events"}

// QuickCheck runs the database's own quick consistency check and returns
// an error wrapping ErrDamaged that lists what it found (at most ten
// problems), or an error reading the database.
//
// SQLite: PRAGMA quick_check, which reads every page of the file (and its
// WAL) and checks the b-trees and records, but not that indexes match
// their tables; it takes about a second per few hundred megabytes.
//
// PostgreSQL checks its own pages as it reads them (with data checksums
// on, which initdb -k enables), so there is no equivalent to run; the
// check reads a row of every Parley table, which fails on a missing table
// or an unreadable first page. The audit chain's tail, checked at start by
// internal/audit, reads the newest events.
func (db *DB) QuickCheck(ctx context.Context) error {
	if db.dialect == Postgres {
		for _, t := range tables {
			rows, err := db.db.QueryContext(ctx, `SELECT 1 FROM `+t+` LIMIT 1`)
			if err != nil {
				return fmt.Errorf("%w: table %s cannot be read: %v", ErrDamaged, t, err)
			}
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("%w: table %s cannot be read: %v", ErrDamaged, t, err)
			}
		}
		return nil
	}
	rows, err := db.db.QueryContext(ctx, fmt.Sprintf(`PRAGMA quick_check(%d)`, maxProblems))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		if line != "ok" {
			// One row may hold several problems, a line each.
			problems = append(problems, strings.Join(strings.Fields(strings.ReplaceAll(line, "\n", "; ")), " "))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrDamaged, strings.Join(problems, "; "))
	}
	return nil
}
