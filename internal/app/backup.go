package app

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/store"
)

// errPostgresBackup is the answer of backup and restore on PostgreSQL,
// whose own tools do it better.
var errPostgresBackup = errors.New("the store is PostgreSQL: back it up with pg_dump and restore it with pg_restore (docs/operations.md), then check it with parley audit verify --config")

// cmdBackup copies the SQLite database while Parley runs (VACUUM INTO: a
// consistent snapshot, compacted, without stopping writers for longer than
// a read), checks the copy (SQLite's integrity check and the audit chain),
// and writes it to --to, or to stdout with --to - (for kubectl exec ...
// > backup.db). The audit head it prints is the anchor to keep with it.
func cmdBackup(ctx context.Context, args []string, env Env) error {
	fs := newFlags("backup", env)
	dbPath := fs.String("db", defaultDB(env), "SQLite database (without --config)")
	configFile := fs.String("config", "", "back up the database the configuration names")
	to := fs.String("to", "", `where to write the backup: a FILE that does not exist yet, or "-" for stdout`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *to == "" {
		return fmt.Errorf("%w: want parley backup [--config FILE | --db PATH] --to FILE|-", errUsage)
	}
	path, err := sqlitePath(fs, env, *configFile, *dbPath)
	if err != nil {
		return err
	}
	if *to != "-" {
		if _, err := os.Stat(*to); err == nil {
			return fmt.Errorf("%s exists: a backup never overwrites a file", *to)
		}
	}
	src, err := openAuditStore(ctx, env, "", path)
	if err != nil {
		return err
	}
	// The snapshot goes beside its destination (or beside the database for
	// stdout), so the rename into place cannot cross file systems.
	dir := filepath.Dir(*to)
	if *to == "-" {
		dir = filepath.Dir(path)
	}
	tmp, err := os.CreateTemp(dir, ".parley-backup-*.db")
	if err != nil {
		src.Close()
		return err
	}
	tmpName := tmp.Name()
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Close(); err != nil {
		src.Close()
		return err
	}
	// VACUUM INTO writes into an empty file; the snapshot is one read
	// transaction, so a recording server carries on.
	_, err = src.SQL().ExecContext(ctx, `VACUUM INTO ?`, tmpName)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	res, err := checkSQLiteCopy(ctx, tmpName)
	if err != nil {
		return fmt.Errorf("the backup of %s does not check out: %w", path, err)
	}
	if *to == "-" {
		f, err := os.Open(tmpName)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(env.Stdout, f)
		if err != nil {
			return fmt.Errorf("write the backup to stdout: %w", err)
		}
		fmt.Fprintf(env.Stderr, "backup of %s: %d bytes to stdout; %s\n", path, n, res)
	} else {
		if err := syncRename(tmpName, *to); err != nil {
			return err
		}
		keep = true
		fmt.Fprintf(env.Stderr, "backup of %s written to %s; %s\n", path, *to, res)
	}
	if res.Err() != nil {
		// The copy is faithful, tampering included: keep it as evidence,
		// and say so with the exit status.
		return &exitError{code: 1, msg: "the audit log in the database does not verify; the backup holds it as it is"}
	}
	return nil
}

// cmdRestore puts a backup in place of the SQLite database, with Parley
// stopped: it checks the backup first (integrity, schema, audit chain),
// refuses a database that is still open elsewhere, and keeps the database
// it replaces beside it (PATH.replaced-TIME) instead of deleting it.
func cmdRestore(ctx context.Context, args []string, env Env) error {
	fs := newFlags("restore", env)
	dbPath := fs.String("db", defaultDB(env), "SQLite database to restore (without --config)")
	configFile := fs.String("config", "", "restore the database the configuration names")
	from := fs.String("from", "", `the backup: a FILE written by parley backup, or "-" for stdin`)
	force := fs.Bool("force", false, "replace an existing database (it is kept as PATH.replaced-TIME)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *from == "" {
		return fmt.Errorf("%w: want parley restore --from FILE|- [--config FILE | --db PATH] [--force]", errUsage)
	}
	path, err := sqlitePath(fs, env, *configFile, *dbPath)
	if err != nil {
		return err
	}
	if path == store.Memory {
		return fmt.Errorf("%w: cannot restore into an in-memory database", errUsage)
	}
	_, statErr := os.Stat(path)
	exists := statErr == nil
	if exists && !*force {
		return fmt.Errorf("%s exists: stop Parley, then pass --force to replace it (the current database is kept as %s.replaced-TIME)", path, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	in := env.Stdin
	if *from != "-" {
		f, err := os.Open(*from)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".parley-restore-*.db")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmpName)
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("read the backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	res, err := checkSQLiteCopy(ctx, tmpName)
	if err != nil {
		return fmt.Errorf("%s is not a usable Parley backup, nothing was restored: %w", *from, err)
	}
	if verr := res.Err(); verr != nil {
		return fmt.Errorf("the backup's audit log does not verify, nothing was restored: %s", res)
	}
	if exists {
		if err := notInUse(ctx, path); err != nil {
			return err
		}
		aside := fmt.Sprintf("%s.replaced-%s", path, env.now().UTC().Format("20060102T150405Z"))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("keep the current database: %w", err)
			}
		}
		fmt.Fprintf(env.Stderr, "the database it replaces is kept as %s\n", aside)
	}
	if err := syncRename(tmpName, path); err != nil {
		return err
	}
	placed = true
	fmt.Fprintf(env.Stdout, "restored %s from %s; %s\n", path, *from, res)
	return nil
}

// sqlitePath is the SQLite file the command works on: the configuration's
// database, or --db.
func sqlitePath(fs *flag.FlagSet, env Env, configFile, dbPath string) (string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if configFile == "" {
		return dbPath, nil
	}
	if set["db"] {
		return "", fmt.Errorf("%w: give --config or --db, not both", errUsage)
	}
	cfg, err := loadConfig(configFile, env)
	if err != nil {
		return "", err
	}
	if cfg.Store.Driver == config.StorePostgres {
		return "", errPostgresBackup
	}
	return cfg.Database, nil
}

// checkSQLiteCopy checks a database file outside Parley's directories:
// SQLite's integrity check, then (through the store, which also refuses a
// schema newer than this program) the audit chain. The file is opened
// and closed again, so it can be renamed afterwards.
func checkSQLiteCopy(ctx context.Context, path string) (audit.VerifyResult, error) {
	raw, err := sql.Open("sqlite", path+"?"+url.Values{"mode": {"ro"}}.Encode())
	if err != nil {
		return audit.VerifyResult{}, err
	}
	var ok string
	err = raw.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok)
	raw.Close()
	if err != nil {
		return audit.VerifyResult{}, fmt.Errorf("not an SQLite database: %w", err)
	}
	if ok != "ok" {
		return audit.VerifyResult{}, fmt.Errorf("SQLite integrity check: %s", ok)
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return audit.VerifyResult{}, err
	}
	rec := audit.New(db, audit.Options{})
	res, err := rec.Verify(ctx)
	err = errors.Join(err, rec.Close(ctx), db.Close())
	if err != nil {
		return audit.VerifyResult{}, err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, serr := os.Stat(path + suffix); serr == nil {
			return audit.VerifyResult{}, fmt.Errorf("%s%s was left behind: the copy was not closed cleanly", path, suffix)
		}
	}
	return res, nil
}

// notInUse fails when another process has the database open: with an
// exclusive locking mode, SQLite cannot take the lock while any other
// connection (a running Parley, even idle) holds the file.
func notInUse(ctx context.Context, path string) error {
	raw, err := sql.Open("sqlite", path+"?"+url.Values{"_pragma": {"busy_timeout(0)", "locking_mode(EXCLUSIVE)"}}.Encode())
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	conn, err := raw.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		if strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "locked") {
			return fmt.Errorf("%s is in use: stop Parley (kubectl scale --replicas=0, or stop the service) and try again", path)
		}
		return fmt.Errorf("check that %s is not in use: %w", path, err)
	}
	_, err = conn.ExecContext(ctx, `ROLLBACK`)
	return err
}

// syncRename moves a fully written file into place durably: the file's
// data, then the rename, then the folder entry.
func syncRename(from, to string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(from, 0o600); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
