package audit

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// Secrets built from parts: no token-shaped literal in the repository.
var (
	slackBotToken = "xoxb-" + "2233445566-7788990011-" + strings.Repeat("Qz9Xw8", 4)
	bearerValue   = strings.Repeat("eW91IHNoYWxs", 3)
	awsKey        = "AKIA" + "Z7QX4N2M8P6R3T5V"
)

func TestRecordRedactsStoredText(t *testing.T) { forBackends(t, testRecordRedactsStoredText) }

// testRecordRedactsStoredText records events holding tokens in every free
// text field and reads the rows back with a connection of its own: no
// token is in the database, the surrounding text is, and the chain
// verifies (it hashes what is stored).
func testRecordRedactsStoredText(t *testing.T, bk backend) {
	f := newFixture(t, bk, Options{})
	secrets := []string{slackBotToken, bearerValue, awsKey, "hunter2"}
	events := []Event{
		{Type: MessageReceived, Subject: "console:alice", Text: "why does curl -H 'Authorization: Bearer " + bearerValue + "' fail with " + slackBotToken + "?"},
		{Type: IntentRouted, Action: action.LokiQuery, Params: action.Params{"filter": "password=hunter2", "limit": 5},
			Details: map[string]string{"note": "key " + awsKey}},
		{Type: ActionFailed, Action: action.LokiQuery, Error: "upstream said: invalid token " + slackBotToken, Outcome: "login as admin password=hunter2 refused"},
	}
	for _, e := range events {
		got := f.record(t, e)
		for _, s := range secrets {
			if strings.Contains(got.Text+got.Error+got.Outcome+got.Params.Canonical()+encodeDetails(got.Details), s) {
				t.Errorf("Record returned %s holding %q", got.Type, s)
			}
		}
	}

	raw, err := sql.Open(f.dbase.Driver, f.dbase.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT text, params, outcome, error, details FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var text, params, outcome, errText, details string
		if err := rows.Scan(&text, &params, &outcome, &errText, &details); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, strings.Join([]string{text, params, outcome, errText, details}, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(stored, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("the database holds %q:\n%s", s, all)
		}
	}
	for _, want := range []string{"why does curl -H 'Authorization: Bearer [REDACTED]' fail with [REDACTED]?",
		`"filter":"password=[REDACTED]"`, "key [REDACTED]", "invalid token [REDACTED]"} {
		if !strings.Contains(all, want) {
			t.Errorf("stored rows lack %q:\n%s", want, all)
		}
	}
	res, err := f.rec.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Count != int64(len(events)) {
		t.Errorf("verify = %s", res)
	}
}
