package evals

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// Run statuses.
const (
	StatusRunning     = "running"
	StatusDone        = "done"        // finished; Summary.GatesPassed says pass or fail
	StatusCancelled   = "cancelled"   // someone cancelled it
	StatusFailed      = "failed"      // it could not run (every answer failed, a bad suite, a lost Job)
	StatusInterrupted = "interrupted" // Parley stopped and the run could not be resumed
)

// Run is one evaluation run as stored.
type Run struct {
	ID          int
	Suite       string
	Variant     string
	Baseline    string
	Status      string
	Runner      string // local | kubernetes
	RequestedBy string // "platform:user" or "cli"
	Channel     string
	SuiteHash   string
	DatasetHash string
	Total       int // case × variant answers to produce
	Done        int
	Error       string
	Summary     *Summary // set when done
	Created     time.Time
	Finished    time.Time
}

// Store keeps runs and per-case results in two tables of its own,
// eval_runs and eval_cases, created by Migrate with portable SQL and "?"
// placeholders (Rebind adapts them to PostgreSQL's $n).
type Store struct {
	db     *sql.DB
	rebind func(string) string
	now    func() time.Time
	mu     sync.Mutex // serialises writes inside the process
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// Rebind rewrites "?" placeholders for the database (store.Dialect.Rebind
	// for PostgreSQL); nil leaves them.
	Rebind func(string) string
	Now    func() time.Time
}

// OpenStore creates the tables if needed and returns the store.
func OpenStore(ctx context.Context, db *sql.DB, o StoreOptions) (*Store, error) {
	if db == nil {
		return nil, errors.New("evals store: no database")
	}
	if o.Rebind == nil {
		o.Rebind = func(s string) string { return s }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{db: db, rebind: o.Rebind, now: o.Now}
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	return s, nil
}

// Schema is the evaluation tables. Times are Unix milliseconds; ids are
// assigned as MAX(id)+1 so that people can say "run 42".
var Schema = []string{
	`CREATE TABLE IF NOT EXISTS eval_runs (
		id           BIGINT PRIMARY KEY,
		suite        TEXT NOT NULL,
		variant      TEXT NOT NULL,
		baseline     TEXT NOT NULL,
		status       TEXT NOT NULL,
		runner       TEXT NOT NULL DEFAULT 'local',
		requested_by TEXT NOT NULL DEFAULT '',
		channel      TEXT NOT NULL DEFAULT '',
		suite_hash   TEXT NOT NULL DEFAULT '',
		dataset_hash TEXT NOT NULL DEFAULT '',
		total        BIGINT NOT NULL DEFAULT 0,
		error        TEXT NOT NULL DEFAULT '',
		summary      TEXT NOT NULL DEFAULT '',
		created_ms   BIGINT NOT NULL,
		finished_ms  BIGINT NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS eval_runs_suite ON eval_runs (suite, id)`,
	`CREATE TABLE IF NOT EXISTS eval_cases (
		run_id            BIGINT NOT NULL,
		variant           TEXT NOT NULL,
		case_id           TEXT NOT NULL,
		idx               BIGINT NOT NULL,
		output            TEXT NOT NULL DEFAULT '',
		error             TEXT NOT NULL DEFAULT '',
		scores            TEXT NOT NULL DEFAULT '{}',
		latency_ms        DOUBLE PRECISION NOT NULL DEFAULT 0,
		prompt_tokens     BIGINT NOT NULL DEFAULT 0,
		completion_tokens BIGINT NOT NULL DEFAULT 0,
		cost_usd          DOUBLE PRECISION NOT NULL DEFAULT 0,
		judge_tokens      BIGINT NOT NULL DEFAULT 0,
		judge_cost_usd    DOUBLE PRECISION NOT NULL DEFAULT 0,
		PRIMARY KEY (run_id, variant, case_id)
	)`,
}

// Migrate creates the evaluation tables when they do not exist.
func Migrate(ctx context.Context, db *sql.DB) error {
	for _, q := range Schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("evals store: migrate: %w", err)
		}
	}
	return nil
}

