package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are append-only: a released
// step is never edited, a change is a new step.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns every schema step of the dialect in order. Both
// dialects have the same steps with the same meaning; they differ only in
// types: PostgreSQL's INTEGER is 32 bits and its REAL 32-bit floating
// point, so 64-bit columns are BIGINT and the confidence DOUBLE PRECISION
// there (a float4 would change the value the audit hash covers).
func migrations(d Dialect) []migration {
	if d == Postgres {
		return pgMigrations()
	}
	return sqliteMigrations()
}

// sqliteMigrations are the SQLite steps. Times are Unix milliseconds (UTC)
// in INTEGER columns.
func sqliteMigrations() []migration {
	return []migration{
		{
			version: 1,
			name:    "audit events and hash-chain head",
			stmts: []string{
				// seq is assigned by the recorder (head + 1), not by the
				// database, so a deleted row leaves a visible gap.
				`CREATE TABLE audit_events (
					seq             INTEGER PRIMARY KEY,
					time_ms         INTEGER NOT NULL,
					type            TEXT    NOT NULL,
					request_id      TEXT    NOT NULL DEFAULT '',
					platform        TEXT    NOT NULL DEFAULT '',
					channel         TEXT    NOT NULL DEFAULT '',
					thread          TEXT    NOT NULL DEFAULT '',
					subject         TEXT    NOT NULL DEFAULT '',
					action          TEXT    NOT NULL DEFAULT '',
					params          TEXT    NOT NULL DEFAULT '',
					decision        TEXT    NOT NULL DEFAULT '',
					rule            TEXT    NOT NULL DEFAULT '',
					confirmation_id TEXT    NOT NULL DEFAULT '',
					outcome         TEXT    NOT NULL DEFAULT '',
					error           TEXT    NOT NULL DEFAULT '',
					duration_ms     INTEGER NOT NULL DEFAULT 0,
					router          TEXT    NOT NULL DEFAULT '',
					confidence      REAL    NOT NULL DEFAULT 0,
					text            TEXT    NOT NULL DEFAULT '',
					details         TEXT    NOT NULL DEFAULT '',
					prev_hash       TEXT    NOT NULL,
					hash            TEXT    NOT NULL
				)`,
				`CREATE INDEX audit_events_request ON audit_events (request_id)`,
				`CREATE INDEX audit_events_subject ON audit_events (subject, seq)`,
				`CREATE INDEX audit_events_channel ON audit_events (channel, seq)`,
				`CREATE INDEX audit_events_type ON audit_events (type, seq)`,
				`CREATE INDEX audit_events_confirmation ON audit_events (confirmation_id)`,
				// One row: the last appended seq and hash. Appends read and
				// advance it in the same transaction; Verify compares it with
				// the last row to notice a truncated tail.
				`CREATE TABLE audit_head (
					id   INTEGER PRIMARY KEY CHECK (id = 1),
					seq  INTEGER NOT NULL,
					hash TEXT    NOT NULL
				)`,
				// seq 0 with no hash: the chain is empty.
				`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')`,
			},
		},
		{
			version: 2,
			name:    "pending confirmations",
			stmts: []string{
				`CREATE TABLE confirmations (
					id                TEXT    PRIMARY KEY,
					code              TEXT    NOT NULL,
					request_id        TEXT    NOT NULL DEFAULT '',
					action            TEXT    NOT NULL,
					params            TEXT    NOT NULL,
					requester         TEXT    NOT NULL,
					channel           TEXT    NOT NULL,
					thread            TEXT    NOT NULL DEFAULT '',
					approvers         TEXT    NOT NULL DEFAULT '[]',
					distinct_approver INTEGER NOT NULL DEFAULT 0,
					rule              TEXT    NOT NULL DEFAULT '',
					plan_summary      TEXT    NOT NULL DEFAULT '',
					plan_state        TEXT    NOT NULL DEFAULT '',
					created_at        INTEGER NOT NULL,
					expires_at        INTEGER NOT NULL,
					state             TEXT    NOT NULL CHECK (state IN
						('pending', 'executing', 'done', 'failed', 'cancelled', 'expired', 'interrupted')),
					decided_by        TEXT    NOT NULL DEFAULT '',
					decided_at        INTEGER NOT NULL DEFAULT 0,
					finished_at       INTEGER NOT NULL DEFAULT 0,
					outcome           TEXT    NOT NULL DEFAULT ''
				)`,
				// A typed "confirm CODE" names one pending confirmation of
				// its channel: codes are unique among pending ones there.
				`CREATE UNIQUE INDEX confirmations_pending_code ON confirmations (channel, code) WHERE state = 'pending'`,
				`CREATE INDEX confirmations_state ON confirmations (state, expires_at)`,
			},
		},
		{
			version: 3,
			name:    "confirmation owner and heartbeat",
			stmts: []string{
				// owner is the replica that claimed an executing
				// confirmation, owner_run that replica's process (a new one
				// at every start), heartbeat_at when the owner last said it
				// was still running it (Unix ms; 0 = never).
				`ALTER TABLE confirmations ADD COLUMN owner TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE confirmations ADD COLUMN owner_run TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE confirmations ADD COLUMN heartbeat_at INTEGER NOT NULL DEFAULT 0`,
			},
		},
		{
			version: 4,
			name:    "requester groups on confirmations",
			stmts: []string{
				// The requester's platform groups (Slack user groups,
				// Discord roles) at request time, JSON: the policy is
				// re-checked for the requester just before running.
				`ALTER TABLE confirmations ADD COLUMN requester_groups TEXT NOT NULL DEFAULT '[]'`,
			},
		},
		{
			version: 5,
			name:    "seen chat events",
			stmts: []string{
				// Platform event ids ("slack:Ev123") that some replica has
				// taken, so a redelivery to another replica after a failover
				// is dropped (internal/dedupe). seen_at is Unix ms; rows
				// older than a day are purged.
				`CREATE TABLE seen_events (
					key     TEXT    PRIMARY KEY,
					seen_at INTEGER NOT NULL
				)`,
				`CREATE INDEX seen_events_seen_at ON seen_events (seen_at)`,
			},
		},
		{
			version: 6,
			name:    "chat adapter state",
			stmts: []string{
				// Small values chat adapters keep across restarts and
				// replicas (internal/chatstate): what a compact Discord
				// button custom_id stands for, the Slack threads Parley
				// answered in. created_at is Unix ms; old rows are purged.
				`CREATE TABLE chat_state (
					key        TEXT    PRIMARY KEY,
					value      TEXT    NOT NULL,
					created_at INTEGER NOT NULL
				)`,
				`CREATE INDEX chat_state_created_at ON chat_state (created_at)`,
			},
		},
		{
			version: 7,
			name:    "llm spend ledger",
			stmts: []string{
				// One row per language-model call that was paid for
				// (internal/llmcost): daily budgets per channel and per
				// user sum these rows, so they hold across restarts and
				// replicas. time_ms is Unix ms; estimated is 1 when the
				// provider reported no usage and the tokens were estimated
				// from the request and response sizes.
				`CREATE TABLE llm_spend (
					id                INTEGER PRIMARY KEY AUTOINCREMENT,
					time_ms           INTEGER NOT NULL,
					request_id        TEXT    NOT NULL DEFAULT '',
					subject           TEXT    NOT NULL DEFAULT '',
					channel           TEXT    NOT NULL DEFAULT '',
					action            TEXT    NOT NULL DEFAULT '',
					purpose           TEXT    NOT NULL DEFAULT '',
					provider          TEXT    NOT NULL DEFAULT '',
					model             TEXT    NOT NULL DEFAULT '',
					variant           TEXT    NOT NULL DEFAULT '',
					prompt_tokens     INTEGER NOT NULL DEFAULT 0,
					completion_tokens INTEGER NOT NULL DEFAULT 0,
					cost_usd          REAL    NOT NULL DEFAULT 0,
					estimated         INTEGER NOT NULL DEFAULT 0
				)`,
				`CREATE INDEX llm_spend_channel ON llm_spend (channel, time_ms)`,
				`CREATE INDEX llm_spend_subject ON llm_spend (subject, time_ms)`,
				`CREATE INDEX llm_spend_time ON llm_spend (time_ms)`,
			},
		},
		{
			version: 8,
			name:    "confirmation prompt shown",
			stmts: []string{
				// shown_at is when the confirmation's prompt was delivered
				// to the chat (Unix ms; 0 = not known to be shown). Only a
				// shown confirmation can be claimed: nobody approves a
				// change they were never asked about. Confirmations pending
				// at the upgrade are left unshown: the previous version
				// could not tell, and the next start cancels them with a
				// message rather than let one run unseen.
				`ALTER TABLE confirmations ADD COLUMN shown_at INTEGER NOT NULL DEFAULT 0`,
			},
		},
		{
			version: 9,
			name:    "incident inbox, outbox and digests",
			stmts:   incidentSteps("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"),
		},
		{
			version: 10,
			name:    "audit indexes the write path can afford",
			stmts:   auditIndexSteps,
		},
	}
}

