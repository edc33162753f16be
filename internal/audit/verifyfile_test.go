package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// exportOf records a varied log (request trails with params, details,
// HTML-ish and non-ASCII text, an input.rejected with odd params) and
// returns its JSONL export, one string a line.
func exportOf(t *testing.T, f *fixture, f2 Filter) []string {
	t.Helper()
	events, err := f.rec.List(context.Background(), f2)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ExportJSONL(&b, events); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

func seedVaried(t *testing.T, f *fixture) {
	t.Helper()
	for range 2 {
		for _, e := range requestEvents() {
			f.record(t, e)
		}
	}
	f.record(t, Event{Type: InputRejected, Subject: "console:eve", Text: `<script>alert("x")</script> & ünïcode ✓ "quotes"`,
		Params: action.Params{"replicas": "5000", "ratio": 0.25, "flag": true, "nothing": nil, "html": "<b>&</b>"}})
	f.record(t, Event{Type: ActionFailed, Action: action.KubernetesRollback, Error: "rollback prod/web: not found\nsecond line", Duration: 15 * time.Millisecond,
		Details: map[string]string{"plan": "web revision 5 -> 4", "z": "last", "a": "first"}})
}

func verifyLines(t *testing.T, lines []string, anchors ...Anchor) FileResult {
	t.Helper()
	res, err := VerifyExport([]ExportFile{{Name: "audit.jsonl", R: strings.NewReader(strings.Join(lines, "\n") + "\n")}}, anchors...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// An export verifies on its own, without the database, and names the
// first bad line after any edit.
func TestVerifyExport(t *testing.T) { forBackends(t, testVerifyExport) }

func testVerifyExport(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	seedVaried(t, f)
	lines := exportOf(t, f, Filter{})
	dbRes, err := f.rec.Verify(context.Background())
	if err != nil || !dbRes.OK {
		t.Fatalf("database verify: %v %v", dbRes, err)
	}
	res := verifyLines(t, lines)
	if !res.OK || res.Count != int64(len(lines)) || res.HeadSeq != dbRes.HeadSeq || res.HeadHash != dbRes.HeadHash || res.FirstPrev != Genesis {
		t.Fatalf("unedited export: %s", res)
	}
	if !strings.HasPrefix(res.String(), "export OK: 14 events, #1 to #14, head 14:") {
		t.Errorf("report %q", res.String())
	}

	edit := func(line int, from, to string) []string {
		out := append([]string(nil), lines...)
		if !strings.Contains(out[line-1], from) {
			t.Fatalf("line %d has no %q: %s", line, from, out[line-1])
		}
		out[line-1] = strings.Replace(out[line-1], from, to, 1)
		return out
	}
	hashOf := func(line int) string {
		_, rest, _ := strings.Cut(lines[line-1], `"hash":"`)
		return rest[:64]
	}
	cases := []struct {
		name    string
		lines   []string
		line    int
		problem Problem
	}{
		{"replicas changed", edit(3, `"replicas":5`, `"replicas":50`), 3, ProblemContent},
		{"outcome changed", edit(6, `replicas 3 -> 5`, `replicas 3 -> 4`), 6, ProblemContent},
		{"subject changed", edit(13, `console:eve`, `console:bob`), 13, ProblemContent},
		{"time moved", edit(2, `"time":"2026-03-14T02:14:07.`, `"time":"2026-03-14T02:15:07.`), 2, ProblemContent},
		{"hash replaced", edit(4, hashOf(4), strings.Repeat("a", 64)), 4, ProblemHash},
		{"line deleted", append(append([]string(nil), lines[:4]...), lines[5:]...), 5, ProblemMissing},
		{"lines swapped", append(append(append([]string(nil), lines[:4]...), lines[5], lines[4]), lines[6:]...), 5, ProblemMissing},
		{"garbage line", edit(7, `{"seq"`, `{seq`), 7, ProblemUnreadable},
		{"first line dropped", lines[1:], 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := verifyLines(t, tc.lines)
			if tc.line == 0 {
				// An export may start anywhere: it then says which hash the
				// event before it must have.
				if !res.OK || res.FirstSeq != 2 || res.FirstPrev != hashOf(1) || !strings.Contains(res.String(), "it continues #1, whose hash must be "+hashOf(1)) {
					t.Errorf("partial export: %s", res)
				}
				return
			}
			if res.OK || res.BadLine != tc.line || res.Problem != tc.problem {
				t.Errorf("got %s, want line %d %s", res, tc.line, tc.problem)
			}
			if !strings.Contains(res.String(), "audit.jsonl line ") {
				t.Errorf("report does not name the file and line: %s", res)
			}
		})
	}

	// With an anchor published earlier, a rewritten chain (every hash
	// recomputed) is caught; and an export of the middle must continue the
	// anchored event.
	res = verifyLines(t, lines, Anchor{Seq: 6, Hash: strings.Repeat("b", 64)})
	if res.OK || res.Problem != ProblemAnchor || res.BadLine != 6 {
		t.Errorf("anchor mismatch: %s", res)
	}
	res = verifyLines(t, lines[6:], Anchor{Seq: 6, Hash: hashOf(6)})
	if !res.OK || res.FirstSeq != 7 {
		t.Errorf("continuation of an anchor: %s", res)
	}
	res = verifyLines(t, lines[6:], Anchor{Seq: 6, Hash: hashOf(5)})
	if res.OK || res.Problem != ProblemAnchor || res.BadLine != 1 {
		t.Errorf("continuation of the wrong anchor: %s", res)
	}
	res = verifyLines(t, lines[:10], Anchor{Seq: 12, Hash: hashOf(12)})
	if res.OK || res.Problem != ProblemTruncated {
		t.Errorf("an anchor past the end: %s", res)
	}

	// Archives verify together, in order; out of order they do not.
	a, b := strings.Join(lines[:7], "\n")+"\n", strings.Join(lines[7:], "\n")+"\n"
	res, err = VerifyExport([]ExportFile{{"2026-03.jsonl", strings.NewReader(a)}, {"2026-04.jsonl", strings.NewReader(b)}})
	if err != nil || !res.OK || res.Count != int64(len(lines)) {
		t.Errorf("two archives in order: %s %v", res, err)
	}
	res, err = VerifyExport([]ExportFile{{"2026-04.jsonl", strings.NewReader(b)}, {"2026-03.jsonl", strings.NewReader(a)}})
	if err != nil || res.OK || res.BadFile != "2026-03.jsonl" || res.BadLine != 1 {
		t.Errorf("two archives out of order: %s %v", res, err)
	}
}

// SeqRange and ThroughSeq select one unbroken piece of the chain by time.
func TestSeqRange(t *testing.T) { forBackends(t, testSeqRange) }

func testSeqRange(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	seedVaried(t, f)
	ctx := context.Background()
	all, err := f.rec.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	first, last, err := f.rec.SeqRange(ctx, all[3].Time, all[9].Time)
	if err != nil || first != 4 || last != 9 {
		t.Fatalf("SeqRange = %d..%d, %v; want 4..9", first, last, err)
	}
	got, err := f.rec.List(ctx, Filter{AfterSeq: first - 1, ThroughSeq: last})
	if err != nil || len(got) != 6 || got[0].Seq != 4 || got[5].Seq != 9 {
		t.Errorf("List by seq range: %d events, %v", len(got), err)
	}
	if first, last, err := f.rec.SeqRange(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}); err != nil || first != 0 || last != 0 {
		t.Errorf("empty range = %d..%d, %v", first, last, err)
	}
}
