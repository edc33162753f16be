// Package confirm keeps pending confirmations of mutating actions.
//
// A confirmation is bound to one exact request: the action, its canonical
// parameters, the requester and the channel. It is single use and expires.
// It lives in the database (internal/store), so a restart neither loses a
// pending confirmation nor runs one twice: Claim moves it from pending to
// executing in one conditional UPDATE, so exactly one of any number of
// concurrent approvals wins, in this process or in any replica sharing a
// PostgreSQL database, and what a crash left executing is found by
// Abandoned and settled (done, failed or interrupted) instead of being run
// again (at most once).
//
// Every state change has a ...Tx variant (CreateTx, ClaimTx, CancelTx,
// ExpireDueTx, SettleTx) that runs in the caller's write transaction, so
// that the change and its audit event (audit.Recorder's RecordWith) are
// committed together.
//
// Replicas. A confirmation created by one replica can be confirmed on any
// other. Claim records which replica (Options.Replica) and which run of it
// (a random id per Store) executes the action; while it runs, KeepAlive
// refreshes its heartbeat. Abandoned then returns only what no live
// process is working on:
//
//   - on SQLite, one process owns the file, so every executing
//     confirmation not claimed by this Store was left by a previous run;
//   - on PostgreSQL, an executing confirmation of this replica's previous
//     run (same Replica, restarted), or one whose heartbeat is older than
//     Options.StaleAfter (its replica died or was cut off). A live
//     replica's running action is never taken from it.
//
// Shown. A confirmation is created unshown; the caller marks it shown
// (MarkShown) once its prompt was delivered, and only a shown one can be
// claimed or is offered by PendingIn: nobody can approve a change nobody
// was asked about. A process that stops between creating one and marking
// it shown leaves it unshown; Abandoned finds it, and the caller cancels it
// with a word to its channel.
//
// Who may approve (requester, groups) is decided by policy before Claim;
// Claim itself enforces what it can check alone: pending, unexpired, and a
// second person when DistinctApprover is set.
package confirm

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/store"
)

// State is where a confirmation is in its life.
type State string

// States. Pending is the only one a confirmation can be approved,
// cancelled or expired from; Executing only moves to Done, Failed or (after
// a crash) Interrupted.
const (
	Pending     State = "pending"
	Executing   State = "executing"
	Done        State = "done"
	Failed      State = "failed"
	Cancelled   State = "cancelled"
	Expired     State = "expired"
	Interrupted State = "interrupted"
)

// Error kinds. Claim and Cancel tell them apart so the reply can say why.
var (
	ErrNotFound     = errors.New("no such confirmation")
	ErrAlreadyUsed  = errors.New("confirmation already used")
	ErrExpired      = errors.New("confirmation expired")
	ErrCancelled    = errors.New("confirmation cancelled")
	ErrSameApprover = errors.New("confirmation needs an approver other than the requester")
	ErrNotExecuting = errors.New("confirmation is not executing")
	ErrInvalid      = errors.New("invalid confirmation")
	// ErrNotShown: the confirmation's prompt is not known to have been
	// shown, so it cannot be claimed.
	ErrNotShown = errors.New("confirmation prompt was never shown")
	// ErrTaken: another process adopted or settled the confirmation first.
	ErrTaken = errors.New("confirmation taken by another process")
)

// Code alphabet: no 0/O, 1/I/L, so a code read aloud or retyped survives.
const (
	CodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	CodeLength   = 4
)

// DefaultTTL is how long a confirmation stays open when neither the
// policy rule nor Options say otherwise.
const DefaultTTL = 5 * time.Minute

// DefaultStaleAfter is how long an executing confirmation may go without
// a heartbeat from its replica before another replica's RecoverInterrupted
// takes it as abandoned, when Options do not say.
const DefaultStaleAfter = 2 * time.Minute

// maxOutcome bounds the stored outcome text, in bytes.
const maxOutcome = 1000

