package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestStartGivesSeparateEmptySchemas(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Starts returned the same DSN")
	}
	ctx := context.Background()
	dbA, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer dbA.Close()
	dbB, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer dbB.Close()
	if _, err := dbA.ExecContext(ctx, `CREATE TABLE only_in_a (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbB.QueryRowContext(ctx, `SELECT COUNT(*) FROM only_in_a`).Scan(&n); err == nil {
		t.Errorf("a table created in one test's schema is visible in another's")
	}
	var schema string
	if err := dbA.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema != Schema(a) || schema == Schema(b) || schema == "" {
		t.Errorf("current_schema() = %q, want %q (and not %q)", schema, Schema(a), Schema(b))
	}
	var user string
	if err := dbA.QueryRowContext(ctx, `SELECT current_user`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "postgres" && os.Getenv(DSNEnv) == "" {
		t.Errorf("connected as %q, want the cluster's superuser postgres", user)
	}
}

func TestServerRejectsWrongPassword(t *testing.T) {
	if os.Getenv(DSNEnv) != "" {
		t.Skip("an external server's authentication is its own business")
	}
	srv := serverFor(t)
	good := *srv
	good.password = "wrong"
	db, err := sql.Open("pgx", good.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err == nil {
		t.Fatal("the test server accepted a wrong password: it must not trust every local user")
	}
}

func TestSchemaDroppedAtCleanup(t *testing.T) {
	var dsn string
	t.Run("user", func(t *testing.T) {
		dsn = Start(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), `CREATE TABLE left_behind (x INTEGER)`); err != nil {
			t.Fatal(err)
		}
	})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1`, Schema(dsn)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 || Schema(dsn) == "" {
		t.Errorf("schema %q still exists after its test ended", Schema(dsn))
	}
}
