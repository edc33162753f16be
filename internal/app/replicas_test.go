package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/logtest"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/policies"
)

// serveReplica is one "parley serve" process, run in-process with Main
// exactly as the binary runs it.
type serveReplica struct {
	name string
	url  string
	logs *logtest.Buffer
	stop func()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServe runs "parley serve --config FILE" for one replica of a
// deployment on the shared PostgreSQL store, with leader election on the
// test cluster's Lease and the Slack Events API against the fake Slack.
func startServe(t *testing.T, name, dsn, kubeconfig, ns, slackURL string, extra ...string) *serveReplica {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	users := strings.NewReplacer("console:alice", "slack:"+failoverUser, "console:bob", "slack:UBOB", "console:carol", "slack:UCAROL")
	if err := os.WriteFile(pol, []byte(users.Replace(string(policies.Default()))), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
store: {driver: postgres, dsn: {env: PARLEY_TEST_DSN}}
policy: %q
evals: {reports_dir: %q}
log: {level: debug}
slack:
  mode: events
  bot_token: {env: SLACK_BOT_TOKEN}
  signing_secret: {env: SLACK_SIGNING_SECRET}
  api_url: %q
channels: [{id: "slack:C0BOUND", namespace: prod}]
leader_election:
  lease_name: parley
  lease_namespace: %s
  identity: %s
  lease_duration: 2s
  renew_deadline: 1500ms
  retry_period: 300ms
  kubeconfig: %q
`, port, pol, dir, slackURL, ns, name, kubeconfig)+strings.Join(extra, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PARLEY_TEST_DSN": dsn, "SLACK_BOT_TOKEN": chattest.SlackBotToken, "SLACK_SIGNING_SECRET": chattest.SlackSigningSecret,
		"AM_TOKEN": amToken}
	return launch(t, name, cfg, port, env)
}

// launch runs "parley serve --config cfg" in process, as the binary runs
// it, and waits until it answers /readyz (the server listens on port).
func launch(t *testing.T, name, cfg string, port int, env map[string]string) *serveReplica {
	t.Helper()
	r := &serveReplica{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &logtest.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--config", cfg}, Env{Stdout: io.Discard, Stderr: r.logs, Getenv: func(k string) string { return env[k] }})
	}()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("replica %s exited %d:\n%s", name, code, r.logs.String())
				}
			case <-time.After(failoverWait):
				t.Errorf("replica %s did not stop", name)
			}
		})
	}
	t.Cleanup(r.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica %s log:\n%s", name, r.logs.String())
		}
	})
	deadline := time.Now().Add(failoverWait)
	for {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case code := <-done:
			t.Fatalf("replica %s exited %d before it was ready:\n%s", name, code, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready:\n%s", name, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends a request signed as Slack signs it at ts to the replica's
// /slack/events and returns the status.
func (r *serveReplica) post(t *testing.T, contentType, body, secret string, ts time.Time) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(chattest.SlackRequest(t, r.url+"/slack/events", contentType, body, secret, ts.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	drain(t, resp)
	return resp.StatusCode
}

// toBoth delivers the same request to both replicas at once, as Slack may
// when it retries a delivery it saw no answer for in time (the second
// lands on the other replica behind the Service), and wants 200 from each.
func toBoth(t *testing.T, a, b *serveReplica, contentType, body string) {
	t.Helper()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, r := range []*serveReplica{a, b} {
		wg.Go(func() { codes[i] = r.post(t, contentType, body, chattest.SlackSigningSecret, time.Now()) })
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("replicas answered %v, want 200 from both", codes)
	}
}

// TestTwoReplicasServeTheEventsAPI: two "parley serve" replicas on one
// PostgreSQL behind the Slack Events API (leader election on, so one of
// them is a follower). Every event, click and slash command is accepted
// by either replica with 200 and handled exactly once, whichever replica
// it reaches or however often; a forged or stale request is 401 on both.
func TestTwoReplicasServeTheEventsAPI(t *testing.T) {
	kc := kubetest.Shared(t)
	dsn := pgtest.Start(t)
	kubeconfig := kc.Kubeconfig(t)
	ns := kc.NewNamespace(t, "events")
	f := chattest.NewSlack(t)
	t.Cleanup(func() {
		if t.Failed() {
			all, _ := f.Snapshot()
			for _, p := range all {
				t.Logf("posted %s thread=%s: %s", p.TS, p.Thread, p.Text)
			}
			for _, p := range f.Ephemerals() {
				t.Logf("ephemeral for %s thread=%s: %s", p.User, p.Thread, p.Text)
			}
		}
	})
	a := startServe(t, "a", dsn, kubeconfig, ns, f.URL())
	b := startServe(t, "b", dsn, kubeconfig, ns, f.URL())

	const js, form = "application/json", "application/x-www-form-urlencoded"
	mention := "<@" + chattest.SlackBotUserID + "> "
	posts := func(thread, want string) int {
		n := 0
		all, _ := f.Snapshot()
		for _, p := range all {
			if p.Thread == thread && strings.Contains(p.Text+p.Blocks, want) {
				n++
			}
		}
		return n
	}

	// A read, delivered to both replicas (Slack's retry of one event).
	read := chattest.SlackEvent("EvRead", chattest.SlackMention("C1", failoverUser, mention+"status of checkout in prod", "1700000001.000100", ""))
	toBoth(t, a, b, js, read)
	f.WaitFor("the status answer", func() bool { return posts("1700000001.000100", "checkout (prod)") == 1 })

	// One message in a bound channel arrives as app_mention and as message,
	// with different event ids, one at each replica.
	if code := a.post(t, js, chattest.SlackEvent("EvMention", chattest.SlackMention("C0BOUND", failoverUser, mention+"status of payments in prod", "1700000002.000100", "")), chattest.SlackSigningSecret, time.Now()); code != http.StatusOK {
		t.Fatalf("app_mention event: %d", code)
	}
	if code := b.post(t, js, chattest.SlackEvent("EvMessage", chattest.SlackMessage("C0BOUND", "channel", failoverUser, mention+"status of payments in prod", "1700000002.000100", "")), chattest.SlackSigningSecret, time.Now()); code != http.StatusOK {
		t.Fatalf("message event: %d", code)
	}
	f.WaitFor("the payments answer", func() bool { return posts("1700000002.000100", "payments (prod)") == 1 })

	// A change: the prompt, then the same click at both replicas.
	toBoth(t, a, b, js, chattest.SlackEvent("EvScale", chattest.SlackMention("C1", failoverUser, mention+"scale checkout to 5 in prod", "1700000003.000100", "")))
	f.WaitFor("the prompt", func() bool { return posts("1700000003.000100", "This changes prod") == 1 })
	var prompt chattest.SlackCall
	all, _ := f.Snapshot()
	for _, p := range all {
		if p.Thread == "1700000003.000100" && strings.Contains(p.Text, "This changes prod") {
			prompt = p
		}
	}
	id := confirmationValue(t, prompt.Blocks)
	// A person clicks once the prompt is on screen, and Parley records it
	// as shown right after posting it; the test clicks only then too.
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitUntil(t, "the prompt recorded as shown", func() bool {
		var shown int64
		err := raw.QueryRow(`SELECT shown_at FROM confirmations WHERE id = $1`, id).Scan(&shown)
		return err == nil && shown > 0
	})
	click := chattest.Interactive(chattest.SlackClick(failoverUser, "C1", prompt.TS, "1700000003.000100", "parley_confirm", id, "1700000010.000001"))
	toBoth(t, a, b, form, click)
	f.WaitFor("the result", func() bool { return posts("1700000003.000100", "Scaled checkout (prod) 3 -&gt; 5") == 1 })

	// A slash command at the follower's door as well as the leader's.
	slash := chattest.SlackCommand{User: failoverUser, Channel: "C1", Text: "status of checkout in staging", TriggerID: "9.9.slash", ResponseURL: f.ResponseURL("s")}.Form().Encode()
	toBoth(t, a, b, form, slash)
	var anchor string
	f.WaitFor("the slash command's answer", func() bool {
		all, _ := f.Snapshot()
		for _, p := range all {
			if strings.Contains(p.Text, "asked: /parley status of checkout in staging") {
				anchor = p.TS
			}
		}
		return anchor != "" && posts(anchor, "checkout (staging)") == 1
	})

	// Forged or stale requests: 401 on either replica.
	for _, r := range []*serveReplica{a, b} {
		if code := r.post(t, js, read, "not-the-secret", time.Now()); code != http.StatusUnauthorized {
			t.Errorf("%s: forged event answered %d, want 401", r.name, code)
		}
		if code := r.post(t, form, click, chattest.SlackSigningSecret, time.Now().Add(-10*time.Minute)); code != http.StatusUnauthorized {
			t.Errorf("%s: stale click answered %d, want 401", r.name, code)
		}
	}

	// Wait for stragglers, then count: each request handled exactly once.
	time.Sleep(500 * time.Millisecond)
	counts := map[string]int{"checkout (prod)": posts("1700000001.000100", "checkout (prod)"), "payments (prod)": posts("1700000002.000100", "payments (prod)"),
		"prompt": posts("1700000003.000100", "This changes prod"), "scaled": posts("1700000003.000100", "Scaled checkout"), "anchor": 0}
	all, _ = f.Snapshot()
	for _, p := range all {
		if strings.Contains(p.Text, "asked: /parley") {
			counts["anchor"]++
		}
	}
	for what, n := range counts {
		if n != 1 {
			t.Errorf("%s posted %d times, want once", what, n)
		}
	}
	db, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := audit.New(db, audit.Options{}).List(context.Background(), audit.Filter{Types: []audit.Type{audit.ActionStarted, audit.MessageReceived}})
	if err != nil {
		t.Fatal(err)
	}
	byType := map[audit.Type]int{}
	for _, e := range evs {
		byType[e.Type]++
	}
	// Four messages (read, bound-channel message, scale, slash) and a click;
	// four actions run (three reads and the scale).
	if byType[audit.MessageReceived] != 5 || byType[audit.ActionStarted] != 4 {
		t.Errorf("audit: %d messages received, %d actions started; want 5 and 4", byType[audit.MessageReceived], byType[audit.ActionStarted])
	}
	for _, r := range []*serveReplica{a, b} {
		if strings.Contains(r.logs.String(), chattest.SlackBotToken) || strings.Contains(r.logs.String(), chattest.SlackSigningSecret) {
			t.Errorf("%s logged a secret", r.name)
		}
	}
}

// confirmationValue is the value of the prompt's Confirm button.
func confirmationValue(t *testing.T, blocks string) string {
	t.Helper()
	var bs []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(blocks), &bs); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID == "parley_confirm" {
				return e.Value
			}
		}
	}
	t.Fatalf("no Confirm button in %s", blocks)
	return ""
}
