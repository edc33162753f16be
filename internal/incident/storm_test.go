package incident

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
)

// TestStorm sends 300 notifications across 20 groups at once, the way
// Alertmanager does in a storm: each group grows to 12 alerts, one alert
// per notification, with re-sends mixed in. Each group must get exactly
// one message, edited no more often than GroupWait allows (the recording
// sender fails the test otherwise), showing every one of its alerts.
func TestStorm(t *testing.T) {
	const (
		groups   = 20
		alerts   = 12
		resends  = 3
		wait     = 200 * time.Millisecond
		channels = 4
	)
	var routes []Route
	for c := range channels {
		r, err := ParseRoute(map[string]string{"shard": fmt.Sprint(c)}, fmt.Sprintf("slack:C%d", c))
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	rs := newRecSender(t)
	rs.minEdit = wait
	// Five groups a channel arrive at once, more than DigestAfter would
	// let post on their own: this test is about one message per group
	// and coalesced edits (TestAlertStormIntoOnePacedChannel and
	// TestDigestLinesExpire cover digests).
	h := startManager(t, openDB(t, t.TempDir()), Options{Sender: rs, GroupWait: wait, QueueSize: 1024, Routes: routes, DigestAfter: 100})
	h.sender = rs

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for g := range groups {
		wg.Go(func() {
			svc := fmt.Sprintf("svc-%02d", g)
			labels := map[string]string{"alertname": "Storm", "service": svc, "shard": fmt.Sprint(g % channels)}
			var as []Alert
			for i := range alerts {
				name := "StormA"
				if i%2 == 1 {
					name = "StormB"
				}
				as = append(as, alert(name, fmt.Sprintf("%s-%02d", svc, i), Firing, "service", svc, "shard", fmt.Sprint(g%channels), "pod", fmt.Sprintf("%s-%d", svc, i)))
				p := payload("storm/"+svc, labels, as...)
				n := 1
				if i%4 == 3 { // every fourth state is re-sent
					n = 2
				}
				for range n {
					code := h.post(t, p)
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	h.idle(t)
	elapsed := time.Since(start)

	if codes[http.StatusOK] != groups*(alerts+resends) {
		t.Fatalf("answers = %v, want %d × 200", codes, groups*(alerts+resends))
	}
	posts, edits := rs.tops()
	if len(posts) != groups {
		t.Fatalf("%d messages posted, want one per group (%d)", len(posts), groups)
	}
	byGroup := map[string]string{} // service -> message id
	for _, p := range posts {
		svc := between(p.Text, "— ", "\n")
		if _, dup := byGroup[svc]; dup {
			t.Errorf("group %s posted twice", svc)
		}
		byGroup[svc] = p.ID
		shard := strings.TrimPrefix(svc, "svc-")
		var n int
		fmt.Sscanf(shard, "%d", &n)
		if want := fmt.Sprintf("C%d", n%channels); p.Channel != want {
			t.Errorf("group %s posted to %s, want %s", svc, p.Channel, want)
		}
	}
	last := map[string]sent{}
	count := map[string]int{}
	for _, e := range edits {
		last[e.UpdateOf] = e
		count[e.UpdateOf]++
	}
	bound := int(elapsed/wait) + 2
	for svc, id := range byGroup {
		final, ok := last[id]
		if !ok {
			for _, p := range posts {
				if p.ID == id {
					final = p
				}
			}
		}
		text := render(final.Reply)
		if !strings.Contains(text, "Alerts: StormA: 6 firing; StormB: 6 firing") {
			t.Errorf("group %s: final message does not count all %d alerts:\n%s", svc, alerts, text)
		}
		if !strings.Contains(text, "+2 more | 2 firing") || strings.Count(text, "\nfiring | Storm") != maxTableRows {
			t.Errorf("group %s: table does not list %d alerts and count the rest:\n%s", svc, maxTableRows, text)
		}
		if count[id] > bound {
			t.Errorf("group %s: %d edits in %s, want at most %d (one per %s)", svc, count[id], elapsed, bound, wait)
		}
	}
	if got := h.met.duplicates.Load(); got != groups*resends {
		t.Errorf("duplicates = %d, want %d", got, groups*resends)
	}
	if n := len(h.audit.of(audit.IncidentPosted)); n != groups {
		t.Errorf("%d incident.posted events, want %d", n, groups)
	}
	t.Logf("storm: %d notifications, %d groups, %d posts, %d edits in %s (edit bound per group %d)",
		groups*(alerts+resends), groups, len(posts), len(edits), elapsed.Round(time.Millisecond), bound)
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	out, _, _ := strings.Cut(rest, b)
	return out
}

// TestDigestLinesExpire: in a storm whose channel refuses every message,
// the group that got a message of its own and the groups listed in the
// channel's digest are all retried, then given up after ExpireAfter, each
// with its own incident.expired event and count (a digest is not one
// silent loss for many groups), and the outbox empties. When the platform
// is back, the next change of a listed group shows the digest, and the
// next change of the first group posts its own message.
func TestDigestLinesExpire(t *testing.T) {
	db := openDB(t, t.TempDir())
	// The clock expiry reads moves only when the test moves it: every
	// group is placed before any can expire, however slow the machine.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	h := startManager(t, db, Options{DigestAfter: 1, RetryMax: 200 * time.Millisecond, Now: now})
	h.sender.mu.Lock()
	h.sender.fail = func(chat.Reply) error { return fmt.Errorf("slack down: %w", action.ErrUnavailable) }
	h.sender.mu.Unlock()
	group := func(i int, fps ...string) Payload {
		svc := fmt.Sprintf("svc-%d", i)
		var as []Alert
		for _, fp := range fps {
			as = append(as, alert("Down", svc+"-"+fp, Firing, "service", svc))
		}
		return payload("g-"+svc, map[string]string{"alertname": "Down", "service": svc}, as...)
	}
	// One at a time, so that svc-0 is the one waiting for its own message
	// when the others arrive.
	for i := range 4 {
		if code := h.post(t, group(i, "a")); code != http.StatusOK {
			t.Fatalf("group %d: %d", i, code)
		}
		for deadline := time.Now().Add(30 * time.Second); h.m.merged.Load() < int64(i+1); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("notification %d not merged", i)
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); h.met.sendFails.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first message and the digest were not tried")
		}
	}
	clock.Add(int64(DefaultExpireAfter)) // an hour of outage
	deadline := time.Now().Add(30 * time.Second)
	for len(h.audit.of(audit.IncidentExpired)) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.idle(t)
	what := map[string]string{}
	for _, e := range h.audit.of(audit.IncidentExpired) {
		if _, dup := what[e.Details["group_key"]]; dup {
			t.Errorf("group %s expired twice", e.Details["group_key"])
		}
		what[e.Details["group_key"]] = e.Details["what"]
		if !strings.Contains(e.Error, "slack down") || e.Channel != "slack:C0INCIDENT" {
			t.Errorf("incident.expired = %+v", e)
		}
	}
	want := map[string]string{"g-svc-0": "the first message", "g-svc-1": "its line in the alert-storm digest",
		"g-svc-2": "its line in the alert-storm digest", "g-svc-3": "its line in the alert-storm digest"}
	if len(what) != len(want) {
		t.Errorf("expired: %v, want %v", what, want)
	}
	for k, w := range want {
		if what[k] != w {
			t.Errorf("group %s expired as %q, want %q", k, what[k], w)
		}
	}
	if n := h.met.expired.Load(); n != 4 {
		t.Errorf("expired counted %d times, want 4", n)
	}
	if n := h.met.digested.Load(); n != 0 {
		t.Errorf("%d groups counted as listed in a digest that was never delivered", n)
	}
	if n := len(h.audit.of(audit.IncidentPosted)); n != 0 {
		t.Errorf("%d incident.posted events while nothing was delivered", n)
	}
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM incident_outbox`).Scan(&n); err != nil || n != 0 {
		t.Errorf("outbox holds %d rows after the expiry (%v), want 0", n, err)
	}

	// The platform is back.
	h.sender.mu.Lock()
	h.sender.fail = nil
	h.sender.mu.Unlock()
	h.post(t, group(2, "a", "b"))
	d := h.sender.wait(t, "the digest", func(s sent) bool { return s.UpdateOf == "" && strings.Contains(s.Text, "Alert storm") })
	if text := render(d.Reply); !strings.Contains(text, "svc-2") {
		t.Errorf("the digest does not list svc-2:\n%s", text)
	}
	h.post(t, group(0, "a", "b"))
	own := h.sender.wait(t, "svc-0's own message", func(s sent) bool {
		return s.UpdateOf == "" && !strings.Contains(s.Text, "Alert storm") && strings.Contains(render(s.Reply), "svc-0")
	})
	if !strings.Contains(own.Text, "[FIRING:2]") {
		t.Errorf("svc-0's message after the outage:\n%s", render(own.Reply))
	}
	h.idle(t)
	posted := map[string]int{}
	for _, e := range h.audit.of(audit.IncidentPosted) {
		posted[e.Details["group_key"]]++
	}
	if posted["g-svc-0"] != 1 || posted["g-svc-2"] != 1 {
		t.Errorf("incident.posted by group after the outage: %v, want svc-0 and svc-2 once each", posted)
	}
}
