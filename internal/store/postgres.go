package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrBadDSN means a PostgreSQL connection string cannot be parsed. The
// error never repeats the string: it usually holds a password.
var ErrBadDSN = errors.New("unusable PostgreSQL connection string")

// Session settings applied to every PostgreSQL connection unless the DSN
// sets them. They keep one stuck replica from stalling the others: a
// transaction that waits this long for a row lock fails instead of
// queueing every writer behind it, and a connection left idle inside a
// transaction (a replica paused or cut off mid-write) is ended by the
// server, releasing its locks.
var pgSessionDefaults = map[string]string{
	"application_name":                    "parley",
	"lock_timeout":                        "30s",
	"idle_in_transaction_session_timeout": "60s",
	"TimeZone":                            "UTC",
}

// pgMaxConns bounds the connection pool of each replica. Writers wait on
// row locks while holding a connection, so a few more than SQLite's.
const pgMaxConns = 10

// OpenPostgres connects to the PostgreSQL database named by dsn (a
// postgres:// URL or key=value string, as libpq and pgx read them; TLS as
// its sslmode says) and brings its schema up to date. Several replicas may
// open the same database at once: migrations run under an advisory lock.
//
// The DSN usually carries a password: it appears in no error, log line or
// Path.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts passwords only on a best-effort basis, and the
		// wrapped parse errors quote the input: say nothing of it.
		return nil, fmt.Errorf("open database: %w (want postgres://user@host:port/database?sslmode=... or host=... dbname=...)", ErrBadDSN)
	}
	if cfg.Host == "" || cfg.Database == "" {
		return nil, fmt.Errorf("open database: %w: host and database are required", ErrBadDSN)
	}
	for k, v := range pgSessionDefaults {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	where := describe(cfg)

	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(pgMaxConns)
	sqldb.SetMaxIdleConns(pgMaxConns)
	// Recycle connections now and then so that a failover or a load
	// balancer in front of the server is followed.
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)

	db := &DB{db: sqldb, dialect: Postgres, path: where}
	if err := db.ready(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", where, err)
	}
	return db, nil
}

// describe names the database for errors and Path, without the password.
func describe(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if len(host) > 0 && host[0] != '/' {
		host = net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
	}
	user := ""
	if cfg.User != "" {
		user = cfg.User + "@"
	}
	return "postgres://" + user + host + "/" + cfg.Database
}

// IsNotNullViolation reports whether err is PostgreSQL's refusal of a NULL
// in column (SQLSTATE 23502): for a statement built to fail that way when
// a condition it checks does not hold, writing nothing.
func IsNotNullViolation(err error, column string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23502" && pe.ColumnName == column
}
