package llmcost

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// DBStore keeps paid calls in the llm_spend table of Parley's database
// (SQLite or PostgreSQL, created by internal/store's migrations), so that
// every replica and every restart reads the same spend.
type DBStore struct {
	db *store.DB
}

var _ SpendStore = (*DBStore)(nil)

// NewDBStore returns a SpendStore on db.
func NewDBStore(db *store.DB) *DBStore { return &DBStore{db: db} }

// Add keeps one call.
func (s *DBStore) Add(ctx context.Context, r Record) error {
	u := r.Usage
	estimated := 0
	if u.Estimated {
		estimated = 1
	}
	return s.db.WriteTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO llm_spend
			(time_ms, request_id, subject, channel, action, purpose, provider, model, variant,
			 prompt_tokens, completion_tokens, cost_usd, estimated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Time.UnixMilli(), clip(r.RequestID), clip(r.Subject), clip(r.Channel), clip(r.Action), clip(r.Purpose),
			clip(u.Provider), clip(u.Model), clip(u.Variant), u.PromptTokens, u.CompletionTokens, u.Cost, estimated)
		if err != nil {
			return fmt.Errorf("add llm spend: %w", err)
		}
		return nil
	})
}

// Sum is the spend of a channel or a subject in [from, to).
func (s *DBStore) Sum(ctx context.Context, scope Scope, key string, from, to time.Time) (Spend, error) {
	var col string
	switch scope {
	case ScopeChannel:
		col = "channel"
	case ScopeUser:
		col = "subject"
	default:
		return Spend{}, fmt.Errorf("llm spend: unknown scope %q", scope)
	}
	var sp Spend
	var tokens int64
	err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT),
		COALESCE(SUM(cost_usd), 0), COUNT(*) FROM llm_spend WHERE `+col+` = ? AND time_ms >= ? AND time_ms < ?`,
		key, from.UnixMilli(), to.UnixMilli()).Scan(&tokens, &sp.Cost, &sp.Requests)
	if err != nil {
		return Spend{}, fmt.Errorf("read llm spend: %w", err)
	}
	sp.Tokens = int(tokens)
	return sp, nil
}

// Purge forgets calls before t.
func (s *DBStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.WriteTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM llm_spend WHERE time_ms < ?`, before.UnixMilli())
		if err != nil {
			return fmt.Errorf("purge llm spend: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// clip bounds an id or a name kept in the ledger, as valid UTF-8
// (PostgreSQL's TEXT refuses anything else).
func clip(s string) string {
	const n = 256
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
