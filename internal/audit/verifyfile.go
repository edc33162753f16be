package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxExportLine bounds one line of a JSONL export. An event is bounded
// when recorded (texts, params and details are cut), so a real line is far
// shorter; a longer one is not an export of this log.
const maxExportLine = 1 << 20

// ExportFile is one JSONL export to verify: its name for messages and its
// content.
type ExportFile struct {
	Name string
	R    io.Reader
}

// FileResult is the outcome of VerifyExport.
type FileResult struct {
	OK bool
	// Count is the number of events verified: all of them when OK, those
	// before the bad line otherwise.
	Count int64
	// FirstSeq and FirstPrev are the first event and the hash it links
	// to: Genesis when the export starts at the beginning of the log, else
	// the hash of the event before it (in the previous archive, or in the
	// database: an anchor).
	FirstSeq  int64
	FirstPrev string
	// HeadSeq and HeadHash are the last verified event.
	HeadSeq  int64
	HeadHash string
	// Where the first problem is: file, line (1-based) and event.
	BadFile string
	BadLine int
	BadSeq  int64
	Problem Problem
	Detail  string
}

// ProblemUnreadable: a line is not an exported audit event.
const ProblemUnreadable Problem = "unreadable-line"

// String is a one-line report for the CLI.
func (v FileResult) String() string {
	if v.OK {
		if v.Count == 0 {
			return "export OK: no events"
		}
		s := fmt.Sprintf("export OK: %d events, #%d to #%d, head %s", v.Count, v.FirstSeq, v.HeadSeq, Anchor{Seq: v.HeadSeq, Hash: v.HeadHash})
		if v.FirstSeq > 1 {
			s += fmt.Sprintf("; it continues #%d, whose hash must be %s", v.FirstSeq-1, v.FirstPrev)
		}
		return s
	}
	where := fmt.Sprintf("%s line %d", v.BadFile, v.BadLine)
	if v.BadLine == 0 {
		where = "the end of " + v.BadFile
	}
	if v.BadSeq > 0 {
		where += fmt.Sprintf(" (#%d)", v.BadSeq)
	}
	return fmt.Sprintf("export FAILED at %s, %s: %s; %d events verified before it", where, v.Problem, v.Detail, v.Count)
}

// Err returns nil when the export verified, and an error wrapping
// ErrTampered otherwise.
func (v FileResult) Err() error {
	if v.OK {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrTampered, v)
}

