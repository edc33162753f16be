package audit

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// handEdit runs statements on the database the way someone with the
// sqlite3 shell or psql would: through a connection of its own,
// independent of the store package.
func handEdit(t *testing.T, d database, stmts ...string) {
	t.Helper()
	raw, err := sql.Open(d.Driver, d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("hand edit %q: %v", s, err)
		}
	}
}

// rehash returns the hash of a stored row as the recorder would compute
// it, for simulating a forger who knows the format.
func rehash(t *testing.T, f *fixture, seq int64) string {
	t.Helper()
	rw, err := scanRow(f.db.QueryRowContext(context.Background(), `SELECT `+columns+` FROM audit_events WHERE seq = ?`, seq))
	if err != nil {
		t.Fatal(err)
	}
	return rw.computeHash()
}

func TestVerifyFindsTampering(t *testing.T) { forBackends(t, testVerifyFindsTampering) }

func testVerifyFindsTampering(t *testing.T, bk backend) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, f *fixture, evs []Event)
		anchors func(evs []Event) []Anchor
		badSeq  int64
		problem Problem
	}{
		{
			name: "params altered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET params = '{"deployment":"checkout","namespace":"prod","replicas":50}' WHERE seq = 3`)
			},
			badSeq: 3, problem: ProblemContent,
		},
		{
			name: "decision altered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET decision = 'allow' WHERE seq = 3`)
			},
			badSeq: 3, problem: ProblemContent,
		},
		{
			name: "time altered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET time_ms = time_ms - 3600000 WHERE seq = 5`)
			},
			badSeq: 5, problem: ProblemContent,
		},
		{
			name: "last event altered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET outcome = 'nothing happened' WHERE seq = 6`)
			},
			badSeq: 6, problem: ProblemContent,
		},
		{
			name: "stored hash altered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+strings.Repeat("ab", 32)+`' WHERE seq = 2`)
			},
			badSeq: 2, problem: ProblemHash,
		},
		{
			name: "content altered and rehashed",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 3`)
				handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+rehash(t, f, 3)+`' WHERE seq = 3`)
			},
			badSeq: 4, problem: ProblemBrokenLink,
		},
		{
			name: "row deleted",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq = 3`)
			},
			badSeq: 3, problem: ProblemMissing,
		},
		{
			name: "rows deleted",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq IN (2, 3, 4)`)
			},
			badSeq: 2, problem: ProblemMissing,
		},
		{
			name: "first row deleted",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq = 1`)
			},
			badSeq: 1, problem: ProblemMissing,
		},
		{
			name: "rows reordered",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase,
					`UPDATE audit_events SET seq = -3 WHERE seq = 3`,
					`UPDATE audit_events SET seq = 3 WHERE seq = 4`,
					`UPDATE audit_events SET seq = 4 WHERE seq = -3`)
			},
			badSeq: 3, problem: ProblemBrokenLink,
		},
		{
			name: "forged row inserted with a correct hash",
			tamper: func(t *testing.T, f *fixture, evs []Event) {
				handEdit(t, f.dbase,
					`UPDATE audit_events SET seq = -seq WHERE seq >= 4`,
					`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`,
					`UPDATE audit_head SET seq = 7`,
					`INSERT INTO audit_events (seq, time_ms, type, subject, prev_hash, hash)
						VALUES (4, 0, 'confirmation.granted', 'console:mallory', '`+evs[2].Hash+`', '')`)
				handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+rehash(t, f, 4)+`' WHERE seq = 4`)
			},
			badSeq: 5, problem: ProblemBrokenLink,
		},
		{
			name: "naive row inserted",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase,
					`UPDATE audit_events SET seq = -seq WHERE seq >= 2`,
					`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`,
					`INSERT INTO audit_events (seq, time_ms, type, prev_hash, hash) VALUES (2, 0, 'confirmation.granted', 'x', 'y')`)
			},
			badSeq: 2, problem: ProblemBrokenLink,
		},
		{
			name: "row with invented seq",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `INSERT INTO audit_events (seq, time_ms, type, prev_hash, hash) VALUES (0, 0, 'message.received', '', '')`)
			},
			badSeq: 0, problem: ProblemBadSeq,
		},
		{
			name: "event appended outside parley",
			tamper: func(t *testing.T, f *fixture, evs []Event) {
				handEdit(t, f.dbase, `INSERT INTO audit_events (seq, time_ms, type, prev_hash, hash)
					VALUES (7, 0, 'message.received', '`+evs[5].Hash+`', '')`)
				handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+rehash(t, f, 7)+`' WHERE seq = 7`)
			},
			badSeq: 7, problem: ProblemHead,
		},
		{
			name: "tail deleted",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq >= 5`)
			},
			badSeq: 5, problem: ProblemTruncated,
		},
		{
			name: "tail deleted and head rewound, caught by anchor",
			tamper: func(t *testing.T, f *fixture, evs []Event) {
				handEdit(t, f.dbase, `DELETE FROM audit_events WHERE seq >= 5`,
					`UPDATE audit_head SET seq = 4, hash = '`+evs[3].Hash+`'`)
			},
			anchors: func(evs []Event) []Anchor { return []Anchor{{Seq: 6, Hash: evs[5].Hash}} },
			badSeq:  5, problem: ProblemTruncated,
		},
		{
			name: "chain rewritten from #2, caught by anchor",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 2`)
				prev := rehash(t, f, 2)
				handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+prev+`' WHERE seq = 2`)
				for seq := int64(3); seq <= 6; seq++ {
					handEdit(t, f.dbase, `UPDATE audit_events SET prev_hash = '`+prev+`' WHERE seq = `+itoa(seq))
					prev = rehash(t, f, seq)
					handEdit(t, f.dbase, `UPDATE audit_events SET hash = '`+prev+`' WHERE seq = `+itoa(seq))
				}
				handEdit(t, f.dbase, `UPDATE audit_head SET hash = '`+prev+`'`)
			},
			anchors: func(evs []Event) []Anchor { return []Anchor{{Seq: 4, Hash: evs[3].Hash}} },
			badSeq:  4, problem: ProblemAnchor,
		},
		{
			name: "head hash edited",
			tamper: func(t *testing.T, f *fixture, _ []Event) {
				handEdit(t, f.dbase, `UPDATE audit_head SET hash = 'nope'`)
			},
			badSeq: 6, problem: ProblemHead,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, bk, Options{})
			var evs []Event
			for _, e := range requestEvents() {
				evs = append(evs, f.record(t, e))
			}
			var anchors []Anchor
			if tt.anchors != nil {
				anchors = tt.anchors(evs)
				// The anchors hold on the untouched log.
				if res, err := f.rec.Verify(context.Background(), anchors...); err != nil || !res.OK {
					t.Fatalf("before tampering: %v, %v", res, err)
				}
			}
			tt.tamper(t, f, evs)

			res, err := f.rec.Verify(context.Background(), anchors...)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.OK || res.BadSeq != tt.badSeq || res.Problem != tt.problem {
				t.Fatalf("Verify = %s\nwant failure at #%d (%s)", res, tt.badSeq, tt.problem)
			}
			if !errors.Is(res.Err(), ErrTampered) {
				t.Errorf("Err() = %v, want ErrTampered", res.Err())
			}
			if !strings.Contains(res.String(), "FAILED at #"+itoa(tt.badSeq)) {
				t.Errorf("String() = %q does not name the bad event", res.String())
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestVerifyEmptyLog(t *testing.T) { forBackends(t, testVerifyEmptyLog) }

func testVerifyEmptyLog(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	res, err := f.rec.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Count != 0 || res.HeadHash != Genesis || res.Err() != nil {
		t.Errorf("Verify on empty log = %+v", res)
	}
}

// TestHashEncodingIsStable pins the hash of a fixed event. If it changes,
// logs written by earlier releases no longer verify: bump encodingVersion
// and keep the old encoding for old rows instead.
func TestHashEncodingIsStable(t *testing.T) {
	e := requestEvents()[2]
	e.Seq = 3
	e.Time = newClock().Now()
	e.PrevHash = Genesis
	n, err := normalise(e)
	if err != nil {
		t.Fatal(err)
	}
	n.Seq, n.PrevHash = 3, Genesis
	rw := toRow(n)
	const wantCanonical = `{"action":"kubernetes.scale","channel":"console:ops","confidence":0,"confirmation_id":"","decision":"confirm","details":"","duration_ms":0,"error":"","outcome":"","params":"{\"deployment\":\"checkout\",\"namespace\":\"prod\",\"replicas\":5}","platform":"console","request_id":"req-1","router":"","rule":"sre changes prod","seq":3,"subject":"console:alice","text":"","thread":"","time_ms":1773454447001,"type":"policy.decided","v":1}`
	if got := string(rw.appendCanonical(nil)); got != wantCanonical {
		t.Errorf("canonical =\n%s\nwant\n%s", got, wantCanonical)
	}
	const wantHash = "3b51e7cd9fa20984d0bff2f053fcc7c2e9c43eb8f607c927a22f1178e4ef4bb5"
	if got := rw.computeHash(); got != wantHash {
		t.Errorf("hash = %s, want %s", got, wantHash)
	}
}

func TestParseAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for in, want := range map[string]Anchor{
		"41:" + h:                          {Seq: 41, Hash: h},
		"#41:" + strings.ToUpper(h):        {Seq: 41, Hash: h},
		(Anchor{Seq: 7, Hash: h}).String(): {Seq: 7, Hash: h},
	} {
		got, err := ParseAnchor(in)
		if err != nil || got != want {
			t.Errorf("ParseAnchor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "41", "41:abc", "0:" + h, "x:" + h, "41:" + strings.Repeat("zz", 32)} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) succeeded, want an error", bad)
		}
	}
}

func TestVerifyReportRoundTripsAsAnchor(t *testing.T) {
	forBackends(t, testVerifyReportRoundTripsAsAnchor)
}

func testVerifyReportRoundTripsAsAnchor(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	for _, e := range requestEvents() {
		f.record(t, e)
	}
	res, err := f.rec.Verify(context.Background())
	if err != nil || !res.OK {
		t.Fatal(res, err)
	}
	printed := res.String()[strings.LastIndex(res.String(), " ")+1:]
	a, err := ParseAnchor(printed)
	if err != nil {
		t.Fatal(err)
	}
	f.record(t, Event{Type: MessageReceived})
	if res, err := f.rec.Verify(context.Background(), a); err != nil || !res.OK || res.Count != 7 {
		t.Errorf("Verify with the printed anchor after one more event = %s, %v", res, err)
	}
}