// pgMigrations are the PostgreSQL steps, one for one with the SQLite ones.
func pgMigrations() []migration {
	return []migration{
		{
			version: 1,
			name:    "audit events and hash-chain head",
			stmts: []string{
				`CREATE TABLE audit_events (
					seq             BIGINT  PRIMARY KEY,
					time_ms         BIGINT  NOT NULL,
					type            TEXT    NOT NULL,
					request_id      TEXT    NOT NULL DEFAULT '',
					platform        TEXT    NOT NULL DEFAULT '',
					channel         TEXT    NOT NULL DEFAULT '',
					thread          TEXT    NOT NULL DEFAULT '',
					subject         TEXT    NOT NULL DEFAULT '',
					action          TEXT    NOT NULL DEFAULT '',
					params          TEXT    NOT NULL DEFAULT '',
					decision        TEXT    NOT NULL DEFAULT '',
					rule            TEXT    NOT NULL DEFAULT '',
					confirmation_id TEXT    NOT NULL DEFAULT '',
					outcome         TEXT    NOT NULL DEFAULT '',
					error           TEXT    NOT NULL DEFAULT '',
					duration_ms     BIGINT  NOT NULL DEFAULT 0,
					router          TEXT    NOT NULL DEFAULT '',
					confidence      DOUBLE PRECISION NOT NULL DEFAULT 0,
					text            TEXT    NOT NULL DEFAULT '',
					details         TEXT    NOT NULL DEFAULT '',
					prev_hash       TEXT    NOT NULL,
					hash            TEXT    NOT NULL
				)`,
				`CREATE INDEX audit_events_request ON audit_events (request_id)`,
				`CREATE INDEX audit_events_subject ON audit_events (subject, seq)`,
				`CREATE INDEX audit_events_channel ON audit_events (channel, seq)`,
				`CREATE INDEX audit_events_type ON audit_events (type, seq)`,
				`CREATE INDEX audit_events_confirmation ON audit_events (confirmation_id)`,
				// Appends lock this row (SELECT ... FOR UPDATE) before
				// reading it, so replicas append one at a time.
				`CREATE TABLE audit_head (
					id   INTEGER PRIMARY KEY CHECK (id = 1),
					seq  BIGINT  NOT NULL,
					hash TEXT    NOT NULL
				)`,
				`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')`,
			},
		},
		{
			version: 2,
			name:    "pending confirmations",
			stmts: []string{
				`CREATE TABLE confirmations (
					id                TEXT    PRIMARY KEY,
					code              TEXT    NOT NULL,
					request_id        TEXT    NOT NULL DEFAULT '',
					action            TEXT    NOT NULL,
					params            TEXT    NOT NULL,
					requester         TEXT    NOT NULL,
					channel           TEXT    NOT NULL,
					thread            TEXT    NOT NULL DEFAULT '',
					approvers         TEXT    NOT NULL DEFAULT '[]',
					distinct_approver INTEGER NOT NULL DEFAULT 0,
					rule              TEXT    NOT NULL DEFAULT '',
					plan_summary      TEXT    NOT NULL DEFAULT '',
					plan_state        TEXT    NOT NULL DEFAULT '',
					created_at        BIGINT  NOT NULL,
					expires_at        BIGINT  NOT NULL,
					state             TEXT    NOT NULL CHECK (state IN
						('pending', 'executing', 'done', 'failed', 'cancelled', 'expired', 'interrupted')),
					decided_by        TEXT    NOT NULL DEFAULT '',
					decided_at        BIGINT  NOT NULL DEFAULT 0,
					finished_at       BIGINT  NOT NULL DEFAULT 0,
					outcome           TEXT    NOT NULL DEFAULT ''
				)`,
				`CREATE UNIQUE INDEX confirmations_pending_code ON confirmations (channel, code) WHERE state = 'pending'`,
				`CREATE INDEX confirmations_state ON confirmations (state, expires_at)`,
			},
		},
		{
			version: 3,
			name:    "confirmation owner and heartbeat",
			stmts: []string{
				`ALTER TABLE confirmations ADD COLUMN owner TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE confirmations ADD COLUMN owner_run TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE confirmations ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0`,
			},
		},
		{
			version: 4,
			name:    "requester groups on confirmations",
			stmts: []string{
				`ALTER TABLE confirmations ADD COLUMN requester_groups TEXT NOT NULL DEFAULT '[]'`,
			},
		},
		{
			version: 5,
			name:    "seen chat events",
			stmts: []string{
				`CREATE TABLE seen_events (
					key     TEXT    PRIMARY KEY,
					seen_at BIGINT  NOT NULL
				)`,
				`CREATE INDEX seen_events_seen_at ON seen_events (seen_at)`,
			},
		},
		{
			version: 6,
			name:    "chat adapter state",
			stmts: []string{
				`CREATE TABLE chat_state (
					key        TEXT    PRIMARY KEY,
					value      TEXT    NOT NULL,
					created_at BIGINT  NOT NULL
				)`,
				`CREATE INDEX chat_state_created_at ON chat_state (created_at)`,
			},
		},
		{
			version: 7,
			name:    "llm spend ledger",
			stmts: []string{
				`CREATE TABLE llm_spend (
					id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
					time_ms           BIGINT  NOT NULL,
					request_id        TEXT    NOT NULL DEFAULT '',
					subject           TEXT    NOT NULL DEFAULT '',
					channel           TEXT    NOT NULL DEFAULT '',
					action            TEXT    NOT NULL DEFAULT '',
					purpose           TEXT    NOT NULL DEFAULT '',
					provider          TEXT    NOT NULL DEFAULT '',
					model             TEXT    NOT NULL DEFAULT '',
					variant           TEXT    NOT NULL DEFAULT '',
					prompt_tokens     BIGINT  NOT NULL DEFAULT 0,
					completion_tokens BIGINT  NOT NULL DEFAULT 0,
					cost_usd          DOUBLE PRECISION NOT NULL DEFAULT 0,
					estimated         INTEGER NOT NULL DEFAULT 0
				)`,
				`CREATE INDEX llm_spend_channel ON llm_spend (channel, time_ms)`,
				`CREATE INDEX llm_spend_subject ON llm_spend (subject, time_ms)`,
				`CREATE INDEX llm_spend_time ON llm_spend (time_ms)`,
			},
		},
		{
			version: 8,
			name:    "confirmation prompt shown",
			stmts: []string{
				`ALTER TABLE confirmations ADD COLUMN shown_at BIGINT NOT NULL DEFAULT 0`,
			},
		},
		{
			version: 9,
			name:    "incident inbox, outbox and digests",
			stmts:   incidentSteps("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIGINT"),
		},
		{
			version: 10,
			name:    "audit indexes the write path can afford",
			stmts:   auditIndexSteps,
		},
	}
}