// Confirmation is one pending (or decided) confirmation.
type Confirmation struct {
	ID              string // random 128-bit hex; carried by buttons
	Code            string // 4 characters from CodeAlphabet; typed as "confirm CODE"
	RequestID       string
	Action          string
	Params          action.Params
	ParamsCanonical string // Params.Canonical(): the exact parameters confirmed
	Requester       string // "platform:user"
	Channel         string // "platform:id"
	Thread          string
	Approvers       []string // as the policy rule names them: requester, group:sre, slack:U1
	// RequesterGroups are the requester's platform groups at request time
	// (slack-group:…, discord-role:…), for re-checking the policy later.
	RequesterGroups []string
	// DistinctApprover requires someone other than the requester.
	DistinctApprover bool
	Rule             string // the policy rule that asked for confirmation
	PlanSummary      string // what will change, as shown in the prompt
	PlanState        string // fingerprint of the target when planned
	CreatedAt        time.Time
	ExpiresAt        time.Time
	State            State
	DecidedBy        string    // who claimed or cancelled it
	DecidedAt        time.Time // when; zero while pending or when it expired
	FinishedAt       time.Time // when it reached done, failed, expired or interrupted
	Outcome          string
	// ShownAt is when its prompt was delivered (MarkShown); zero while
	// it is not known to have been shown.
	ShownAt time.Time
	// Owner is the replica that claimed it and runs (or ran) the action;
	// before the claim, the replica that created it.
	Owner string
	// OwnerRun is the process (one run of Owner) that owns it now.
	OwnerRun string
	// HeartbeatAt is when the owner last said it was still running it:
	// set by Claim and KeepAlive; zero before the claim.
	HeartbeatAt time.Time
}

// Options configure a Store. The zero value is usable.
type Options struct {
	Now        func() time.Time // default time.Now
	DefaultTTL time.Duration    // for Create without ExpiresAt; default DefaultTTL
	// Replica names this process among the replicas sharing a PostgreSQL
	// database (default: the host name). It must differ between replicas
	// that run at the same time, and should stay the same across restarts
	// of one (a StatefulSet pod name), so that a restarted replica at once
	// recovers what it was running when it stopped; a new name still gets
	// it recovered, after StaleAfter.
	Replica string
	// StaleAfter is how long an executing confirmation of another replica
	// may go without a heartbeat before RecoverInterrupted takes it as
	// abandoned (PostgreSQL only; default DefaultStaleAfter). KeepAlive
	// must beat well within it, and no action should outlast it without
	// KeepAlive running.
	StaleAfter time.Duration
	// Logger receives KeepAlive failures (default: discarded).
	Logger *slog.Logger
}

// Store keeps confirmations in the database.
type Store struct {
	db         *store.DB
	now        func() time.Time
	started    time.Time // when this Store (this process's run) began
	ttl        time.Duration
	replica    string
	run        string // random per Store: tells this run's claims from a previous run's
	staleAfter time.Duration
	log        *slog.Logger
	newCode    func() (string, error) // newCode; tests narrow it to force clashes
}

// New returns a Store on db.
func New(db *store.DB, opts Options) *Store {
	s := &Store{db: db, now: opts.Now, ttl: opts.DefaultTTL, replica: opts.Replica,
		staleAfter: opts.StaleAfter, log: opts.Logger, newCode: newCode}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.replica == "" {
		// Without a host name every run is "parley": recovery then waits
		// for StaleAfter on PostgreSQL instead of taking back this
		// replica's own work at once, which is safe.
		s.replica = "parley"
		if h, err := os.Hostname(); err == nil && h != "" {
			s.replica = h
		}
	}
	s.replica = bound(s.replica, 256)
	if s.staleAfter <= 0 {
		s.staleAfter = DefaultStaleAfter
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	run, err := newID()
	if err != nil {
		// crypto/rand does not fail on supported platforms; a fixed run id
		// would only make this process's claims look like a previous run's.
		run = fmt.Sprintf("%x", time.Now().UnixNano())
	}
	s.run = run
	s.started = s.now()
	return s
}

// Replica returns the name this Store claims confirmations under.
func (s *Store) Replica() string { return s.replica }

const columns = `id, code, request_id, action, params, requester, channel, thread, approvers,
	distinct_approver, rule, plan_summary, plan_state, created_at, expires_at, state,
	decided_by, decided_at, finished_at, outcome, owner, owner_run, heartbeat_at, requester_groups, shown_at`

// Create stores c as pending and unshown and returns it with ID, Code,
// ParamsCanonical, CreatedAt (when zero), ExpiresAt (when zero: CreatedAt
// plus the default TTL), State and Owner set. The code is unique among
// the pending confirmations of the channel. It can be claimed only after
// MarkShown.
func (s *Store) Create(ctx context.Context, c Confirmation) (Confirmation, error) {
	var out Confirmation
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.CreateTx(ctx, tx, c)
		return err
	})
	if err != nil {
		return Confirmation{}, err
	}
	return out, nil
}

