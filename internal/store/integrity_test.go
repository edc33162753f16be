package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

func TestQuickCheckFindsADamagedPage(t *testing.T) {
	db, path := openFile(t)
	ctx := context.Background()
	// A table of a few dozen pages.
	if _, err := db.ExecContext(ctx, `CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := db.ExecContext(ctx, `INSERT INTO filler (id, body) VALUES (?, ?)`, i+1, strings.Repeat(fmt.Sprint(i), 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.QuickCheck(ctx); err != nil {
		t.Fatalf("QuickCheck of a healthy file = %v", err)
	}
	var page, size int64
	if err := db.QueryRowContext(ctx, `SELECT pageno FROM dbstat WHERE name = 'filler' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 5`).Scan(&page); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff\x00garbage", int(size)/16)), (page-1)*size+16); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QuickCheck(ctx)
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("QuickCheck of a damaged page = %v, want ErrDamaged", err)
	}
	t.Logf("QuickCheck: %v", err)
}

func TestQuickCheckOnPostgres(t *testing.T) {
	db := openPG(t, pgtest.Start(t))
	ctx := context.Background()
	if err := db.QuickCheck(ctx); err != nil {
		t.Fatalf("QuickCheck of a fresh database = %v", err)
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE seen_events`); err != nil {
		t.Fatal(err)
	}
	if err := db.QuickCheck(ctx); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "seen_events") {
		t.Errorf("QuickCheck without a table = %v, want ErrDamaged naming it", err)
	}
}