// auditIndexSteps is step 10, the same in both dialects. Every audit
// event paid for five index entries; two of them bought little:
//   - (type, seq): each event type's entries end on a different page, so
//     one request's five or six events dirtied five or six more pages per
//     commit (a third of what a commit writes). The index now holds only
//     the types that are not written for every request (confirmations,
//     incidents, interruptions, integrity overrides, ...): those are the
//     ones worth finding without reading the log, and finding them does
//     not read pages of other events (a damaged page among them does not
//     hide them). The per-request types are read by seq, where they are
//     dense anyway;
//   - confirmation_id: all but a few events have none, so every event
//     added an entry under the empty id. The index now holds only the
//     events that have one.
//
// A query uses a partial index when its WHERE clause says the index's
// condition: queries by confirmation say that the id is not empty, and
// queries for the rarer types only say AuditTypeIndexed.
var auditIndexSteps = []string{
	`DROP INDEX IF EXISTS audit_events_type`,
	`CREATE INDEX audit_events_type ON audit_events (type, seq) WHERE ` + AuditTypeIndexed,
	`DROP INDEX IF EXISTS audit_events_confirmation`,
	`CREATE INDEX audit_events_confirmation ON audit_events (confirmation_id) WHERE confirmation_id <> ''`,
}

// AuditFrequentTypes returns the audit event types written for every
// request, left out of the (type, seq) index (migration 10).
func AuditFrequentTypes() []string {
	return []string{"message.received", "intent.routed", "policy.decided",
		"action.started", "action.succeeded", "action.failed"}
}