// CreateTx is Create inside the caller's write transaction, so that the
// confirmation and the audit event asking for it (audit.Recorder's
// RecordWith) are committed together.
func (s *Store) CreateTx(ctx context.Context, tx *store.Tx, c Confirmation) (Confirmation, error) {
	switch {
	case c.Action == "":
		return Confirmation{}, fmt.Errorf("create confirmation: %w: no action", ErrInvalid)
	case c.Requester == "":
		return Confirmation{}, fmt.Errorf("create confirmation: %w: no requester", ErrInvalid)
	case c.Channel == "":
		return Confirmation{}, fmt.Errorf("create confirmation: %w: no channel", ErrInvalid)
	}
	canonical := c.Params.Canonical()
	if c.ParamsCanonical != "" && c.ParamsCanonical != canonical {
		return Confirmation{}, fmt.Errorf("create confirmation: %w: ParamsCanonical does not match Params", ErrInvalid)
	}
	c.ParamsCanonical = canonical
	c.Params = c.Params.Clone()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Millisecond)
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.CreatedAt.Add(s.ttl)
	}
	c.ExpiresAt = c.ExpiresAt.UTC().Truncate(time.Millisecond)
	if !c.ExpiresAt.After(c.CreatedAt) {
		return Confirmation{}, fmt.Errorf("create confirmation: %w: expires before it is created", ErrInvalid)
	}
	groups, err := json.Marshal(append([]string{}, c.RequesterGroups...))
	if err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: requester groups: %w", err)
	}
	approvers, err := json.Marshal(append([]string{}, c.Approvers...))
	if err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}
	c.State = Pending
	c.DecidedBy, c.DecidedAt, c.FinishedAt, c.Outcome = "", time.Time{}, time.Time{}, ""
	c.Owner, c.OwnerRun, c.HeartbeatAt, c.ShownAt = s.replica, s.run, time.Time{}, time.Time{}
	if c.ID, err = newID(); err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}

	err = func() error {
		// Pick a code no pending confirmation of this channel holds. The
		// write transaction (on PostgreSQL, with the channel's lock) keeps
		// another writer from taking it meanwhile; the partial unique
		// index is the backstop.
		if err := tx.Lock(ctx, "confirmation-codes:"+c.Channel); err != nil {
			return err
		}
		for range 20 {
			code, err := s.newCode()
			if err != nil {
				return err
			}
			var taken int
			err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM confirmations
				WHERE channel = ? AND code = ? AND state = 'pending'`, c.Channel, code).Scan(&taken)
			if err != nil {
				return fmt.Errorf("check code: %w", err)
			}
			if taken == 0 {
				c.Code = code
				break
			}
		}
		if c.Code == "" {
			return errors.New("no free code in this channel")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO confirmations (`+columns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Code, c.RequestID, c.Action, c.ParamsCanonical, c.Requester, c.Channel, c.Thread,
			string(approvers), boolInt(c.DistinctApprover), c.Rule, c.PlanSummary, c.PlanState,
			c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli(), string(c.State), "", 0, 0, "", c.Owner, c.OwnerRun, 0,
			string(groups), 0)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	}()
	if err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}
	return c, nil
}

// Get returns the confirmation with the given id, in any state.
func (s *Store) Get(ctx context.Context, id string) (Confirmation, error) {
	c, err := getTx(ctx, s.db, id)
	if err != nil {
		return Confirmation{}, fmt.Errorf("get confirmation: %w", err)
	}
	return c, nil
}

