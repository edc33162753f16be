package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/actions/alertmanager"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/pipeline"
	"github.com/parley-chatops/parley/internal/testenv/promtest"
)

// TestSilenceButtonAgainstAlertmanager: an incident's "Silence 1h" button
// (the suggestion the incident manager builds) takes the typed path in the
// wired app: refused for someone the policy does not know, a confirmation
// with the plan for an sre, and after "confirm" exactly one silence on the
// real Alertmanager, created by the requester, every step audited.
func TestSilenceButtonAgainstAlertmanager(t *testing.T) {
	am := promtest.StartAlertmanager(t, promtest.AlertmanagerConfig{Config: "route: {receiver: \"null\"}\nreceivers: [{name: \"null\"}]\n"})
	postAlert(t, am.URL, map[string]string{"alertname": "HighErrorRate", "service": "checkout", "namespace": "prod"})

	cfg := config.Default()
	cfg.Database = filepath.Join(t.TempDir(), "p.db")
	cfg.Alertmanager.URL = am.URL
	out := &recorder{}
	p, err := Build(context.Background(), Options{Config: cfg}, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	h := &harness{t: t, p: p, out: out, clock: &clock{t: time.Now()}}

	offer := silenceOffer(cfg, p.Actions)
	if offer == nil || offer.ServiceLabel != "service" || offer.Duration != "1h" {
		t.Fatalf("silence offer = %+v", offer)
	}
	click := func(user string) string {
		h.seq++
		h.p.Pipeline.Handle(context.Background(), chat.Message{
			Platform: chat.Console, Channel: "ops", Thread: "ops", User: user, EventID: fmt.Sprintf("click-%d", h.seq),
			Action: &chat.ButtonClick{Action: "run", Value: encodeSuggestion(t, pipeline.Suggestion{
				Action: alertmanager.SilenceName, Params: map[string]any{"alertname": "HighErrorRate", "service": "checkout", "duration": "1h"},
			})},
		})
		got, n := h.out.since(h.n)
		h.n = n
		return got
	}
	mustContain(t, click("eve"), "may not run alertmanager.silence")
	got := click("alice")
	mustContain(t, got, `This will silence alerts matching {alertname="HighErrorRate", service="checkout"} for 1h`,
		`it silences 1 firing alert now: HighErrorRate{namespace="prod"}`)
	if len(h.events(audit.ActionStarted)) != 0 {
		t.Fatal("a silence ran without confirmation")
	}
	got = h.say("alice", "ops", "confirm "+mustCode(t, got))
	mustContain(t, got, `Silenced {alertname="HighErrorRate", service="checkout"} until`, "1 firing alert is silenced now", "[audit #")

	c, err := alertmanager.NewClient(alertmanager.Options{URL: am.URL})
	if err != nil {
		t.Fatal(err)
	}
	sils, err := c.Silences(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 || sils[0].CreatedBy != "console:alice" || sils[0].Status.State != alertmanager.SilenceActive {
		t.Fatalf("silences on Alertmanager: %+v", sils)
	}
	var ok bool
	for _, e := range h.events(audit.ActionSucceeded) {
		ok = ok || (e.Action == alertmanager.SilenceName && strings.Contains(e.Outcome, "silence_id="+sils[0].ID))
	}
	if !ok {
		t.Error("the silence is not in the audit log with its id")
	}
	if res, err := h.p.Audit.Verify(context.Background()); err != nil || res.Err() != nil {
		t.Fatalf("verify: %v %v", err, res.Err())
	}
}

func postAlert(t *testing.T, amURL string, labels map[string]string) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{"labels": labels, "startsAt": time.Now().Add(-10 * time.Minute), "endsAt": time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alert: %s", resp.Status)
	}
}
