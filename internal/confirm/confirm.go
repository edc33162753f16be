// Package confirm keeps pending confirmations of mutating actions.
//
// A confirmation is bound to one exact request: the action, its canonical
// parameters, the requester and the channel. It is single use and expires.
// It lives in the database (internal/store), so a restart neither loses a
// pending confirmation nor runs one twice: Claim moves it from pending to
// executing in one conditional UPDATE, so exactly one of any number of
// concurrent approvals wins, and RecoverInterrupted marks whatever was left
// executing by a crash as interrupted instead of running it again
// (at most once).
//
// Who may approve (requester, groups) is decided by policy before Claim;
// Claim itself enforces what it can check alone: pending, unexpired, and a
// second person when DistinctApprover is set.
package confirm

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
)

// Code alphabet: no 0/O, 1/I/L, so a code read aloud or retyped survives.
const (
	CodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	CodeLength   = 4
)

// DefaultTTL is how long a confirmation stays open when neither the
// policy rule nor Options say otherwise.
const DefaultTTL = 5 * time.Minute

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
}

// Options configure a Store. The zero value is usable.
type Options struct {
	Now        func() time.Time // default time.Now
	DefaultTTL time.Duration    // for Create without ExpiresAt; default DefaultTTL
}

// Store keeps confirmations in the database.
type Store struct {
	db  *store.DB
	now func() time.Time
	ttl time.Duration
}

// New returns a Store on db.
func New(db *store.DB, opts Options) *Store {
	s := &Store{db: db, now: opts.Now, ttl: opts.DefaultTTL}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	return s
}

const columns = `id, code, request_id, action, params, requester, channel, thread, approvers,
	distinct_approver, rule, plan_summary, plan_state, created_at, expires_at, state,
	decided_by, decided_at, finished_at, outcome`

// Create stores c as pending and returns it with ID, Code,
// ParamsCanonical, CreatedAt (when zero), ExpiresAt (when zero: CreatedAt
// plus the default TTL) and State set. The code is unique among the
// pending confirmations of the channel.
func (s *Store) Create(ctx context.Context, c Confirmation) (Confirmation, error) {
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
	approvers, err := json.Marshal(append([]string{}, c.Approvers...))
	if err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}
	c.State = Pending
	c.DecidedBy, c.DecidedAt, c.FinishedAt, c.Outcome = "", time.Time{}, time.Time{}, ""
	if c.ID, err = newID(); err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}

	err = s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		// Pick a code no pending confirmation of this channel holds. The
		// write transaction keeps another writer from taking it meanwhile;
		// the partial unique index is the backstop.
		for range 20 {
			code, err := newCode()
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
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Code, c.RequestID, c.Action, c.ParamsCanonical, c.Requester, c.Channel, c.Thread,
			string(approvers), boolInt(c.DistinctApprover), c.Rule, c.PlanSummary, c.PlanState,
			c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli(), string(c.State), "", 0, 0, "")
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return Confirmation{}, fmt.Errorf("create confirmation: %w", err)
	}
	return c, nil
}