// FindByCode returns the pending confirmation with the given code in the
// channel. The code is matched case-insensitively. A code from another
// channel, or of a confirmation no longer pending, is ErrNotFound. A
// pending one past its expiry is still returned (Claim then says
// ErrExpired), so the reply can say "expired" rather than "unknown code".
func (s *Store) FindByCode(ctx context.Context, channel, code string) (Confirmation, error) {
	norm, ok := NormaliseCode(code)
	if !ok {
		return Confirmation{}, fmt.Errorf("find confirmation code: %w", ErrNotFound)
	}
	c, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM confirmations
		WHERE channel = ? AND code = ? AND state = 'pending'`, channel, norm))
	if errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, fmt.Errorf("find confirmation code %s: %w", norm, ErrNotFound)
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("find confirmation code %s: %w", norm, err)
	}
	return c, nil
}

// LatestByCode returns the newest confirmation in channel with code,
// whatever its state, so a late or repeated "confirm CODE" can be told
// exactly what became of it (used, expired, cancelled). Codes are unique
// only among pending confirmations, so the newest one is the one meant.
func (s *Store) LatestByCode(ctx context.Context, channel, code string) (Confirmation, error) {
	norm, ok := NormaliseCode(code)
	if !ok {
		return Confirmation{}, fmt.Errorf("find confirmation code: %w", ErrNotFound)
	}
	c, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM confirmations
		WHERE channel = ? AND code = ? ORDER BY created_at DESC, id DESC LIMIT 1`, channel, norm))
	if errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, fmt.Errorf("find confirmation code %s: %w", norm, ErrNotFound)
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("find confirmation code %s: %w", norm, err)
	}
	return c, nil
}

// NormaliseCode returns code trimmed and upper-cased, and whether it is a
// well-formed confirmation code.
func NormaliseCode(code string) (string, bool) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != CodeLength {
		return "", false
	}
	for _, r := range code {
		if !strings.ContainsRune(CodeAlphabet, r) {
			return "", false
		}
	}
	return code, true
}

// MarkShown records that the confirmation's prompt was delivered, which
// makes it claimable. It fails with the refusal Claim would give (wrapped:
// ErrNotFound, ErrExpired, ErrCancelled, ErrAlreadyUsed) when the
// confirmation is no longer pending; marking a shown one again is a no-op.
func (s *Store) MarkShown(ctx context.Context, id string) error {
	nowMS := s.now().UnixMilli()
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations SET shown_at = ?
			WHERE id = ? AND state = 'pending' AND shown_at = 0`, nowMS, id)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if n == 1 {
			return nil
		}
		c, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if c.State == Pending {
			return nil // shown before
		}
		return refusal(c, nowMS, nil)
	})
	if err != nil {
		return fmt.Errorf("mark confirmation shown: %w", err)
	}
	return nil
}

// PendingIn returns the unexpired pending confirmations of a channel whose
// prompt was shown, oldest first.
func (s *Store) PendingIn(ctx context.Context, channel string) ([]Confirmation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM confirmations
		WHERE channel = ? AND state = 'pending' AND shown_at > 0 AND expires_at > ?
		ORDER BY created_at, id`, channel, s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("pending confirmations: %w", err)
	}
	out, err := scanAll(rows)
	if err != nil {
		return nil, fmt.Errorf("pending confirmations: %w", err)
	}
	return out, nil
}

// Claim approves the confirmation for approver at now: it moves it from
// pending to executing, atomically, so of any number of concurrent claims
// exactly one succeeds. The caller runs the action only after a successful
// Claim, then calls Finish.
//
// Failures, wrapped: ErrNotFound; ErrExpired (past ExpiresAt, even if not
// yet marked); ErrCancelled; ErrAlreadyUsed (claimed before, in any later
// state); ErrSameApprover (DistinctApprover and approver is the
// requester; the confirmation stays pending). Except for ErrNotFound the
// confirmation's current record is returned with the error, so the reply
// can say who used it and when.
//
// The claim records this Store's replica as the Owner and starts its
// heartbeat (see KeepAlive). Any replica may claim a confirmation another
// created: the database row is the only state. A confirmation not marked
// shown is refused with ErrNotShown.
func (s *Store) Claim(ctx context.Context, id, approver string, now time.Time) (Confirmation, error) {
	var c Confirmation
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		c, err = s.ClaimTx(ctx, tx, id, approver, now)
		return err
	})
	return c, err
}