// CreateRun stores a new running run and returns it with its id.
func (s *Store) CreateRun(ctx context.Context, r Run) (Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Status = StatusRunning
	r.Created = s.now()
	var err error
	for range 5 { // another replica may take the same id; try the next
		err = s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO eval_runs
			(id, suite, variant, baseline, status, runner, requested_by, channel, suite_hash, dataset_hash, total, created_ms)
			SELECT COALESCE(MAX(id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM eval_runs RETURNING id`),
			r.Suite, r.Variant, r.Baseline, r.Status, r.Runner, r.RequestedBy, r.Channel, r.SuiteHash, r.DatasetHash, r.Total, r.Created.UnixMilli()).Scan(&r.ID)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil || !strings.Contains(strings.ToLower(err.Error()), "unique") && !strings.Contains(strings.ToLower(err.Error()), "duplicate") {
			break
		}
	}
	return r, fmt.Errorf("evals store: create run: %w", err)
}

// SaveCase stores one answer (replacing an earlier one of the same run,
// variant and case).
func (s *Store) SaveCase(ctx context.Context, c CaseResult) error {
	scores, err := json.Marshal(c.Scores)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM eval_cases WHERE run_id = ? AND variant = ? AND case_id = ?`), c.RunID, c.Variant, c.CaseID); err != nil {
		return fmt.Errorf("evals store: save case: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO eval_cases
		(run_id, variant, case_id, idx, output, error, scores, latency_ms, prompt_tokens, completion_tokens, cost_usd, judge_tokens, judge_cost_usd)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.RunID, c.Variant, c.CaseID, c.Index, c.Output, c.Err, string(scores), c.LatencyMS, c.PromptTokens, c.CompletionTokens, c.Cost, c.JudgeTokens, c.JudgeCost)
	if err != nil {
		return fmt.Errorf("evals store: save case: %w", err)
	}
	return nil
}

// Cases returns a run's stored answers, by dataset position then variant.
func (s *Store) Cases(ctx context.Context, runID int) ([]CaseResult, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT variant, case_id, idx, output, error, scores, latency_ms, prompt_tokens,
		completion_tokens, cost_usd, judge_tokens, judge_cost_usd FROM eval_cases WHERE run_id = ? ORDER BY idx, variant`), runID)
	if err != nil {
		return nil, fmt.Errorf("evals store: cases: %w", err)
	}
	defer rows.Close()
	var out []CaseResult
	for rows.Next() {
		c := CaseResult{RunID: runID}
		var scores string
		if err := rows.Scan(&c.Variant, &c.CaseID, &c.Index, &c.Output, &c.Err, &scores, &c.LatencyMS, &c.PromptTokens,
			&c.CompletionTokens, &c.Cost, &c.JudgeTokens, &c.JudgeCost); err != nil {
			return nil, fmt.Errorf("evals store: cases: %w", err)
		}
		if err := json.Unmarshal([]byte(scores), &c.Scores); err != nil {
			return nil, fmt.Errorf("evals store: case %s scores: %w", c.CaseID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Finish records a run's end.
func (s *Store) Finish(ctx context.Context, id int, status string, sum *Summary, errText string) error {
	var js []byte
	if sum != nil {
		var err error
		if js, err = json.Marshal(sum); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.db.ExecContext(ctx, s.rebind(`UPDATE eval_runs SET status = ?, summary = ?, error = ?, finished_ms = ? WHERE id = ?`),
		status, string(js), clip(errText, 1000), s.now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("evals store: finish run %d: %w", id, err)
	}
	return nil
}

const runColumns = `r.id, r.suite, r.variant, r.baseline, r.status, r.runner, r.requested_by, r.channel, r.suite_hash, r.dataset_hash,
	r.total, r.error, r.summary, r.created_ms, r.finished_ms,
	(SELECT COUNT(*) FROM eval_cases c WHERE c.run_id = r.id)`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var summary string
	var created, finished int64
	if err := sc.Scan(&r.ID, &r.Suite, &r.Variant, &r.Baseline, &r.Status, &r.Runner, &r.RequestedBy, &r.Channel, &r.SuiteHash,
		&r.DatasetHash, &r.Total, &r.Error, &summary, &created, &finished, &r.Done); err != nil {
		return r, err
	}
	r.Created = time.UnixMilli(created).UTC()
	if finished > 0 {
		r.Finished = time.UnixMilli(finished).UTC()
	}
	if summary != "" {
		r.Summary = &Summary{}
		if err := json.Unmarshal([]byte(summary), r.Summary); err != nil {
			return r, fmt.Errorf("run %d summary: %w", r.ID, err)
		}
	}
	return r, nil
}

// GetRun returns a run; a missing one is action.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int) (Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+runColumns+` FROM eval_runs r WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: no evaluation run %d", action.ErrNotFound, id)
	}
	if err != nil {
		return r, fmt.Errorf("evals store: run %d: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the latest runs first, of one suite when suite is set.
func (s *Store) ListRuns(ctx context.Context, suite string, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = 20
	}
	q := `SELECT ` + runColumns + ` FROM eval_runs r`
	var args []any
	if suite != "" {
		q += ` WHERE r.suite = ?`
		args = append(args, suite)
	}
	q += ` ORDER BY r.id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("evals store: list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("evals store: list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RunsWithStatus returns the runs in a status, oldest first.
func (s *Store) RunsWithStatus(ctx context.Context, status string) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT `+runColumns+` FROM eval_runs r WHERE r.status = ? ORDER BY r.id`), status)
	if err != nil {
		return nil, fmt.Errorf("evals store: runs %s: %w", status, err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