// Get returns the confirmation with the given id, in any state.
func (s *Store) Get(ctx context.Context, id string) (Confirmation, error) {
	c, err := getTx(ctx, s.db.SQL(), id)
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
	c, err := scan(s.db.SQL().QueryRowContext(ctx, `SELECT `+columns+` FROM confirmations
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
	c, err := scan(s.db.SQL().QueryRowContext(ctx, `SELECT `+columns+` FROM confirmations
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

// PendingIn returns the unexpired pending confirmations of a channel,
// oldest first.
func (s *Store) PendingIn(ctx context.Context, channel string) ([]Confirmation, error) {
	rows, err := s.db.SQL().QueryContext(ctx, `SELECT `+columns+` FROM confirmations
		WHERE channel = ? AND state = 'pending' AND expires_at > ?
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
func (s *Store) Claim(ctx context.Context, id, approver string, now time.Time) (Confirmation, error) {
	if approver == "" {
		return Confirmation{}, fmt.Errorf("claim confirmation: %w: no approver", ErrInvalid)
	}
	nowMS := now.UnixMilli()
	var c Confirmation
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations
			SET state = 'executing', decided_by = ?, decided_at = ?
			WHERE id = ? AND state = 'pending' AND expires_at > ?
			AND (distinct_approver = 0 OR requester <> ?)`,
			approver, nowMS, id, nowMS, approver)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if c, err = getTx(ctx, tx, id); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		return refusal(c, nowMS, ErrSameApprover)
	})
	if err != nil {
		return c, fmt.Errorf("claim confirmation: %w", err)
	}
	return c, nil
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
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
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
	nowMS := s.now().UnixMilli()
	var c Confirmation
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations
			SET state = 'cancelled', decided_by = ?, decided_at = ?, finished_at = ?
			WHERE id = ? AND state = 'pending' AND expires_at > ?`,
			by, nowMS, nowMS, id, nowMS)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if c, err = getTx(ctx, tx, id); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		return refusal(c, nowMS, ErrAlreadyUsed) // unreachable: pending and unexpired would have matched
	})
	if err != nil {
		return c, fmt.Errorf("cancel confirmation: %w", err)
	}
	return c, nil
}

// ExpireDue marks every pending confirmation whose expiry is at or before
// now as expired and returns them. Each is returned by exactly one call,
// so the caller can audit confirmation.expired once per confirmation.
func (s *Store) ExpireDue(ctx context.Context, now time.Time) ([]Confirmation, error) {
	return s.sweep(ctx, "expire due confirmations", Pending, Expired, now,
		`AND expires_at <= ?`, now.UnixMilli(), "expired unconfirmed")
}

// RecoverInterrupted marks every confirmation left executing (the process
// stopped between claiming and finishing) as interrupted and returns them.
// They are never run again: whether the action took effect is unknown, and
// at most once beats twice. Call it once at start-up, before serving
// requests, with no other Parley process on the same database.
func (s *Store) RecoverInterrupted(ctx context.Context) ([]Confirmation, error) {
	return s.sweep(ctx, "recover interrupted confirmations", Executing, Interrupted, s.now(), "", nil,
		"interrupted: Parley stopped while the action was running; it was not retried, check the target")
}

// sweep moves every confirmation in state from (and matching extra) to
// state to, in one write transaction, and returns them as updated.
func (s *Store) sweep(ctx context.Context, what string, from, to State, now time.Time,
	extra string, extraArg any, outcome string) ([]Confirmation, error) {
	var out []Confirmation
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		args := []any{string(from)}
		if extra != "" {
			args = append(args, extraArg)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+columns+` FROM confirmations
			WHERE state = ? `+extra+` ORDER BY created_at, id`, args...)
		if err != nil {
			return err
		}
		if out, err = scanAll(rows); err != nil {
			return err
		}
		nowMS := now.UnixMilli()
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE confirmations SET state = ?, outcome = ?, finished_at = ?
				WHERE id = ? AND state = ?`, string(to), outcome, nowMS, out[i].ID, string(from)); err != nil {
				return fmt.Errorf("update %s: %w", out[i].ID, err)
			}
			out[i].State, out[i].Outcome, out[i].FinishedAt = to, outcome, time.UnixMilli(nowMS).UTC()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// queryer is what getTx needs from *sql.DB or *sql.Tx.
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
		params, approvers, state            string
		distinct                            int
		created, expires, decided, finished int64
	)
	err := sc.Scan(&c.ID, &c.Code, &c.RequestID, &c.Action, &params, &c.Requester, &c.Channel,
		&c.Thread, &approvers, &distinct, &c.Rule, &c.PlanSummary, &c.PlanState, &created, &expires,
		&state, &c.DecidedBy, &decided, &finished, &c.Outcome)
	if err != nil {
		return Confirmation{}, err
	}
	if c.Params, err = decodeParams(params); err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(approvers), &c.Approvers); err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: approvers: %w", c.ID, err)
	}
	c.ParamsCanonical = params
	c.DistinctApprover = distinct != 0
	c.State = State(state)
	c.CreatedAt, c.ExpiresAt = msTime(created), msTime(expires)
	c.DecidedAt, c.FinishedAt = msTime(decided), msTime(finished)
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

// decodeParams reads canonical JSON back into Params; whole numbers become
// int, as validated parameters are, so Params.Canonical() reproduces the
// stored text.
func decodeParams(s string) (action.Params, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	p := make(action.Params, len(raw))
	for k, v := range raw {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				p[k] = int(i)
				continue
			}
			f, _ := n.Float64()
			p[k] = f
			continue
		}
		p[k] = v
	}
	return p, nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
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
