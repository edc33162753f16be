package incident_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	slackadapter "github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/audit/lokisink"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/store"
)

// lokiPushes is a local stand-in for Loki's push API on 127.0.0.1
// (POST /loki/api/v1/push, JSON streams, 204 No Content), keeping every
// body it received: Loki itself cannot run here.
type lokiPushes struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newLokiPushes(t *testing.T) *lokiPushes {
	l := &lokiPushes{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != lokisink.PushPath {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		l.mu.Lock()
		l.bodies = append(l.bodies, string(body))
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *lokiPushes) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.bodies, "\n")
}

// TestAlertSecretsNeverLeave posts an Alertmanager notification whose
// annotations and labels carry credentials (an Authorization header quoted
// in a description, a Slack bot token, a password, a GitHub token in a
// label) to the real webhook handler, and lets the real Slack adapter post
// the incident message to slack-go's slacktest server on 127.0.0.1, with
// the audit log on SQLite pushed to a local Loki push endpoint. None of
// the credentials is in the Slack calls, the audit rows, the incidents
// table or the Loki push bodies; the audit chain verifies.
func TestAlertSecretsNeverLeave(t *testing.T) {
	ctx := t.Context()
	// Built from parts: no token-shaped literal in the repository.
	bearer := strings.Repeat("c2VjcmV0LWJlYXJlcg", 2)
	slackTok := "xoxb-" + "9081726354-5647382910-" + strings.Repeat("Kp7Lm2", 4)
	ghTok := "ghp_" + strings.Repeat("Zx8Cv5Bn2M", 4)
	const password = "Tr0ub4dor-and-3"
	secrets := []string{bearer, slackTok, ghTok, password}

	fs := newFakeSlack(t)
	sl, err := slackadapter.New(slackadapter.Options{BotToken: e2eBotToken, Mode: slackadapter.ModeEvents, SigningSecret: "s",
		APIURL: fs.srv.GetAPIURL(), PostInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	slackCtx, stopSlack := context.WithCancel(ctx)
	slackDone := make(chan error, 1)
	go func() { slackDone <- sl.Run(slackCtx, nopHandler{}) }()
	t.Cleanup(func() { stopSlack(); <-slackDone })
	waitFor(t, "slack adapter connected", fs.authed)

	loki := newLokiPushes(t)
	dbPath := filepath.Join(t.TempDir(), "parley.db")
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sink, err := lokisink.New(lokisink.Options{URL: loki.srv.URL, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(db, audit.Options{Sinks: []audit.Sink{sink}})

	m, err := incident.New(incident.Options{Sender: sl, DB: db, Audit: rec,
		Auth: incident.Auth{BearerToken: e2eToken}, DefaultChannel: "slack:C0INCIDENT", GroupWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(runCtx) }()
	hook := httptest.NewServer(m.Handler())
	t.Cleanup(hook.Close)

	// A notification as Alertmanager sends it (webhook_config, version 4).
	startsAt := time.Now().Add(-2 * time.Minute).UTC().Format(time.RFC3339Nano)
	labels := map[string]string{"alertname": "LoginProbeFailing", "service": "checkout", "namespace": "prod", "probe_token": ghTok}
	annotations := map[string]string{
		"summary":     "Login probe fails with password=" + password,
		"description": "curl -H 'Authorization: Bearer " + bearer + "' https://checkout/login answered 401; bot " + slackTok + " was refused",
	}
	body, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}:{alertname="LoginProbeFailing"}`, "truncatedAlerts": 0, "status": "firing",
		"receiver": "parley", "groupLabels": map[string]string{"alertname": "LoginProbeFailing"},
		"commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://127.0.0.1:9093",
		"alerts": []map[string]any{{
			"status": "firing", "labels": labels, "annotations": annotations, "startsAt": startsAt,
			"endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": "a1b2c3d4e5f60718",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := hook.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}

	posted := fs.waitCall(t, "incident message", func(c call) bool { return c.method == "chat.postMessage" && c.channel == "C0INCIDENT" })
	if !strings.Contains(posted.blocks, "LoginProbeFailing") || !strings.Contains(posted.blocks+posted.text, "[REDACTED]") {
		t.Errorf("posted message does not show the alert with its secrets redacted:\ntext %s\nblocks %s", posted.text, posted.blocks)
	}
	waitFor(t, "incident.posted in Loki", func() bool { return strings.Contains(loki.all(), string(audit.IncidentPosted)) })

	stopRun()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	fs.mu.Lock()
	var slackSent strings.Builder
	for _, c := range fs.calls {
		slackSent.WriteString(c.method + " " + c.form + "\n")
	}
	fs.mu.Unlock()

	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	dump := func(q string) string {
		rows, err := raw.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		return b.String()
	}
	auditRows := dump(`SELECT type || ' ' || text || ' ' || outcome || ' ' || error || ' ' || params || ' ' || details FROM audit_events`)
	stateRows := dump(`SELECT state FROM incidents`)
	if !strings.Contains(auditRows, string(audit.IncidentPosted)) || !strings.Contains(stateRows, "LoginProbeFailing") {
		t.Fatalf("nothing recorded:\naudit:\n%s\nstate:\n%s", auditRows, stateRows)
	}
	for where, text := range map[string]string{"Slack calls": slackSent.String(), "audit rows": auditRows,
		"incidents table": stateRows, "Loki pushes": loki.all()} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s hold the secret %q:\n%s", where, s, text)
			}
		}
	}

	db2, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	res, err := audit.New(db2, audit.Options{}).Verify(context.Background())
	if err != nil || !res.OK {
		t.Fatalf("audit verify = %v, %v", res, err)
	}
}
