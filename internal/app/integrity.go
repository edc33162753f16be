package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/store"
)

// The flag that starts Parley on a database that failed the start-up check.
const (
	allowDamagedFlag  = "allow-damaged-audit"
	allowDamagedUsage = "start even if the database or the audit log's newest events fail the start-up check (recorded in the audit log)"
)

// integrityTimeout bounds the start-up checks: a quick_check reads the
// whole file.
const integrityTimeout = 5 * time.Minute

// errDamaged marks a start refused because the store or the audit chain
// failed the start-up check.
var errDamaged = errors.New("the database failed its start-up integrity check")

// checkIntegrity runs the start-up checks: the database's own quick check,
// then the audit chain's newest events (cfg.Audit.VerifyTail of them). It
// returns an error wrapping errDamaged that says what is wrong and how to
// go on, or a plain error when the checks could not run at all.
func checkIntegrity(ctx context.Context, cfg *config.Config, db *store.DB, rec *audit.Recorder) error {
	ctx, cancel := context.WithTimeout(ctx, integrityTimeout)
	defer cancel()
	var problems []string
	if err := db.QuickCheck(ctx); err != nil {
		if !errors.Is(err, store.ErrDamaged) {
			return fmt.Errorf("integrity check: %w", err)
		}
		problems = append(problems, err.Error())
	}
	res, err := rec.VerifyTail(ctx, cfg.Audit.VerifyTail)
	switch {
	case err != nil:
		// Reading the newest events failed: on a damaged file that is
		// the damage speaking.
		problems = append(problems, "the newest audit events cannot be read: "+err.Error())
	case !res.OK:
		problems = append(problems, fmt.Sprintf("the audit chain failed verification at #%d (%s): %s (the newest %d events are checked at start)",
			res.BadSeq, res.Problem, res.Detail, cfg.Audit.VerifyTail))
	}
	if len(problems) == 0 {
		return nil
	}
	where := "--db " + strconv.Quote(cfg.Database)
	if db.Dialect() == store.Postgres || cfg.File() != "(defaults)" {
		where = "--config " + strconv.Quote(cfg.File())
	}
	return &damage{problems: problems, where: where}
}

// damage is the refusal checkIntegrity returns.
type damage struct {
	problems []string
	where    string // the flag that names the database to parley audit
}

func (d *damage) Error() string {
	msg := errDamaged.Error() + ":"
	for _, p := range d.problems {
		msg += "\n  - " + p
	}
	return msg + "\nParley does not start on a damaged audit log. To go on:" +
		"\n  1. run `parley audit verify " + d.where + "` for the full check and the first bad event;" +
		"\n  2. restore the database from a backup taken before the damage (keep the damaged copy for investigation);" +
		"\n  3. or, to run on it anyway, start again with --allow-damaged-audit: Parley records that in the audit log."
}

func (d *damage) Unwrap() error { return errDamaged }

// acceptDamage records, as integrity.overridden, that Parley starts on a
// damaged database because an operator said so.
func acceptDamage(ctx context.Context, rec *audit.Recorder, d *damage, log *slog.Logger) error {
	details := map[string]string{"flag": "--allow-damaged-audit"}
	for i, p := range d.problems {
		details["problem_"+strconv.Itoa(i+1)] = p
	}
	if _, err := rec.Record(ctx, audit.Event{Type: audit.IntegrityOverridden, Subject: "parley:operator",
		Error: d.problems[0], Details: details}); err != nil {
		return fmt.Errorf("%w\nand --allow-damaged-audit was given, but recording that in the audit log failed: %v", d, err)
	}
	log.Warn("starting on a database that failed its integrity check, as --allow-damaged-audit asks", "problems", d.problems)
	return nil
}