// VerifyExport checks JSONL exports (ExportJSONL, `parley audit export`)
// without the database: every line is an event whose hash recomputes from
// its fields and the previous line's hash, the Seqs run on without a gap,
// and consecutive files continue each other (archives given in order). An
// export that starts at #1 must link to Genesis; one that starts later
// links to an event outside it, which an anchor (published head, or the
// previous archive's head) pins down. It reports the first line that was
// edited, deleted, inserted or reordered. The error is for failing to
// read a file; a broken chain is a result.
func VerifyExport(files []ExportFile, anchors ...Anchor) (FileResult, error) {
	res := FileResult{}
	fail := func(file string, line int, seq int64, p Problem, format string, args ...any) (FileResult, error) {
		res.BadFile, res.BadLine, res.BadSeq, res.Problem, res.Detail = file, line, seq, p, fmt.Sprintf(format, args...)
		return res, nil
	}
	anchors = slices.Clone(anchors)
	slices.SortFunc(anchors, func(a, b Anchor) int { return cmp.Compare(a.Seq, b.Seq) })
	want := map[int64]string{}
	for _, a := range anchors {
		want[a.Seq] = strings.ToLower(a.Hash)
	}
	checkAnchor := func(seq int64, hash string) bool {
		h, ok := want[seq]
		return !ok || h == hash
	}

	// suspect is a line whose hash did not recompute; the next line tells
	// whether its content or only its stored hash was changed.
	type pending struct {
		file     string
		line     int
		seq      int64
		hash     string // as stored
		computed string
	}
	var suspect *pending
	for _, f := range files {
		sc := bufio.NewScanner(f.R)
		sc.Buffer(make([]byte, 64*1024), maxExportLine)
		line := 0
		for sc.Scan() {
			line++
			raw := bytes.TrimSpace(sc.Bytes())
			if len(raw) == 0 {
				return fail(f.Name, line, 0, ProblemUnreadable, "empty line")
			}
			var e Event
			if err := json.Unmarshal(raw, &e); err != nil {
				return fail(f.Name, line, 0, ProblemUnreadable, "not a JSON audit event: %v", err)
			}
			if e.Seq <= 0 || !e.Type.Valid() || len(e.Hash) != len(Genesis) || len(e.PrevHash) != len(Genesis) {
				return fail(f.Name, line, e.Seq, ProblemUnreadable, "not an exported audit event (seq, type, prev_hash and hash are required)")
			}
			rw := toRow(e)
			if suspect != nil {
				if rw.seq == suspect.seq+1 && rw.prevHash == suspect.computed {
					return fail(suspect.file, suspect.line, suspect.seq, ProblemHash,
						"stored hash %s was changed; the content matches the link from #%d", short(suspect.hash), rw.seq)
				}
				return fail(suspect.file, suspect.line, suspect.seq, ProblemContent, "the event's fields do not match its hash")
			}
			switch {
			case res.Count == 0:
				res.FirstSeq, res.FirstPrev = rw.seq, rw.prevHash
				if rw.seq == 1 && rw.prevHash != Genesis {
					return fail(f.Name, line, rw.seq, ProblemBrokenLink, "the first event must link to the genesis hash, not %s", short(rw.prevHash))
				}
				if a, ok := want[rw.seq-1]; ok && a != rw.prevHash {
					return fail(f.Name, line, rw.seq, ProblemAnchor,
						"prev_hash %s differs from the anchored hash %s of #%d: the export does not continue the log", short(rw.prevHash), short(a), rw.seq-1)
				}
			case rw.seq <= res.HeadSeq:
				return fail(f.Name, line, rw.seq, ProblemBadSeq, "#%d comes after #%d: an event was repeated or reordered here", rw.seq, res.HeadSeq)
			case rw.seq == res.HeadSeq+2:
				return fail(f.Name, line, rw.seq, ProblemMissing, "event #%d is missing before it (deleted, or moved further down)", res.HeadSeq+1)
			case rw.seq > res.HeadSeq+2:
				return fail(f.Name, line, rw.seq, ProblemMissing, "events #%d to #%d are missing before it (deleted, or moved further down)", res.HeadSeq+1, rw.seq-1)
			case rw.prevHash != res.HeadHash:
				return fail(f.Name, line, rw.seq, ProblemBrokenLink,
					"prev_hash %s does not match the hash of #%d: an event was inserted or reordered here, or #%d was rewritten",
					short(rw.prevHash), res.HeadSeq, res.HeadSeq)
			}
			if h := rw.computeHash(); h != rw.hash {
				suspect = &pending{file: f.Name, line: line, seq: rw.seq, hash: rw.hash, computed: h}
				continue
			}
			if !checkAnchor(rw.seq, rw.hash) {
				return fail(f.Name, line, rw.seq, ProblemAnchor,
					"hash %s differs from the anchored %s: the log was rewritten up to here", short(rw.hash), short(want[rw.seq]))
			}
			res.Count++
			res.HeadSeq, res.HeadHash = rw.seq, rw.hash
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return fail(f.Name, line+1, 0, ProblemUnreadable, "line longer than %d bytes", maxExportLine)
			}
			return FileResult{}, fmt.Errorf("read %s: %w", f.Name, err)
		}
	}
	if suspect != nil {
		return fail(suspect.file, suspect.line, suspect.seq, ProblemContent, "the last event's fields or stored hash do not match")
	}
	for _, a := range anchors {
		if res.Count > 0 && a.Seq > res.HeadSeq {
			return fail(files[len(files)-1].Name, 0, res.HeadSeq+1, ProblemTruncated,
				"anchor #%d is past the last event #%d: the export ends early", a.Seq, res.HeadSeq)
		}
	}
	res.OK = true
	return res, nil
}
