package incident_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/chattest"
	slackadapter "github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/store"
)

// slackChannel is a Slack adapter running against the fake Slack of
// adapters/chattest (an httptest server on 127.0.0.1 answering the Web
// API as Slack documents it, 429 with Retry-After included), with its real
// per-channel outbox pacing.
func slackChannel(t *testing.T, f *chattest.Slack, interval time.Duration) *slackadapter.Adapter {
	t.Helper()
	sl, err := slackadapter.New(slackadapter.Options{BotToken: chattest.SlackBotToken, Mode: slackadapter.ModeEvents,
		SigningSecret: chattest.SlackSigningSecret, APIURL: f.URL(), PostInterval: interval, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx, nopHandler{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("slack adapter: %v", err)
		}
	})
	waitFor(t, "slack adapter running", sl.Running)
	return sl
}

// stormManager is a Manager on a SQLite store, with its webhook served.
type stormManager struct {
	m    *incident.Manager
	db   *store.DB
	rec  *audit.Recorder
	url  string
	stop func()
}

func startStormManager(t *testing.T, dir string, o incident.Options) *stormManager {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(db, audit.Options{})
	o.DB, o.Audit, o.Auth = db, rec, incident.Auth{BearerToken: e2eToken}
	m, err := incident.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	srv := httptest.NewServer(m.Handler())
	var once sync.Once
	s := &stormManager{m: m, db: db, rec: rec, url: srv.URL}
	s.stop = func() {
		once.Do(func() {
			srv.Close()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not stop within 30s")
			}
			if err := rec.Close(context.Background()); err != nil {
				t.Errorf("close audit: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("close db: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func (s *stormManager) post(t *testing.T, p incident.Payload) int {
	t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *stormManager) events(t *testing.T, typ audit.Type) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := s.rec.Each(context.Background(), audit.Filter{}, func(e audit.Event) error {
		if e.Type == typ {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stormGroup is one group of a storm: one firing alert of service svc.
func stormGroup(i int, status string) incident.Payload {
	svc := fmt.Sprintf("svc-%03d", i)
	a := incident.Alert{Status: status, Labels: map[string]string{"alertname": "StormAlert", "service": svc},
		Annotations: map[string]string{"summary": svc + " is failing"}, StartsAt: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC),
		Fingerprint: "fp-" + svc}
	if status == incident.Resolved {
		a.EndsAt = a.StartsAt.Add(10 * time.Minute)
	}
	return incident.Payload{Version: "4", GroupKey: "storm/" + svc, Status: status, Receiver: "parley",
		GroupLabels: map[string]string{"service": svc}, CommonLabels: map[string]string{"alertname": "StormAlert", "service": svc},
		CommonAnnotations: map[string]string{}, Alerts: []incident.Alert{a}}
}

var svcRE = regexp.MustCompile(`svc-\d{3}`)

// shownNow is what the channel shows: each message's latest content (its
// last update, else its post), by ts, in posting order.
func shownNow(f *chattest.Slack, channel string) (ts []string, content map[string]string) {
	posts, updates := f.Snapshot()
	content = map[string]string{}
	for _, p := range posts {
		if p.Channel == channel && p.Thread == "" {
			ts = append(ts, p.TS)
			content[p.TS] = p.Text + p.Blocks
		}
	}
	for _, u := range updates {
		if _, ok := content[u.TS]; ok && u.Channel == channel {
			content[u.TS] = u.Text + u.Blocks
		}
	}
	return ts, content
}

// accounted maps each service the channel shows to the messages showing
// it.
func accounted(f *chattest.Slack, channel string) map[string][]string {
	ts, content := shownNow(f, channel)
	out := map[string][]string{}
	for _, id := range ts {
		seen := map[string]bool{}
		for _, svc := range svcRE.FindAllString(content[id], -1) {
			if !seen[svc] {
				seen[svc] = true
				out[svc] = append(out[svc], id)
			}
		}
	}
	return out
}

// TestAlertStormIntoOnePacedChannel: 500 alert groups arrive at once for
// one Slack channel, delivered by the real Slack adapter (one message a
// second per channel, its outbox pacing) to the fake Slack, which also
// answers some posts 429 with Retry-After. The first group's message
// arrives at once; once three groups wait for their first message, the
// others are listed in alert-storm digests (25 groups a message, edited in
// place). Every group is accounted for, exactly once: in a message of its
// own or on a line of one digest, and audited incident.posted; none is
// given up or expired. Then every group resolves, and the channel shows
// all of them resolved.
func TestAlertStormIntoOnePacedChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("paced at Slack's one message a second: about a minute")
	}
	const groups = 500
	f := chattest.NewSlack(t)
	var limited atomic.Int64
	f.SetFail(func(method string, n int) (int, string, string) {
		if (method == "chat.postMessage" || method == "chat.update") && n%9 == 4 {
			limited.Add(1)
			return http.StatusTooManyRequests, "1", ""
		}
		return 0, "", ""
	})
	sl := slackChannel(t, f, time.Second) // Slack's pace, the adapter's default
	s := startStormManager(t, t.TempDir(), incident.Options{Sender: sl, DefaultChannel: "slack:C0STORM", QueueSize: 1024})

	start := time.Now()
	firstAt := make(chan time.Duration, 1)
	go func() { // the first chat.postMessage Slack takes, watched from the start
		for time.Since(start) < time.Minute {
			if posts, _ := f.Snapshot(); len(posts) > 0 {
				firstAt <- time.Since(start)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		firstAt <- -1
	}()
	var wg sync.WaitGroup
	var refused atomic.Int64
	next := make(chan int)
	for range 16 { // Alertmanager sends groups side by side
		wg.Go(func() {
			for i := range next {
				if code := s.post(t, stormGroup(i, incident.Firing)); code != http.StatusOK {
					refused.Add(1)
				}
			}
		})
	}
	for i := range groups {
		next <- i
	}
	close(next)
	wg.Wait()
	stored := time.Since(start)
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d notifications refused", n)
	}

	// Every notification merged: no group is placed after this. A group
	// gets a message of its own only while fewer than DigestAfter wait
	// for theirs, so at most DigestAfter more than the own messages Slack
	// had taken by now can exist, however fast or slow this machine is.
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM incident_inbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications still not merged after 5 minutes", n)
		}
	}
	ownBefore := 0
	early, _ := f.Snapshot()
	for _, p := range early {
		if p.Channel == "C0STORM" && p.Thread == "" && !bytes.Contains([]byte(p.Text+p.Blocks), []byte("Alert storm")) {
			ownBefore++
		}
	}

	first := <-firstAt
	if first < 0 {
		t.Fatal("no message within a minute of the storm")
	}
	deadline := time.Now().Add(5 * time.Minute)
	for len(accounted(f, "C0STORM")) < groups && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	allShown := time.Since(start)
	shown := accounted(f, "C0STORM")
	ts, content := shownNow(f, "C0STORM")
	own, digests, digested := 0, 0, 0
	for _, id := range ts {
		n := len(svcRE.FindAllString(content[id], -1))
		if bytes.Contains([]byte(content[id]), []byte("Alert storm")) {
			digests++
			digested += len(uniq(svcRE.FindAllString(content[id], -1)))
		} else if n > 0 {
			own++
		}
	}
	var missing, twice []string
	for i := range groups {
		svc := fmt.Sprintf("svc-%03d", i)
		switch len(shown[svc]) {
		case 0:
			missing = append(missing, svc)
		case 1:
		default:
			twice = append(twice, svc)
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("%d groups not shown (%v), %d shown in more than one message (%v)", len(missing), head(missing), len(twice), head(twice))
	}
	if own+digested != groups || digests == 0 || own > incident.DefaultDigestAfter+ownBefore {
		t.Errorf("%d groups posted on their own + %d listed in %d digests, want %d in all, at most %d on their own (%d+%d delivered while the storm was merged)",
			own, digested, digests, groups, incident.DefaultDigestAfter+ownBefore, incident.DefaultDigestAfter, ownBefore)
	}
	// The first message is a group's own.
	posts, _ := f.Snapshot()
	if bytes.Contains([]byte(posts[0].Text+posts[0].Blocks), []byte("Alert storm")) {
		t.Errorf("the first message of the storm is a digest:\n%s", posts[0].Text)
	}

	// Every group audited as shown, none given up.
	waitFor(t, "500 incident.posted events", func() bool {
		n := 0
		for _, e := range s.events(t, audit.IncidentPosted) {
			if e.Details["group_key"] != "" {
				n++
			}
		}
		return n >= groups
	})
	keys := map[string]int{}
	for _, e := range s.events(t, audit.IncidentPosted) {
		if k := e.Details["group_key"]; k != "" {
			keys[k]++
		}
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("group %s audited as posted %d times", k, n)
		}
	}
	if len(keys) != groups {
		t.Errorf("%d groups audited as posted, want %d", len(keys), groups)
	}
	for _, typ := range []audit.Type{audit.IncidentExpired, audit.ReplyFailed} {
		if n := len(s.events(t, typ)); n != 0 {
			t.Errorf("%d %s events, want none", n, typ)
		}
	}

	// The storm ends: every group resolves, and every line and message
	// says so.
	for i := range groups {
		if code := s.post(t, stormGroup(i, incident.Resolved)); code != http.StatusOK {
			t.Fatalf("resolution of group %d refused: %d", i, code)
		}
	}
	waitFor2(t, 5*time.Minute, "every message showing its groups resolved", func() bool {
		_, content := shownNow(f, "C0STORM")
		for _, c := range content {
			if bytes.Contains([]byte(c), []byte("[FIRING")) {
				return false
			}
		}
		return true
	})
	_, updates := f.Snapshot()
	t.Logf("storm of %d groups into one channel (Slack pace 1 message/s, %d answers 429): stored in %s; first message after %s; "+
		"all %d shown after %s: %d on their own (%d posted while the storm was merged), %d listed in %d digests; %d posts, %d updates in all",
		groups, limited.Load(), stored.Round(time.Millisecond), first.Round(time.Millisecond), groups, allShown.Round(time.Millisecond),
		own, ownBefore, digested, digests, len(posts), len(updates))
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func head(ss []string) []string {
	if len(ss) > 10 {
		return ss[:10]
	}
	return ss
}

func waitFor2(tb testing.TB, timeout time.Duration, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashBetweenPostAndRecordPostsOnce: the first post of a group
// reaches Slack, and the process dies before the message's ts is written
// (here the store refuses that one write, then the manager stops). The
// post was recorded as begun with its idempotency key, which the Slack
// adapter put in the message's metadata; the next manager finds the
// message in the channel's history (conversations.history) and edits it
// instead of posting a second one.
func TestCrashBetweenPostAndRecordPostsOnce(t *testing.T) {
	f := chattest.NewSlack(t)
	sl := slackChannel(t, f, 10*time.Millisecond)
	dir := t.TempDir()
	s1 := startStormManager(t, dir, incident.Options{Sender: sl, DefaultChannel: "slack:C0CRASH", RetryMax: 100 * time.Millisecond})
	// The write that records the message's ts fails; the one that records
	// the post as begun (no ts yet) goes through.
	if _, err := s1.db.ExecContext(context.Background(), `CREATE TRIGGER no_ts BEFORE UPDATE OF message_id ON incidents
		WHEN NEW.message_id != '' BEGIN SELECT RAISE(FAIL, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	if code := s1.post(t, stormGroup(7, incident.Firing)); code != http.StatusOK {
		t.Fatalf("post = %d", code)
	}
	f.WaitFor("the first post", func() bool { posts, _ := f.Snapshot(); return len(posts) == 1 })
	var key, msgID string
	waitFor(t, "the post recorded as begun", func() bool {
		err := s1.db.QueryRowContext(context.Background(), `SELECT post_key, message_id FROM incidents`).Scan(&key, &msgID)
		return err == nil && key != ""
	})
	s1.stop() // the crash: the ts was never written
	if msgID != "" {
		t.Fatalf("message id %q recorded; the test needs it missing", msgID)
	}
	posts, _ := f.Snapshot()
	if !bytes.Contains([]byte(posts[0].Metadata), []byte(key)) {
		t.Fatalf("the post's metadata %q does not carry the key %q", posts[0].Metadata, key)
	}

	db, err := store.Open(context.Background(), filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `DROP TRIGGER no_ts`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s2 := startStormManager(t, dir, incident.Options{Sender: sl, DefaultChannel: "slack:C0CRASH"})
	f.WaitFor("the found message edited", func() bool {
		_, updates := f.Snapshot()
		return len(updates) > 0 && updates[len(updates)-1].TS == posts[0].TS
	})
	waitFor(t, "the ts recorded", func() bool {
		err := s2.db.QueryRowContext(context.Background(), `SELECT message_id FROM incidents`).Scan(&msgID)
		return err == nil && msgID == posts[0].TS
	})
	if n := f.Calls("conversations.history"); n == 0 {
		t.Error("the history was not searched")
	}
	if posts, _ := f.Snapshot(); len(posts) != 1 {
		t.Errorf("%d posts, want the one made before the crash", len(posts))
	}
	// The event is recorded after the ts is written.
	waitFor(t, "the second manager's incident.posted saying the post was found", func() bool {
		for _, e := range s2.events(t, audit.IncidentPosted) {
			if e.Details["reconciled"] != "" {
				return true
			}
		}
		return false
	})
}