// AuditTypeIndexed is the condition of the partial (type, seq) index, the
// exact text a query for other types adds so that the database uses it.
const AuditTypeIndexed = `type NOT IN ('message.received', 'intent.routed', 'policy.decided', 'action.started', 'action.succeeded', 'action.failed')`

// incidentSteps is step 9, the same in both dialects but for the types of
// an auto-numbered key (serial) and of a 64-bit integer (big).
//
// The incidents table (one row per Alertmanager group key: the group's
// state and the message that shows it) was created by the incident
// manager itself before this step, so it is created here only where it is
// missing, then extended. The inbox holds accepted webhook notifications
// until the replica that posts has merged them; the outbox holds the
// groups whose message is not yet up to date, with when the oldest
// undelivered change arrived (expiry counts from it); digests are the
// alert-storm messages that list groups instead of one message each.
// Times are Unix ms.
func incidentSteps(serial, big string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS incidents (
			group_key  TEXT PRIMARY KEY,
			receiver   TEXT NOT NULL,
			channel    TEXT NOT NULL,
			message_id TEXT NOT NULL,
			thread     TEXT NOT NULL,
			first_seen BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			state      TEXT NOT NULL
		)`,
		// shown: what the message last showed (alert statuses), JSON; ''
		// on rows written before this step, whose state was what was
		// shown. digest: the digest listing the group ('' = its own
		// message). post_key, post_at: a first post begun whose message
		// id is not recorded yet (a crash in between is reconciled).
		`ALTER TABLE incidents ADD COLUMN shown TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE incidents ADD COLUMN digest TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE incidents ADD COLUMN post_key TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE incidents ADD COLUMN post_at ` + big + ` NOT NULL DEFAULT 0`,
		`CREATE TABLE incident_inbox (
			id          ` + serial + `,
			group_key   TEXT NOT NULL,
			received_at ` + big + ` NOT NULL,
			payload     TEXT NOT NULL
		)`,
		`CREATE TABLE incident_outbox (
			group_key  TEXT PRIMARY KEY,
			channel    TEXT NOT NULL,
			due_at     ` + big + ` NOT NULL,
			attempts   INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '',
			updated_at ` + big + ` NOT NULL
		)`,
		`CREATE INDEX incident_outbox_due ON incident_outbox (due_at)`,
		`CREATE TABLE incident_digests (
			digest_key TEXT PRIMARY KEY,
			channel    TEXT NOT NULL,
			message_id TEXT NOT NULL DEFAULT '',
			post_key   TEXT NOT NULL DEFAULT '',
			post_at    ` + big + ` NOT NULL DEFAULT 0,
			created_at ` + big + ` NOT NULL,
			updated_at ` + big + ` NOT NULL,
			listing    TEXT NOT NULL
		)`,
		`CREATE INDEX incident_digests_channel ON incident_digests (channel, created_at)`,
	}
}

// SchemaVersion returns the highest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// migrate applies the missing migrations in one write transaction, so two
// processes opening a new database at once cannot both apply a step (on
// PostgreSQL the transaction first takes an advisory lock, as DDL is
// transactional there), and a failing step leaves the schema as it was.
func (db *DB) migrate(ctx context.Context) error {
	steps := migrations(db.dialect)
	latest := steps[len(steps)-1].version
	return db.WriteTx(ctx, func(tx *Tx) error {
		if err := tx.Lock(ctx, "migrate"); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL
		)`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		var current sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: read version: %w", err)
		}
		if int(current.Int64) > latest {
			return fmt.Errorf("migrate: %w: database at version %d, program knows up to %d",
				ErrSchemaTooNew, current.Int64, latest)
		}
		for _, m := range steps {
			if m.version <= int(current.Int64) {
				continue
			}
			for _, stmt := range m.stmts {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("migrate to version %d: record: %w", m.version, err)
			}
		}
		return nil
	})
}
