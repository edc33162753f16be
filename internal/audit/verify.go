package audit

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-chatops/parley/internal/store"
)

// Problem names what Verify found wrong.
type Problem string

const (
	// ProblemMissing: a gap in Seq; rows were deleted.
	ProblemMissing Problem = "missing-events"
	// ProblemBadSeq: a row with a Seq the recorder never assigns (<= 0).
	ProblemBadSeq Problem = "bad-seq"
	// ProblemBrokenLink: prev_hash differs from the previous row's hash; a
	// row was inserted or reordered here, or the previous row rewritten
	// with a recomputed hash.
	ProblemBrokenLink Problem = "broken-link"
	// ProblemContent: the row's fields no longer match its hash.
	ProblemContent Problem = "content-altered"
	// ProblemHash: the stored hash was changed; the content still matches
	// what the next row links to.
	ProblemHash Problem = "hash-altered"
	// ProblemTruncated: the head row or an anchor names events past the
	// last row; the tail was deleted.
	ProblemTruncated Problem = "truncated"
	// ProblemHead: the head row disagrees with the last row (rows appended
	// or the head edited outside Parley).
	ProblemHead Problem = "head-mismatch"
	// ProblemAnchor: a published anchor's hash differs from the verified
	// chain; the log was rewritten up to that event.
	ProblemAnchor Problem = "anchor-mismatch"
)

// Anchor is a chain head published outside the database (printed by
// Verify, posted to a channel, pushed to Loki). Verify checks that the
// event at Seq still has Hash, which catches a rewrite of the whole chain
// or a cut-off tail that the chain alone cannot show.
type Anchor struct {
	Seq  int64
	Hash string
}

// ParseAnchor reads an anchor written as "SEQ:HASH" (the form Verify's
// report and AnchorString use), for a --anchor flag.
func ParseAnchor(s string) (Anchor, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseInt(strings.TrimPrefix(seqText, "#"), 10, 64)
	if !ok || err != nil || seq < 1 || len(hash) != len(Genesis) {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH with a 64-digit hex hash", s)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return Anchor{}, fmt.Errorf("anchor %q: hash is not hex", s)
	}
	return Anchor{Seq: seq, Hash: strings.ToLower(hash)}, nil
}

// String writes the anchor as "SEQ:HASH".
func (a Anchor) String() string { return strconv.FormatInt(a.Seq, 10) + ":" + a.Hash }

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	OK bool
	// Count is the number of events verified: all of them when OK, those
	// before BadSeq otherwise.
	Count int64
	// HeadSeq and HeadHash are the last verified event (0 and Genesis for
	// an empty log). Publish them to anchor the log.
	HeadSeq  int64
	HeadHash string
	// BadSeq is the first event that failed; Problem and Detail say why.
	BadSeq  int64
	Problem Problem
	Detail  string
}

// String is a one-line report for the CLI and chat.
func (v VerifyResult) String() string {
	if v.OK {
		// The head is printed in anchor form, ready to be published.
		return fmt.Sprintf("audit log OK: %d events, head %s", v.Count, Anchor{Seq: v.HeadSeq, Hash: v.HeadHash})
	}
	return fmt.Sprintf("audit log FAILED at #%d (%s): %s; %d events verified before it",
		v.BadSeq, v.Problem, v.Detail, v.Count)
}

// Err returns nil when the log verified, and an error wrapping ErrTampered
// otherwise.
func (v VerifyResult) Err() error {
	if v.OK {
		return nil
	}
	return fmt.Errorf("%w at #%d (%s): %s", ErrTampered, v.BadSeq, v.Problem, v.Detail)
}

// Verify recomputes the chain from the first event and reports the first
// event that was altered, deleted, inserted or reordered, then checks the
// head row and any anchors. A broken chain is a result, not an error: the
// error is for failing to read the database. Verify reads one snapshot, so
// it can run beside a recording server.
func (r *Recorder) Verify(ctx context.Context, anchors ...Anchor) (VerifyResult, error) {
	if err := r.caughtUp(); err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit log: %w", err)
	}
	var res VerifyResult
	err := r.db.ReadTx(ctx, func(tx *store.Tx) error {
		var err error
		res, err = verifyTx(ctx, tx, 1, anchors)
		return err
	})
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit log: %w", err)
	}
	return res, nil
}