// ClaimTx is Claim inside the caller's write transaction, so that the
// claim and its confirmation.granted event are committed together. On a
// refusal it returns the current record with the error; the caller's
// transaction should then be rolled back.
func (s *Store) ClaimTx(ctx context.Context, tx *store.Tx, id, approver string, now time.Time) (Confirmation, error) {
	if approver == "" {
		return Confirmation{}, fmt.Errorf("claim confirmation: %w: no approver", ErrInvalid)
	}
	nowMS := now.UnixMilli()
	// One conditional statement: on PostgreSQL a concurrent claim waits
	// for this row's lock, then finds it no longer pending.
	c, err := scan(tx.QueryRowContext(ctx, `UPDATE confirmations
		SET state = 'executing', decided_by = ?, decided_at = ?, owner = ?, owner_run = ?, heartbeat_at = ?
		WHERE id = ? AND state = 'pending' AND shown_at > 0 AND expires_at > ?
		AND (distinct_approver = 0 OR requester <> ?)
		RETURNING `+columns,
		approver, nowMS, s.replica, s.run, s.now().UnixMilli(), id, nowMS, approver))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, fmt.Errorf("claim confirmation: update: %w", err)
	}
	if c, err = getTx(ctx, tx, id); err != nil {
		return Confirmation{}, fmt.Errorf("claim confirmation: %w", err)
	}
	pendingErr := ErrSameApprover
	if c.ShownAt.IsZero() {
		pendingErr = ErrNotShown
	}
	return c, fmt.Errorf("claim confirmation: %w", refusal(c, nowMS, pendingErr))
}

// refusal explains why a pending-only transition did not happen to c.
// pendingErr is the answer when c is pending and unexpired.
func refusal(c Confirmation, nowMS int64, pendingErr error) error {
	switch c.State {
	case Pending:
		if c.ExpiresAt.UnixMilli() <= nowMS {
			return ErrExpired
		}
		return pendingErr
	case Expired:
		return ErrExpired
	case Cancelled:
		return ErrCancelled
	default:
		return fmt.Errorf("%w (%s)", ErrAlreadyUsed, c.State)
	}
}

// Finish records how an executing confirmation's action ended: Done or
// Failed, with a short outcome. Anything but an executing confirmation is
// ErrNotExecuting (or ErrNotFound).
func (s *Store) Finish(ctx context.Context, id string, state State, outcome string) error {
	if state != Done && state != Failed {
		return fmt.Errorf("finish confirmation: %w: final state %q is neither done nor failed", ErrInvalid, state)
	}
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations SET state = ?, outcome = ?, finished_at = ?
			WHERE id = ? AND state = 'executing'`,
			string(state), bound(outcome, maxOutcome), s.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		c, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: it is %s", ErrNotExecuting, c.State)
	})
	if err != nil {
		return fmt.Errorf("finish confirmation: %w", err)
	}
	return nil
}

// Cancel withdraws a pending confirmation on behalf of by. Whether by may
// cancel is the caller's decision. It fails like Claim (ErrNotFound,
// ErrExpired, ErrCancelled, ErrAlreadyUsed) and returns the current
// record with those errors.
func (s *Store) Cancel(ctx context.Context, id, by string) (Confirmation, error) {
	var c Confirmation
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		c, err = s.CancelTx(ctx, tx, id, by)
		return err
	})
	return c, err
}

// CancelTx is Cancel inside the caller's write transaction, so that the
// cancellation and its confirmation.cancelled event are committed
// together.
func (s *Store) CancelTx(ctx context.Context, tx *store.Tx, id, by string) (Confirmation, error) {
	nowMS := s.now().UnixMilli()
	c, err := func() (Confirmation, error) {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations
			SET state = 'cancelled', decided_by = ?, decided_at = ?, finished_at = ?
			WHERE id = ? AND state = 'pending' AND expires_at > ?`,
			by, nowMS, nowMS, id, nowMS)
		if err != nil {
			return Confirmation{}, fmt.Errorf("update: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return Confirmation{}, fmt.Errorf("update: %w", err)
		}
		c, err := getTx(ctx, tx, id)
		if err != nil {
			return c, err
		}
		if n == 1 {
			return c, nil
		}
		return c, refusal(c, nowMS, ErrAlreadyUsed) // unreachable: pending and unexpired would have matched
	}()
	if err != nil {
		return c, fmt.Errorf("cancel confirmation: %w", err)
	}
	return c, nil
}

