package incident

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
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
	// and coalesced edits (TestAlertStormDigest covers digests).
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