// VerifyTail is the quick check Parley runs at start-up: it verifies the
// last n events (n <= 0: all of them) as Verify does, including the link
// from the first of them to the event before, and checks the head row
// against the last one. What it reports is what Verify would report for
// those events; a problem further back is left to Verify, which stays the
// full check. Count in the result is the number of tail events verified.
func (r *Recorder) VerifyTail(ctx context.Context, n int) (VerifyResult, error) {
	if err := r.caughtUp(); err != nil {
		return VerifyResult{}, fmt.Errorf("verify the audit log's last %d events: %w", n, err)
	}
	var res VerifyResult
	err := r.db.ReadTx(ctx, func(tx *store.Tx) error {
		from := int64(1)
		if n > 0 {
			var last sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM audit_events`).Scan(&last); err != nil {
				return err
			}
			from = max(1, last.Int64-int64(n)+1)
		}
		var err error
		res, err = verifyTx(ctx, tx, from, nil)
		return err
	})
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify the audit log's last %d events: %w", n, err)
	}
	return res, nil
}

// verifyTx verifies the events from seq from on (1: the whole chain). The
// link of event from is checked against the stored hash of event from-1.
func verifyTx(ctx context.Context, tx *store.Tx, from int64, anchors []Anchor) (VerifyResult, error) {
	res := VerifyResult{HeadHash: Genesis}
	fail := func(seq int64, p Problem, format string, args ...any) (VerifyResult, error) {
		res.BadSeq, res.Problem, res.Detail = seq, p, fmt.Sprintf(format, args...)
		return res, nil
	}

	anchors = slices.Clone(anchors)
	slices.SortFunc(anchors, func(a, b Anchor) int { return cmp.Compare(a.Seq, b.Seq) })
	anchorHash := make(map[int64]string, len(anchors)) // seq -> verified hash
	for _, a := range anchors {
		anchorHash[a.Seq] = ""
	}

	if from > 1 {
		// The tail starts after a stored event; link to its stored hash.
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events WHERE seq = ?`, from-1).
			Scan(&res.HeadSeq, &res.HeadHash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fail(from-1, ProblemMissing, "event #%d is missing (deleted)", from-1)
		case err != nil:
			return res, err
		}
	}
	// The full check reads every row, also those with a seq the recorder
	// never assigns (<= 0); the tail reads from its first event.
	q, args := `SELECT `+columns+` FROM audit_events ORDER BY seq ASC`, []any(nil)
	if from > 1 {
		q, args = `SELECT `+columns+` FROM audit_events WHERE seq >= ? ORDER BY seq ASC`, []any{from}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return res, err
	}
	defer rows.Close()

	var suspect *row // a row whose hash mismatched; the next row tells how
	var suspectHash string
	expect := from
	for rows.Next() {
		rw, err := scanRow(rows)
		if err != nil {
			return res, err
		}
		if suspect != nil {
			if rw.seq == suspect.seq+1 && rw.prevHash == suspectHash {
				return fail(suspect.seq, ProblemHash,
					"stored hash %s was changed; the content matches the link from #%d", short(suspect.hash), rw.seq)
			}
			return fail(suspect.seq, ProblemContent, "the event's fields do not match its hash")
		}
		if rw.seq != expect {
			if rw.seq < expect {
				return fail(rw.seq, ProblemBadSeq, "seq %d is not a recorder-assigned number", rw.seq)
			}
			if rw.seq == expect+1 {
				return fail(expect, ProblemMissing, "event #%d is missing (deleted)", expect)
			}
			return fail(expect, ProblemMissing, "events #%d to #%d are missing (deleted)", expect, rw.seq-1)
		}
		if rw.prevHash != res.HeadHash {
			return fail(rw.seq, ProblemBrokenLink,
				"prev_hash %s does not match the hash of #%d: an event was inserted or reordered here, or #%d was rewritten",
				short(rw.prevHash), rw.seq-1, rw.seq-1)
		}
		if h := rw.computeHash(); h != rw.hash {
			suspect, suspectHash = &rw, h
			continue
		}
		if _, ok := anchorHash[rw.seq]; ok {
			anchorHash[rw.seq] = rw.hash
		}
		res.Count++
		res.HeadSeq, res.HeadHash = rw.seq, rw.hash
		expect++
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if suspect != nil {
		return fail(suspect.seq, ProblemContent, "the last event's fields or stored hash do not match")
	}

	for _, a := range anchors {
		if a.Seq > res.HeadSeq {
			return fail(res.HeadSeq+1, ProblemTruncated,
				"anchor #%d is past the last event #%d: the tail was deleted", a.Seq, res.HeadSeq)
		}
		if a.Seq <= 0 {
			continue
		}
		if got := anchorHash[a.Seq]; !strings.EqualFold(got, a.Hash) {
			return fail(a.Seq, ProblemAnchor,
				"hash %s differs from the anchored %s: the log was rewritten up to here", short(got), short(a.Hash))
		}
	}

	var headSeq int64
	var headHash string
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fail(res.HeadSeq+1, ProblemHead, "the head row is missing")
	case err != nil:
		return res, err
	case headSeq > res.HeadSeq:
		return fail(res.HeadSeq+1, ProblemTruncated,
			"the head records #%d but the last event is #%d: the tail was deleted", headSeq, res.HeadSeq)
	case headSeq < res.HeadSeq:
		return fail(headSeq+1, ProblemHead,
			"the head records #%d but events run to #%d: events were added outside Parley", headSeq, res.HeadSeq)
	case headSeq > 0 && headHash != res.HeadHash:
		return fail(headSeq, ProblemHead, "the head hash %s differs from the last event's %s",
			short(headHash), short(res.HeadHash))
	}
	res.OK = true
	return res, nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}