// ExpireDue marks every pending confirmation whose expiry is at or before
// now as expired and returns them. Each is returned by exactly one call,
// in this process or any replica, so the caller can audit
// confirmation.expired once per confirmation.
func (s *Store) ExpireDue(ctx context.Context, now time.Time) ([]Confirmation, error) {
	return s.sweep(ctx, "expire due confirmations", Expired, now, "expired unconfirmed",
		`state = 'pending' AND expires_at <= ?`, now.UnixMilli())
}

// ExpireDueTx is ExpireDue inside the caller's write transaction, so that
// the expiries and their confirmation.expired events are committed
// together.
func (s *Store) ExpireDueTx(ctx context.Context, tx *store.Tx, now time.Time) ([]Confirmation, error) {
	out, err := sweepTx(ctx, tx, Expired, now, "expired unconfirmed",
		`state = 'pending' AND expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("expire due confirmations: %w", err)
	}
	return out, nil
}

// interruptedOutcome is the outcome of a confirmation RecoverInterrupted
// takes over.
const interruptedOutcome = "interrupted: Parley stopped while the action was running; it was not retried, check the target"

// RecoverInterrupted marks as interrupted every executing confirmation
// whose process stopped between claiming and finishing, and returns them,
// each exactly once across replicas. They are never run again: whether the
// action took effect is unknown, and at most once beats twice.
//
// Which executing confirmations count as stopped depends on the database
// (see the package comment): on SQLite every one not claimed by this Store
// (one process owns the file); on PostgreSQL those of this replica's
// previous runs, and those whose heartbeat is older than StaleAfter. A
// confirmation this Store claimed is never taken. Call it at start-up,
// before serving requests; on PostgreSQL call it periodically too, so
// that a replica that died and never came back is cleaned up by the
// others.
//
// Deprecated: it marks them without their audit events, and a crash
// before the caller records them leaves them unrecorded; use Abandoned,
// Adopt and SettleTx, which settle each with its event in one transaction
// (and also find confirmations whose prompt was never shown).
func (s *Store) RecoverInterrupted(ctx context.Context) ([]Confirmation, error) {
	now := s.now()
	if !s.db.Dialect().Shared() {
		return s.sweep(ctx, "recover interrupted confirmations", Interrupted, now, interruptedOutcome,
			`state = 'executing' AND owner_run <> ?`, s.run)
	}
	return s.sweep(ctx, "recover interrupted confirmations", Interrupted, now, interruptedOutcome,
		`state = 'executing' AND owner_run <> ? AND (owner = ? OR heartbeat_at <= ?)`,
		s.run, s.replica, now.Add(-s.staleAfter).UnixMilli())
}

// Abandoned returns, oldest first, the confirmations a stopped process
// left unfinished, for the caller to adopt (Adopt), tell their channels
// about, and settle (SettleTx):
//
//   - executing ones: claimed, and the action started or about to, by a
//     process that stopped before recording how it ended;
//   - pending ones never marked shown: stored by a process that stopped
//     before their prompt was known to be delivered.
//
// Which processes count as stopped is RecoverInterrupted's rule: on
// SQLite every one but this Store's; on PostgreSQL this replica's previous
// runs, and any whose heartbeat (executing) or creation (unshown) is older
// than StaleAfter. Abandoned only reads.
func (s *Store) Abandoned(ctx context.Context) ([]Confirmation, error) {
	q := `SELECT ` + columns + ` FROM confirmations
		WHERE (state = 'executing' OR (state = 'pending' AND shown_at = 0)) AND owner_run <> ?`
	args := []any{s.run}
	if s.db.Dialect().Shared() {
		stale := s.now().Add(-s.staleAfter).UnixMilli()
		q += ` AND (owner = ? OR (state = 'executing' AND heartbeat_at <= ?) OR (state = 'pending' AND created_at <= ?))`
		args = append(args, s.replica, stale, stale)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("abandoned confirmations: %w", err)
	}
	out, err := scanAll(rows)
	if err != nil {
		return nil, fmt.Errorf("abandoned confirmations: %w", err)
	}
	sortOldestFirst(out)
	return out, nil
}

// Adopt makes this Store the owner of c, a confirmation Abandoned
// returned, provided nobody changed it since: so that of several replicas
// recovering at once exactly one goes on to tell its channel and settle
// it. It returns the adopted record, or ErrTaken when another process got
// there first or c moved on. An adopted confirmation that this process
// leaves unsettled (it stops too) is abandoned again, and recovered by the
// next one.
func (s *Store) Adopt(ctx context.Context, c Confirmation) (Confirmation, error) {
	var out Confirmation
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = scan(tx.QueryRowContext(ctx, `UPDATE confirmations
			SET owner = ?, owner_run = ?, heartbeat_at = ?
			WHERE id = ? AND state = ? AND owner_run = ? AND shown_at = ?
			RETURNING `+columns,
			s.replica, s.run, s.now().UnixMilli(), c.ID, string(c.State), c.OwnerRun, unixMS(c.ShownAt)))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrTaken
		}
		return err
	})
	if err != nil {
		return Confirmation{}, fmt.Errorf("adopt confirmation %s: %w", c.ID, err)
	}
	return out, nil
}

// SettleTx ends an adopted confirmation inside the caller's write
// transaction, so that the final state and its audit event are committed
// together: an executing one as Done, Failed or Interrupted, an unshown
// pending one as Cancelled (by "parley"), with outcome. Anything else, or
// a confirmation this Store does not own, is ErrTaken; a final state that
// does not fit is ErrInvalid.
func (s *Store) SettleTx(ctx context.Context, tx *store.Tx, c Confirmation, to State, outcome string) error {
	nowMS := s.now().UnixMilli()
	var res sql.Result
	var err error
	switch {
	case c.State == Executing && (to == Done || to == Failed || to == Interrupted):
		res, err = tx.ExecContext(ctx, `UPDATE confirmations SET state = ?, outcome = ?, finished_at = ?
			WHERE id = ? AND state = 'executing' AND owner_run = ?`,
			string(to), bound(outcome, maxOutcome), nowMS, c.ID, s.run)
	case c.State == Pending && to == Cancelled:
		res, err = tx.ExecContext(ctx, `UPDATE confirmations
			SET state = 'cancelled', outcome = ?, decided_by = 'parley', decided_at = ?, finished_at = ?
			WHERE id = ? AND state = 'pending' AND shown_at = 0 AND owner_run = ?`,
			bound(outcome, maxOutcome), nowMS, nowMS, c.ID, s.run)
	default:
		return fmt.Errorf("settle confirmation %s: %w: %s cannot become %s", c.ID, ErrInvalid, c.State, to)
	}
	if err != nil {
		return fmt.Errorf("settle confirmation %s: %w", c.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("settle confirmation %s: %w", c.ID, err)
	}
	if n != 1 {
		return fmt.Errorf("settle confirmation %s: %w", c.ID, ErrTaken)
	}
	return nil
}

// Self names this process (this run of this replica) as "replica/run",
// for records outside the confirmations table that IsAbandoned later
// judges, such as the audit event of a request being taken.
func (s *Store) Self() string { return s.replica + "/" + s.run }

// IsAbandoned reports whether work that the process named owner (a Self
// value; "" for unknown) began at time at, and left unfinished, was left
// by a stopped process, by Abandoned's rule: on SQLite any process but
// this one; on PostgreSQL this replica's previous runs, and any process
// once at is older than StaleAfter.
func (s *Store) IsAbandoned(owner string, at time.Time) bool {
	if owner == s.Self() {
		return false
	}
	if !s.db.Dialect().Shared() {
		return owner != "" || at.Before(s.started)
	}
	replica := owner[:max(0, strings.LastIndexByte(owner, '/'))] // run ids are hex: the last '/' ends the replica
	return (owner != "" && replica == s.replica) || !at.After(s.now().Add(-s.staleAfter))
}

// Heartbeat tells other replicas that this Store is still running the
// actions it claimed: it stamps their heartbeat with now and returns how
// many there are.
func (s *Store) Heartbeat(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET heartbeat_at = ?
		WHERE state = 'executing' AND owner_run = ?`, s.now().UnixMilli(), s.run)
	if err != nil {
		return 0, fmt.Errorf("confirmation heartbeat: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("confirmation heartbeat: %w", err)
	}
	return n, nil
}

// KeepAlive calls Heartbeat every interval (default StaleAfter/4) until
// ctx ends, then returns nil. A failed beat is logged and retried at the
// next tick; each is bounded by the interval. Run it in a goroutine that
// the caller owns and waits for, on every replica of a PostgreSQL
// deployment (it is harmless on SQLite).
func (s *Store) KeepAlive(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = s.staleAfter / 4
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		bctx, cancel := context.WithTimeout(ctx, interval)
		_, err := s.Heartbeat(bctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("confirmation heartbeat failed; other replicas may take running actions as interrupted",
				"replica", s.replica, "err", err)
		}
	}
}

