package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

func TestExportJSONLRoundTrips(t *testing.T) { forBackends(t, testExportJSONLRoundTrips) }

func testExportJSONLRoundTrips(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	var evs []Event
	for _, e := range requestEvents() {
		evs = append(evs, f.record(t, e))
	}
	var buf bytes.Buffer
	if err := ExportJSONL(&buf, evs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines, want %d", len(lines), len(evs))
	}
	wantFirst := `{"seq":1,"time":"2026-03-14T02:14:07.001Z","type":"message.received","request_id":"req-1",` +
		`"platform":"console","channel":"console:ops","subject":"console:alice","text":"scale checkout to 5 in prod",` +
		`"prev_hash":"` + Genesis + `","hash":"` + evs[0].Hash + `"}`
	if lines[0] != wantFirst {
		t.Errorf("first line =\n%s\nwant\n%s", lines[0], wantFirst)
	}
	for i, line := range lines {
		var got Event
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(got, evs[i]) {
			t.Errorf("line %d decodes to\n%#v\nwant\n%#v", i+1, got, evs[i])
		}
	}
}

func TestExportCSV(t *testing.T) {
	evs := []Event{
		{Seq: 1, Time: time.Date(2026, 3, 14, 2, 14, 7, 5e6, time.UTC), Type: MessageReceived,
			Subject: "slack:U1", Text: "=HYPERLINK(\"http://evil\")"},
		{Seq: 2, Time: time.Date(2026, 3, 14, 2, 14, 8, 0, time.UTC), Type: IntentRouted,
			Action: action.KubernetesScale, Params: action.Params{"replicas": 5, "deployment": "checkout"},
			Router: "rules", Confidence: 0.9, Details: map[string]string{"note": "a, \"quoted\"\nnote"},
			Duration: 1500 * time.Millisecond, Hash: "h2", PrevHash: "h1"},
	}
	var buf bytes.Buffer
	if err := ExportCSV(&buf, evs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !reflect.DeepEqual(recs[0], CSVHeader()) {
		t.Fatalf("got %d records, header %v", len(recs), recs[0])
	}
	col := func(rec []string, name string) string {
		for i, h := range CSVHeader() {
			if h == name {
				return rec[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	checks := []struct {
		rec       int
		col, want string
	}{
		{1, "time", "2026-03-14T02:14:07.005Z"},
		{1, "text", `'=HYPERLINK("http://evil")`},
		{1, "confidence", ""},
		{2, "params", `{"deployment":"checkout","replicas":5}`},
		{2, "details", `{"note":"a, \"quoted\"\nnote"}`},
		{2, "confidence", "0.9"},
		{2, "duration_ms", "1500"},
		{2, "hash", "h2"},
	}
	for _, c := range checks {
		if got := col(recs[c.rec], c.col); got != c.want {
			t.Errorf("row %d %s = %q, want %q", c.rec, c.col, got, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 3, 14, 2, 14, 7, 0, time.UTC)
	scale := action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{
			"policy decision",
			Event{Seq: 41, Time: at, Type: PolicyDecided, Subject: "console:alice", Action: action.KubernetesScale,
				Params: scale, Decision: Confirm, Rule: "sre changes prod"},
			`#41 02:14:07 policy.decided console:alice scale prod/checkout replicas=5 → confirm (rule "sre changes prod")`,
		},
		{
			"message flattened and shortened",
			Event{Seq: 1, Time: at, Type: MessageReceived, Subject: "slack:U1",
				Text: "scale\ncheckout\t\tto 5 " + strings.Repeat("x", 100)},
			`#1 02:14:07 message.received slack:U1 "scale checkout to 5 ` + strings.Repeat("x", 59) + `…"`,
		},
		{
			"routed read action",
			Event{Seq: 2, Time: at, Type: IntentRouted, Subject: "slack:U1", Action: action.PrometheusQuery,
				Params: action.Params{"service": "payments", "metric": "latency_p99", "window": "1h"}, Router: "llm", Confidence: 0.875},
			`#2 02:14:07 intent.routed slack:U1 prometheus.query metric=latency_p99 service=payments window=1h (llm 0.88)`,
		},
		{
			"failed action",
			Event{Seq: 9, Time: at, Type: ActionFailed, Subject: "discord:42", Action: action.KubernetesRollback,
				Params:         action.Params{"deployment": "payments", "namespace": "prod"},
				ConfirmationID: "0123456789abcdef0123456789abcdef", Duration: 2500 * time.Millisecond,
				Error: "deployment has no previous revision"},
			`#9 02:14:07 action.failed discord:42 rollback prod/payments [confirmation 01234567] in 2.5s error: deployment has no previous revision`,
		},
		{
			"succeeded with outcome",
			Event{Seq: 10, Time: at, Type: ActionSucceeded, Action: action.EvaluationRun,
				Params: action.Params{"suite": "intent-routing", "variant": "prompt v2"}, Outcome: "accuracy 0.94"},
			`#10 02:14:07 action.succeeded evaluation.run suite=intent-routing variant="prompt v2" → accuracy 0.94`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.e); got != tt.want {
				t.Errorf("Format =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
