package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/store"
)

// cmdAudit lists, exports and verifies the audit log: in the database the
// configuration names (SQLite or PostgreSQL, with --config), the SQLite
// file of --db, or, for verify --file, archived JSONL exports without any
// database.
func cmdAudit(ctx context.Context, args []string, env Env) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list", "export", "verify":
	default:
		return fmt.Errorf("%w: unknown audit command %q (list, export, verify)", errUsage, sub)
	}
	fs := newFlags("audit "+sub, env)
	dbPath := fs.String("db", defaultDB(env), "SQLite database (without --config)")
	configFile := fs.String("config", "", "read the database the configuration names (store: sqlite or postgres)")
	format := fs.String("format", "text", "list/export format: text, jsonl or csv (export: jsonl unless given)")
	limit := fs.Int("limit", 0, "only the last N events (0: all)")
	typ := fs.String("type", "", "only events of this type, e.g. action.succeeded")
	req := fs.String("request", "", "only events of this request id")
	since := fs.String("since", "", "only events recorded at or after: RFC 3339, YYYY-MM-DD (UTC) or an age like 30d")
	until := fs.String("until", "", "only events recorded before: RFC 3339, YYYY-MM-DD (UTC) or an age like 7d")
	out := fs.String("out", "", "export: write to FILE (complete or not at all) instead of stdout")
	var anchors anchorFlags
	fs.Var(&anchors, "anchor", "verify: also check the chain holds SEQ:HASH published earlier (repeatable)")
	var files multiFlag
	fs.Var(&files, "file", "verify: check JSONL exports instead of the database, in order (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if sub == "verify" && len(files) > 0 {
		if set["config"] || set["db"] {
			return fmt.Errorf("%w: --file verifies exports without a database; drop --config and --db", errUsage)
		}
		return verifyFiles(env, files, anchors)
	}
	if set["config"] && set["db"] {
		return fmt.Errorf("%w: give --config or --db, not both", errUsage)
	}
	now := env.now()
	from, err := parseWhen(*since, now)
	if err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	to, err := parseWhen(*until, now)
	if err != nil {
		return fmt.Errorf("%w: --until: %v", errUsage, err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return fmt.Errorf("%w: --since %s is not before --until %s", errUsage, *since, *until)
	}

	db, err := openAuditStore(ctx, env, *configFile, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	rec := audit.New(db, audit.Options{})
	defer rec.Close(context.WithoutCancel(ctx))

	if sub == "verify" {
		res, err := rec.Verify(ctx, anchors...)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res.String())
		if res.Err() != nil {
			return &exitError{code: 1}
		}
		return nil
	}

	if sub == "export" && !set["format"] {
		*format = "jsonl"
	}
	switch *format {
	case "text", "jsonl", "csv":
	default:
		return fmt.Errorf("%w: unknown format %q (text, jsonl, csv)", errUsage, *format)
	}
	if *out != "" && sub != "export" {
		return fmt.Errorf("%w: --out is for export", errUsage)
	}
	f := audit.Filter{RequestID: *req}
	if *typ != "" {
		t := audit.Type(*typ)
		if !t.Valid() {
			return fmt.Errorf("%w: unknown event type %q", errUsage, *typ)
		}
		f.Types = []audit.Type{t}
	}
	none := false
	if !from.IsZero() || !to.IsZero() {
		// By Seq, not by time: an archive is one unbroken piece of the
		// chain, which verify --file can check on its own.
		first, last, err := rec.SeqRange(ctx, from, to)
		if err != nil {
			return err
		}
		none = first == 0
		f.AfterSeq, f.ThroughSeq = first-1, last
	}
	if *limit > 0 {
		f.Limit, f.NewestFirst = *limit, true
	}
	var events []audit.Event
	if !none {
		if events, err = rec.List(ctx, f); err != nil {
			return err
		}
	}
	if f.NewestFirst {
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	write := func(w io.Writer) error {
		switch *format {
		case "jsonl":
			return audit.ExportJSONL(w, events)
		case "csv":
			return audit.ExportCSV(w, events)
		default:
			for _, e := range events {
				if _, err := fmt.Fprintln(w, audit.Format(e)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if *out == "" {
		return write(env.Stdout)
	}
	if err := writeFileAtomic(*out, write); err != nil {
		return err
	}
	// What an archivist files beside the export: its range and the
	// anchor to check it (and the next archive) against.
	if len(events) == 0 {
		fmt.Fprintf(env.Stderr, "exported no events to %s\n", *out)
		return nil
	}
	first, last := events[0], events[len(events)-1]
	fmt.Fprintf(env.Stderr, "exported %d events, #%d (%s) to #%d (%s), to %s; head %s\n",
		len(events), first.Seq, first.Time.Format(time.RFC3339), last.Seq, last.Time.Format(time.RFC3339), *out,
		audit.Anchor{Seq: last.Seq, Hash: last.Hash})
	return nil
}

// openAuditStore opens the database of the configuration (SQLite or
// PostgreSQL) or, without one, the SQLite file at path, which must exist:
// reading an audit log never creates one.
func openAuditStore(ctx context.Context, env Env, configFile, path string) (*store.DB, error) {
	if configFile != "" {
		cfg, err := loadConfig(configFile, env)
		if err != nil {
			return nil, err
		}
		if cfg.Store.Driver == config.StorePostgres {
			return openStore(ctx, cfg)
		}
		path = cfg.Database
	}
	if path != store.Memory {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no audit log at %s (run parley chat first, or pass --db or --config): %w", path, err)
		}
	}
	return store.Open(ctx, path)
}

// verifyFiles checks JSONL exports in the order given.
func verifyFiles(env Env, names []string, anchors []audit.Anchor) error {
	var files []audit.ExportFile
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		defer f.Close()
		files = append(files, audit.ExportFile{Name: n, R: f})
	}
	res, err := audit.VerifyExport(files, anchors...)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.String())
	if res.Err() != nil {
		return &exitError{code: 1}
	}
	return nil
}

// anchorFlags is a repeatable --anchor SEQ:HASH.
type anchorFlags []audit.Anchor

func (a *anchorFlags) String() string { return fmt.Sprint([]audit.Anchor(*a)) }
func (a *anchorFlags) Set(v string) error {
	an, err := audit.ParseAnchor(v)
	if err != nil {
		return fmt.Errorf("%v (as printed by audit verify)", err)
	}
	*a = append(*a, an)
	return nil
}

// parseWhen reads a time bound: RFC 3339, a UTC date (YYYY-MM-DD), a UTC
// date and minute (YYYY-MM-DDTHH:MM), or an age before now in
// Prometheus-style units (90m, 12h, 30d, 2w). Empty is no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if d, err := action.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-11-20, 2026-11-20T10:00:00Z) or an age (30d)", s)
}

// writeFileAtomic writes path through a temporary file in the same
// folder, synced and renamed into place: an interrupted export leaves the
// old file (or none), never half an archive.
func writeFileAtomic(path string, fn func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeAll(tmp, fn); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil { // an audit log is not for everyone
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeAll(w io.Writer, fn func(io.Writer) error) error {
	bw := &errWriter{w: w}
	if err := fn(bw); err != nil {
		return err
	}
	return bw.err
}

// errWriter remembers the first write error, so a full disk is reported
// even by a writer function that does not check every write.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