// sweep moves every confirmation matching where to state to, in one
// conditional UPDATE, and returns them as updated, oldest first. A row two
// replicas sweep at once is updated, and returned, by one of them only.
func (s *Store) sweep(ctx context.Context, what string, to State, now time.Time, outcome string,
	where string, whereArgs ...any) ([]Confirmation, error) {
	var out []Confirmation
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = sweepTx(ctx, tx, to, now, outcome, where, whereArgs...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func sweepTx(ctx context.Context, tx *store.Tx, to State, now time.Time, outcome string,
	where string, whereArgs ...any) ([]Confirmation, error) {
	args := append([]any{string(to), outcome, now.UnixMilli()}, whereArgs...)
	rows, err := tx.QueryContext(ctx, `UPDATE confirmations SET state = ?, outcome = ?, finished_at = ?
		WHERE `+where+` RETURNING `+columns, args...)
	if err != nil {
		return nil, err
	}
	out, err := scanAll(rows)
	if err != nil {
		return nil, err
	}
	sortOldestFirst(out)
	return out, nil
}

func sortOldestFirst(cs []Confirmation) {
	slices.SortFunc(cs, func(a, b Confirmation) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// queryer is what getTx needs from *store.DB or *store.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getTx(ctx context.Context, q queryer, id string) (Confirmation, error) {
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM confirmations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, ErrNotFound
	}
	return c, err
}

type scanner interface{ Scan(dest ...any) error }

func scan(sc scanner) (Confirmation, error) {
	var (
		c                                   Confirmation
		params, approvers, state, run       string
		groups                              string
		distinct                            int
		created, expires, decided, finished int64
		heartbeat, shown                    int64
	)
	err := sc.Scan(&c.ID, &c.Code, &c.RequestID, &c.Action, &params, &c.Requester, &c.Channel,
		&c.Thread, &approvers, &distinct, &c.Rule, &c.PlanSummary, &c.PlanState, &created, &expires,
		&state, &c.DecidedBy, &decided, &finished, &c.Outcome, &c.Owner, &run, &heartbeat, &groups, &shown)
	if err != nil {
		return Confirmation{}, err
	}
	if c.Params, err = decodeParams(params); err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(approvers), &c.Approvers); err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: approvers: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(groups), &c.RequesterGroups); err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: requester groups: %w", c.ID, err)
	}
	if len(c.RequesterGroups) == 0 {
		c.RequesterGroups = nil
	}
	c.ParamsCanonical = params
	c.DistinctApprover = distinct != 0
	c.State = State(state)
	c.CreatedAt, c.ExpiresAt = msTime(created), msTime(expires)
	c.DecidedAt, c.FinishedAt = msTime(decided), msTime(finished)
	c.HeartbeatAt = msTime(heartbeat)
	c.ShownAt = msTime(shown)
	c.OwnerRun = run
	return c, nil
}

func scanAll(rows *sql.Rows) ([]Confirmation, error) {
	defer rows.Close()
	var out []Confirmation
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// decodeParams reads canonical JSON back into Params, so that
// Params.Canonical() reproduces the stored text.
func decodeParams(s string) (action.Params, error) { return action.ParseParams(s) }

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// unixMS is msTime's inverse: 0 for the zero time.
func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bound cuts s to at most n bytes at a rune boundary.
func bound(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 { // back to a rune start
		cut--
	}
	return s[:cut] + "…"
}

// newID returns 128 random bits in hex.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newCode returns CodeLength characters drawn uniformly from CodeAlphabet.
func newCode() (string, error) {
	const n = len(CodeAlphabet)
	limit := byte(256 - 256%n) // reject bytes >= limit, so b % n is uniform
	code := make([]byte, 0, CodeLength)
	var buf [16]byte
	for len(code) < CodeLength {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("random code: %w", err)
		}
		for _, b := range buf {
			if b < limit && len(code) < CodeLength {
				code = append(code, CodeAlphabet[int(b)%n])
			}
		}
	}
	return string(code), nil
}
