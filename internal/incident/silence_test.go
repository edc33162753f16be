package incident

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/actions/alertmanager"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/pipeline"
)

// TestSilenceButton: with Alertmanager's API configured, a firing group's
// message offers "Silence 1h" for the alert name and service its alerts
// share, as a suggestion the pipeline runs like a typed request; a group
// that shares neither, a resolved group, or no API gets no button.
func TestSilenceButton(t *testing.T) {
	offer := &SilenceOffer{Spec: alertmanager.SilenceSpec(), ServiceLabel: "service", Duration: "1h"}
	silenceButton := func(r chat.Reply) (chat.Button, bool) {
		for _, b := range r.Buttons {
			if strings.HasPrefix(b.Label, "Silence") {
				return b, true
			}
		}
		return chat.Button{}, false
	}

	h := startManager(t, openDB(t, t.TempDir()), Options{Silence: offer})
	h.post(t, payload("g-checkout", common, alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod")))
	first := h.sender.wait(t, "first post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	b, ok := silenceButton(first.Reply)
	if !ok || b.Label != "Silence 1h" || b.Action != "run" {
		t.Fatalf("button %+v (found %v) in:\n%s", b, ok, render(first.Reply))
	}
	var sug pipeline.Suggestion
	if err := json.Unmarshal([]byte(b.Value), &sug); err != nil {
		t.Fatal(err)
	}
	if sug.Action != alertmanager.SilenceName || sug.Params["alertname"] != "HighErrorRate" || sug.Params["service"] != "checkout" ||
		sug.Params["duration"] != "1h" || len(sug.Params) != 3 {
		t.Errorf("suggestion %+v", sug)
	}
	h.idle(t)
	var audited bool
	for _, e := range h.audit.of(audit.IncidentSuggested) {
		audited = audited || e.Action == alertmanager.SilenceName
	}
	if !audited {
		t.Error("the silence suggestion was not audited")
	}

	// Resolved: nothing left to silence.
	h.post(t, payload("g-checkout", common, alert("HighErrorRate", "fp1", Resolved, "service", "checkout", "namespace", "prod")))
	resolved := h.sender.wait(t, "resolved edit", func(s sent) bool { return s.UpdateOf == first.ID && strings.Contains(s.Text, "RESOLVED") })
	if _, ok := silenceButton(resolved.Reply); ok {
		t.Errorf("a resolved group offers a silence:\n%s", render(resolved.Reply))
	}

	// Alerts of different names and services share nothing to match: no
	// silence that would reach beyond the group.
	mixed := map[string]string{"team": "shop"}
	h.post(t, payload("g-mixed", mixed,
		alert("HighErrorRate", "fp2", Firing, "service", "checkout", "team", "shop"),
		alert("DiskFull", "fp3", Firing, "service", "cart", "team", "shop")))
	m := h.sender.wait(t, "mixed post", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" && strings.Contains(s.Text, "+1 more") })
	if _, ok := silenceButton(m.Reply); ok {
		t.Errorf("a group without a common alert name or service offers a silence:\n%s", render(m.Reply))
	}
	// A name the action would refuse is not offered either.
	odd := map[string]string{"alertname": "Disk full on /var"}
	h.post(t, payload("g-odd", odd, alert("Disk full on /var", "fp4", Firing)))
	o := h.sender.wait(t, "odd post", func(s sent) bool { return s.UpdateOf == "" && strings.Contains(s.Text, "Disk full on /var") })
	if _, ok := silenceButton(o.Reply); ok {
		t.Errorf("an unusable silence is offered:\n%s", render(o.Reply))
	}

	// Without Alertmanager's API, no button.
	h2 := startManager(t, openDB(t, t.TempDir()), Options{})
	h2.post(t, payload("g-checkout", common, alert("HighErrorRate", "fp1", Firing, "service", "checkout", "namespace", "prod")))
	p := h2.sender.wait(t, "post without an API", func(s sent) bool { return s.UpdateOf == "" && s.Thread == "" })
	if _, ok := silenceButton(p.Reply); ok {
		t.Errorf("a silence offered without Alertmanager's API:\n%s", render(p.Reply))
	}
}
