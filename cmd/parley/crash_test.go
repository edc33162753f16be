package main

// The crash-point campaign: for every crash point on the path of a
// confirmed change (internal/crashpoint), the real binary, built with
// -tags crashpoints, is driven through a real conversation on one database,
// killed at the point (exit 137, as after kill -9), and restarted on the
// same database, where the users do what users do when they got no answer:
// confirm again, or confirm whatever is pending. Then the campaign proves:
//
//   - nothing ran twice, and nothing ran without a shown and granted
//     confirmation;
//   - every interrupted request ended in a clear, final state (no
//     confirmation left pending or executing) that the users were told;
//   - `parley audit verify` passes.
//
// The witness of what ran must survive the killed process, so the change
// goes to a real kube-apiserver (internal/testenv/kubetest) started with
// its audit log on: the API server records every write request it
// completes, including one that changes nothing (scaling 25 to 25 again),
// which the Deployment's generation alone would not show. Executions are
// the completed, non-dry-run updates of the deployment's scale
// subresource in that log; the Deployment's replicas cross-check them, and
// Parley's own audit log must agree. Each case scales its own deployment.
//
// It runs on SQLite, and on PostgreSQL when pgtest finds a server, one
// database per backend for all cases.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, to read the final states on PostgreSQL
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/crashpoint"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/policies"
)

// crashBin is the binary with crash points, built once per test binary
// into TestMain's directory.
var crashBin struct {
	once sync.Once
	path string
	err  error
}

func crashBinary(t *testing.T) string {
	t.Helper()
	crashBin.once.Do(func() {
		crashBin.path = filepath.Join(binDir, "parley-crashpoints")
		cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", crashBin.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			crashBin.err = fmt.Errorf("go build -tags crashpoints: %v\n%s", err, out)
		}
	})
	if crashBin.err != nil {
		t.Fatal(crashBin.err)
	}
	return crashBin.path
}

// campaignWait bounds each wait for the binary: far above the second or
// two a step takes, so only a hang reaches it.
const campaignWait = 90 * time.Second

// proc is one run of the binary as `parley chat --transcript -`, fed a line
// at a time.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *lockedBuffer
	exited chan struct{}
	code   int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProc(t *testing.T, bin, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, in: in, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill() // a hung run; the test has failed already
			<-p.exited
		}
	})
	return p
}

// say types a line as user in console:ops. A line to a process that has
// already stopped is lost, as it would be.
func (p *proc) say(user, text string) {
	if _, err := io.WriteString(p.in, user+"@ops: "+text+"\n"); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, os.ErrClosed) {
		p.t.Logf("writing to parley: %v", err)
	}
}

// waitFor waits until the output matches re and returns the match, or
// returns nil when the process exits without it.
func (p *proc) waitFor(re *regexp.Regexp) []string {
	p.t.Helper()
	deadline := time.After(campaignWait)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.exited:
			return re.FindStringSubmatch(p.out.String())
		case <-deadline:
			p.t.Fatalf("waiting for %q: gave up after %s; output:\n%s", re, campaignWait, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exit closes stdin (the end of the transcript) and returns the exit
// status.
func (p *proc) exit() int {
	p.t.Helper()
	p.in.Close()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(campaignWait):
		p.t.Fatalf("parley did not exit within %s; output:\n%s", campaignWait, p.out.String())
		return 0
	}
}

// crashCase is one crash point and what must come of it.
type crashCase struct {
	point crashpoint.Point
	// confirming: the point lies on bob's confirmation, not on alice's
	// request.
	confirming bool
	// then, when set, crashes the first restart too, at this point.
	then crashpoint.Point
	// runs is how many times the scale must have run in the end (0 or 1).
	runs int
	// final is the confirmation's state in the end; "" when none was
	// stored.
	final string
	// told must match what the users saw (CODE stands for the code).
	told string
	// slack: the conversation is on Slack (the Events API of a fake
	// Slack, `parley serve`), whose events are acknowledged before they
	// are handled, instead of the console.
	slack bool
}

func campaignCases() []crashCase {
	const (
		unanswered  = `Parley restarted before it answered your request "scale DEPLOY to 25 in prod"\. It was not finished and nothing was run`
		notShown    = `Parley restarted without knowing whether it showed you the confirmation prompt for [A-Z0-9]{4} \(DEPLOY replicas 3 -> 25\), so that request is cancelled\. Nothing was run`
		scaled      = `Scaled DEPLOY \(prod\) 3 -> 25\.`
		lostConfirm = `Parley restarted before it answered your request "confirm CODE"(.|\n)*` + scaled
		notStarted  = `Parley restarted after CODE \(DEPLOY replicas 3 -> 25\) was confirmed but before it started, so nothing was changed`
		unknown     = `Parley restarted while CODE \(DEPLOY replicas 3 -> 25\) was running, so whether it took effect is unknown`
		succeeded   = `Before Parley restarted, CODE \(DEPLOY replicas 3 -> 25\) ran and succeeded`
	)
	return []crashCase{
		// The console: the line was read, nothing is durable yet, nothing
		// can have run (the user saw Parley stop without an answer).
		{point: crashpoint.MessageTaken, runs: 0, final: "", told: `There is no pending request here that you can confirm`},
		// Slack acknowledged the event before Parley handled it, and will
		// not deliver it again: its claim and message.received commit
		// together, so the restart answers it, once.
		{point: crashpoint.MessageTaken, slack: true, runs: 0, final: "",
			told: `Parley restarted before it answered your request "<@` + chattest.SlackBotUserID + `> scale DEPLOY to 25 in prod"\. It was not finished and nothing was run`},
		{point: crashpoint.ConfirmationStored, runs: 0, final: "", told: unanswered},
		{point: crashpoint.ConfirmationRequested, runs: 0, final: "cancelled", told: notShown},
		{point: crashpoint.PromptSent, runs: 0, final: "cancelled", told: notShown},
		{point: crashpoint.PromptRecorded, runs: 1, final: "done", told: scaled},
		{point: crashpoint.ConfirmationClaimed, confirming: true, runs: 1, final: "done", told: lostConfirm},
		{point: crashpoint.ConfirmationGranted, confirming: true, runs: 0, final: "interrupted", told: notStarted},
		{point: crashpoint.ActionStarted, confirming: true, runs: 0, final: "interrupted", told: unknown},
		{point: crashpoint.ActionReturned, confirming: true, runs: 1, final: "interrupted", told: unknown},
		{point: crashpoint.ActionSucceeded, confirming: true, runs: 1, final: "done", told: succeeded},
		{point: crashpoint.ReplySent, confirming: true, runs: 1, final: "done", told: scaled + `(.|\n)*` + succeeded},
		{point: crashpoint.ConfirmationFinished, confirming: true, runs: 1, final: "done", told: scaled},
		// Crashes during recovery: the channel is told again, and the
		// settlement is recorded once.
		{point: crashpoint.ActionReturned, confirming: true, then: crashpoint.RecoverAnnounced, runs: 1, final: "interrupted",
			told: unknown + `(.|\n)*` + unknown},
		{point: crashpoint.ConfirmationStored, then: crashpoint.RecoverAnnounced, runs: 0, final: "",
			told: unanswered + `(.|\n)*` + unanswered},
		{point: crashpoint.PromptSent, then: crashpoint.RecoverAnnounced, runs: 0, final: "cancelled",
			told: notShown + `(.|\n)*` + notShown},
	}
}

// deployments names one deployment per case; plain words, so that no
// digit in a name is read as a replica count.
var deployments = []string{"alder", "birch", "cedar", "dogwood", "elm", "fir", "ginkgo", "hazel",
	"ivy", "juniper", "larch", "maple", "oak", "pine", "rowan", "spruce", "tamarack", "willow"}

// campaign is the shared set-up: one cluster with its audit log, and the
// binary.
type campaign struct {
	bin      string
	kc       *kubetest.Cluster
	auditLog string
	kubecfg  string
}

func TestCrashPointCampaign(t *testing.T) {
	cases := campaignCases()
	covered := map[crashpoint.Point]bool{}
	for _, c := range cases {
		covered[c.point], covered[c.then] = true, true
	}
	for _, p := range crashpoint.All() {
		if !covered[p] {
			t.Errorf("crash point %s has no case in the campaign", p)
		}
	}
	if len(cases) > len(deployments) {
		t.Fatalf("%d cases, %d deployment names", len(cases), len(deployments))
	}
	cp := &campaign{bin: crashBinary(t)}
	dir := t.TempDir()
	cp.auditLog = filepath.Join(dir, "kube-audit.log")
	policy := filepath.Join(dir, "kube-audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [update, patch]
    resources: [{group: apps, resources: [deployments, deployments/scale]}]
  - level: None
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cp.kc = kubetest.Start(t, kubetest.Options{APIServerArgs: []string{
		"--audit-log-path=" + cp.auditLog, "--audit-policy-file=" + policy, "--audit-log-mode=blocking",
	}})
	cp.kubecfg = cp.kc.Kubeconfig(t)

	backends := []struct {
		name   string
		config func(t *testing.T, dir string) (yaml string, env []string, driver, dsn string)
	}{
		{"sqlite", func(t *testing.T, dir string) (string, []string, string, string) {
			db := filepath.Join(dir, "parley.db")
			return "database: " + db + "\n", nil, "sqlite", db
		}},
		{"postgres", func(t *testing.T, dir string) (string, []string, string, string) {
			dsn := pgtest.Start(t)
			return "store: {driver: postgres, dsn: {env: PARLEY_CAMPAIGN_DSN}}\n", []string{"PARLEY_CAMPAIGN_DSN=" + dsn}, "pgx", dsn
		}},
	}
	// The default policy's rules name prod; each backend scales its own
	// deployments there.
	cp.kc.CreateNamespace(t, "prod")
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			dir := t.TempDir()
			storeYAML, env, driver, dsn := bk.config(t, dir)
			cfg := filepath.Join(dir, "parley.yaml")
			yml := storeYAML + fmt.Sprintf("kubernetes: {kubeconfig: %q}\nevals: {dir: %q, reports_dir: %q}\n",
				cp.kubecfg, filepath.Join(dir, "evals"), filepath.Join(dir, "reports"))
			if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			run := &campaignRun{campaign: cp, dir: dir, config: cfg, storeYAML: storeYAML, env: env, db: db, backend: bk.name}
			for j, c := range cases {
				deploy := fmt.Sprintf("%s-%s", deployments[j], bk.name[:2])
				name := string(c.point)
				if c.then != "" {
					name += "+" + string(c.then)
				}
				if c.slack {
					t.Run(name+"/slack", func(t *testing.T) { run.oneSlack(t, c, deploy) })
					continue
				}
				t.Run(name, func(t *testing.T) { run.one(t, c, deploy) })
			}
			if out, code := runBin(t, dir, binPath, env, "audit", "verify", "--config", cfg); code != 0 {
				t.Errorf("audit verify after the campaign exited %d:\n%s", code, out)
			}
		})
	}
}

// campaignRun is the campaign on one backend.
type campaignRun struct {
	*campaign
	dir, config, backend string
	storeYAML            string // the store's part of the configuration
	env                  []string
	db                   *sql.DB
}

var promptRE = regexp.MustCompile(`must reply "confirm ([A-Z0-9]{4})"`)

// deploy creates the case's deployment, 3 replicas.
func (r *campaignRun) deploy(t *testing.T, deploy string) {
	t.Helper()
	r.kc.ApplyYAML(t, "prod", fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  replicas: 3
  strategy: {type: Recreate}
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: app, image: "shop/%[1]s:1.0"}]}
`, deploy))
}

// one runs a case: crash, (crash again,) restart, check.
func (r *campaignRun) one(t *testing.T, c crashCase, deploy string) {
	r.deploy(t, deploy)
	chat := []string{"chat", "--transcript", "-", "--config", r.config}
	var seen strings.Builder // everything the users saw, in order

	// 1. Alice asks for a big prod scale, which bob must confirm; the
	// binary stops at the point.
	p := startProc(t, r.bin, r.dir, append(r.env, "PARLEY_CRASH_AT="+string(c.point)), chat...)
	p.say("alice", "scale "+deploy+" to 25 in prod")
	code := ""
	if c.confirming {
		m := p.waitFor(promptRE)
		if m == nil {
			t.Fatalf("no confirmation prompt before the crash point; output:\n%s", p.out.String())
		}
		code = m[1]
		p.say("bob", "confirm "+code)
	} else if m := p.waitFor(promptRE); m != nil {
		code = m[1] // the prompt was shown before the point
	}
	if status := p.exit(); status != crashpoint.ExitCode {
		t.Fatalf("parley exited %d, want %d at %s; output:\n%s", status, crashpoint.ExitCode, c.point, p.out.String())
	}
	seen.WriteString(p.out.String())

	// 2. Optionally, the restart stops too, while recovering.
	if c.then != "" {
		p := startProc(t, r.bin, r.dir, append(r.env, "PARLEY_CRASH_AT="+string(c.then)), chat...)
		if status := p.exit(); status != crashpoint.ExitCode {
			t.Fatalf("the restart exited %d, want %d at %s; output:\n%s", status, crashpoint.ExitCode, c.then, p.out.String())
		}
		seen.WriteString(p.out.String())
	}

	// 3. Restart. Bob, who saw no outcome, confirms again: the code he was
	// shown, or else whatever is pending (the orphan a crash could leave).
	// Then once more, bare: nothing may be left to confirm.
	p = startProc(t, r.bin, r.dir, r.env, chat...)
	if code != "" {
		p.say("bob", "confirm "+code)
	} else {
		p.say("bob", "confirm")
	}
	p.say("bob", "confirm")
	if status := p.exit(); status != 0 {
		t.Fatalf("the restart exited %d; output:\n%s", status, p.out.String())
	}
	seen.WriteString(p.out.String())
	out := seen.String()
	if !strings.HasSuffix(strings.TrimSpace(out), "There is no pending request here that you can confirm. Nothing was run.") {
		t.Errorf("a last bare confirm found something to act on; output:\n%s", out)
	}

	// What the users were told.
	want := strings.NewReplacer("DEPLOY", deploy, "CODE", code).Replace(c.told)
	if !regexp.MustCompile(want).MatchString(out) {
		t.Errorf("the users were not told %q; output:\n%s", want, out)
	}

	// What ran, by the API server's own record, and by the deployment.
	runs := r.scaleWrites(t, deploy)
	if runs > 1 {
		t.Errorf("the scale ran %d times", runs)
	}
	if runs != c.runs {
		t.Errorf("the scale ran %d times, want %d; output:\n%s", runs, c.runs, out)
	}
	d, err := r.kc.AdminClient().AppsV1().Deployments("prod").Get(context.Background(), deploy, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]int32{true: 25, false: 3}[runs > 0]; *d.Spec.Replicas != want {
		t.Errorf("%s has %d replicas after %d runs, want %d", deploy, *d.Spec.Replicas, runs, want)
	}

	// Parley's audit log and confirmations agree.
	events := r.auditEvents(t, deploy)
	var requested, granted, started, succeeded []auditLine
	for _, e := range events {
		switch e.Type {
		case "confirmation.requested":
			requested = append(requested, e)
		case "confirmation.granted":
			granted = append(granted, e)
		case "action.started":
			started = append(started, e)
		case "action.succeeded":
			succeeded = append(succeeded, e)
		}
	}
	if len(started) > 1 || len(succeeded) > 1 || len(granted) > 1 {
		t.Errorf("audit: %d action.started, %d action.succeeded, %d confirmation.granted; want at most one each",
			len(started), len(succeeded), len(granted))
	}
	if runs > 0 {
		// Ran: only after a prompt the users saw and bob's recorded grant.
		if code == "" || !strings.Contains(out, `must reply "confirm `+code+`"`) {
			t.Errorf("the scale ran without its prompt having been shown; output:\n%s", out)
		}
		switch {
		case len(requested) != 1 || len(granted) != 1 || len(started) != 1:
			t.Errorf("the scale ran with %d confirmation.requested, %d confirmation.granted, %d action.started",
				len(requested), len(granted), len(started))
		case granted[0].Subject != "console:bob" || granted[0].ConfirmationID != requested[0].ConfirmationID ||
			started[0].ConfirmationID != granted[0].ConfirmationID || started[0].Seq < granted[0].Seq:
			t.Errorf("the grant does not cover the run: requested %+v, granted %+v, started %+v", requested[0], granted[0], started[0])
		}
	}
	states := r.confirmationStates(t, deploy)
	switch {
	case c.final == "" && len(states) != 0:
		t.Errorf("confirmations %v, want none stored", states)
	case c.final != "" && (len(states) != 1 || states[0] != c.final):
		t.Errorf("confirmations %v, want one, %s", states, c.final)
	}
}

// oneSlack runs a case on Slack: alice's request arrives as an Events API
// event at `parley serve`, which acknowledges it (200) and stops at the
// point; a restart must tell her what became of it, in its thread, once,
// even when the event is delivered again.
func (r *campaignRun) oneSlack(t *testing.T, c crashCase, deploy string) {
	r.deploy(t, deploy)
	f := chattest.NewSlack(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	users := strings.NewReplacer("console:alice", "slack:UALICE", "console:bob", "slack:UBOB")
	if err := os.WriteFile(pol, []byte(users.Replace(string(policies.Default()))), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "parley.yaml")
	yml := r.storeYAML + fmt.Sprintf(`listen: %q
policy: %q
kubernetes: {kubeconfig: %q}
evals: {dir: %q, reports_dir: %q}
slack:
  mode: events
  bot_token: {env: SLACK_BOT_TOKEN}
  signing_secret: {env: SLACK_SIGNING_SECRET}
  api_url: %q
`, addr, pol, r.kubecfg, filepath.Join(dir, "evals"), filepath.Join(dir, "reports"), f.URL())
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"SLACK_BOT_TOKEN=" + chattest.SlackBotToken, "SLACK_SIGNING_SECRET=" + chattest.SlackSigningSecret}, r.env...)
	serve := func(crashAt string) *proc {
		t.Helper()
		p := startProc(t, r.bin, dir, append(env, "PARLEY_CRASH_AT="+crashAt), "serve", "--config", cfg)
		client := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(campaignWait)
		for {
			resp, err := client.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return p
				}
			}
			select {
			case <-p.exited:
				t.Fatalf("parley serve exited %d before it was ready:\n%s", p.code, p.out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("parley serve not ready within %s:\n%s", campaignWait, p.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const thread = "1700000100.000100"
	event := chattest.SlackEvent("Ev"+deploy, chattest.SlackMention("C1", "UALICE",
		"<@"+chattest.SlackBotUserID+"> scale "+deploy+" to 25 in prod", thread, ""))
	deliver := func() {
		t.Helper()
		req := chattest.SlackRequest(t, "http://"+addr+"/slack/events", "application/json", event, chattest.SlackSigningSecret, time.Now().Unix())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the event was answered %d, want 200 (acknowledged)", resp.StatusCode)
		}
	}
	inThread := func() string {
		posts, _ := f.Snapshot()
		var b strings.Builder
		for _, p := range posts {
			if p.Thread == thread {
				b.WriteString(p.Text + "\n")
			}
		}
		for _, p := range f.Ephemerals() {
			if p.Thread == thread {
				b.WriteString(p.Text + "\n")
			}
		}
		return b.String()
	}

	var runs []*proc
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, p := range runs {
			t.Logf("parley serve, run %d:\n%s", i+1, p.out.String())
		}
		posts, _ := f.Snapshot()
		for _, p := range append(posts, f.Ephemerals()...) {
			t.Logf("slack post in %s thread %s: %s", p.Channel, p.Thread, p.Text)
		}
	})

	// 1. The event is acknowledged; the process stops at the point.
	p := serve(string(c.point))
	runs = append(runs, p)
	deliver()
	select {
	case <-p.exited:
	case <-time.After(campaignWait):
		t.Fatalf("parley serve did not reach %s:\n%s", c.point, p.out.String())
	}
	if p.code != crashpoint.ExitCode {
		t.Fatalf("parley serve exited %d, want %d at %s:\n%s", p.code, crashpoint.ExitCode, c.point, p.out.String())
	}

	// 2. The restart tells alice; Slack delivering the event again (as
	// after a failover) changes nothing.
	p = serve("")
	runs = append(runs, p)
	want := regexp.MustCompile(strings.NewReplacer("DEPLOY", deploy).Replace(c.told))
	f.WaitFor("the restart to answer the acknowledged request", func() bool { return want.MatchString(html.UnescapeString(inThread())) })
	deliver()
	time.Sleep(time.Second) // what a second handling would take, and more
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(campaignWait):
		t.Fatalf("parley serve did not stop:\n%s", p.out.String())
	}
	if p.code != 0 {
		t.Errorf("parley serve exited %d after SIGTERM:\n%s", p.code, p.out.String())
	}
	told := html.UnescapeString(inThread())
	if n := len(want.FindAllString(told, -1)); n != 1 {
		t.Errorf("alice was told %d times, want once:\n%s", n, told)
	}
	if strings.Contains(told, "confirm") {
		t.Errorf("the redelivered event was handled again:\n%s", told)
	}

	if runs := r.scaleWrites(t, deploy); runs != c.runs {
		t.Errorf("the scale ran %d times, want %d", runs, c.runs)
	}
	if states := r.confirmationStates(t, deploy); len(states) != 0 {
		t.Errorf("confirmations %v, want none stored", states)
	}
	// The log holds the request once, and its end.
	out, code := runBin(t, dir, binPath, env, "audit", "export", "--format", "jsonl", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, out)
	}
	var received, interrupted []auditLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e auditLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit export line %q: %v", l, err)
		}
		switch {
		case e.Type == "message.received" && strings.Contains(e.Text, "scale "+deploy+" "):
			received = append(received, e)
		case e.Type == "request.interrupted":
			interrupted = append(interrupted, e)
		}
	}
	if len(received) != 1 {
		t.Fatalf("message.received of the request: %d, want 1", len(received))
	}
	n := 0
	for _, e := range interrupted {
		if e.RequestID == received[0].RequestID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("request.interrupted of the request: %d, want 1", n)
	}
}

// scaleWrites counts the completed, non-dry-run writes to the deployment's
// scale in the API server's audit log.
func (r *campaignRun) scaleWrites(t *testing.T, deploy string) int {
	t.Helper()
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Stage      string `json:"stage"`
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			ObjectRef  struct {
				Namespace, Name, Resource, Subresource string
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("kube audit log: %v", err)
		}
		if e.Stage == "ResponseComplete" && e.ObjectRef.Namespace == "prod" && e.ObjectRef.Name == deploy &&
			e.ObjectRef.Subresource == "scale" && (e.Verb == "update" || e.Verb == "patch") &&
			e.ResponseStatus.Code/100 == 2 && !strings.Contains(e.RequestURI, "dryRun") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// auditLine is an exported audit event, as far as the campaign reads it.
type auditLine struct {
	Seq            int64             `json:"seq"`
	Type           string            `json:"type"`
	RequestID      string            `json:"request_id"`
	Text           string            `json:"text"`
	Subject        string            `json:"subject"`
	ConfirmationID string            `json:"confirmation_id"`
	Params         map[string]any    `json:"params"`
	Details        map[string]string `json:"details"`
}

// auditEvents exports the audit log with the release binary and returns
// the events about deploy.
func (r *campaignRun) auditEvents(t *testing.T, deploy string) []auditLine {
	t.Helper()
	out, code := runBin(t, r.dir, binPath, r.env, "audit", "export", "--format", "jsonl", "--config", r.config)
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, out)
	}
	var evs []auditLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e auditLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit export line %q: %v", l, err)
		}
		if e.Params["deployment"] == deploy {
			evs = append(evs, e)
		}
	}
	return evs
}

// confirmationStates reads the states of deploy's confirmations.
func (r *campaignRun) confirmationStates(t *testing.T, deploy string) []string {
	t.Helper()
	q := `SELECT state FROM confirmations WHERE params LIKE '%"deployment":"` + deploy + `"%'`
	rows, err := r.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// runBin runs a binary to the end with extra environment.
func runBin(t *testing.T, dir, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatal(err)
		return "", 0
	}
}

// TestCrashPointsOnlyInTestBuilds: the release binary (scripts/build.sh,
// which TestMain builds) ignores PARLEY_CRASH_AT, whatever it names; the
// crashpoints build lists its points and refuses an unknown one.
func TestCrashPointsOnlyInTestBuilds(t *testing.T) {
	dir := t.TempDir()
	out, code := runBin(t, dir, binPath, []string{"PARLEY_CRASH_AT=list"}, "version")
	if code != 0 || out != "parley "+e2eVersion+"\n" {
		t.Errorf("release binary, PARLEY_CRASH_AT=list version: exit %d, %q; want only the version", code, out)
	}
	if out, code := runBin(t, dir, binPath, []string{"PARLEY_CRASH_AT=no-such-point"}, "version"); code != 0 {
		t.Errorf("release binary with an unknown crash point: exit %d\n%s", code, out)
	}
	// Every point armed at once cannot be, so arm each in turn on the
	// path it sits on: a full confirmed change and a restart.
	for _, p := range crashpoint.All() {
		db := filepath.Join(dir, string(p)+".db")
		transcript := "alice@ops: scale checkout to 25 in prod\nbob@ops: confirm\n"
		cmd := exec.Command(binPath, "chat", "--transcript", "-", "--db", db)
		cmd.Env = append(os.Environ(), "PARLEY_CRASH_AT="+string(p))
		cmd.Stdin = strings.NewReader(transcript)
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), "Scaled checkout (prod) 3 -> 25.") {
			t.Errorf("release binary with PARLEY_CRASH_AT=%s: %v\n%s", p, err, got)
		}
	}

	bin := crashBinary(t)
	out, code = runBin(t, dir, bin, []string{"PARLEY_CRASH_AT=list"}, "version")
	var want strings.Builder
	for _, p := range crashpoint.All() {
		want.WriteString(string(p) + "\n")
	}
	if code != 0 || out != want.String() {
		t.Errorf("crashpoints binary, PARLEY_CRASH_AT=list version: exit %d\n%s\nwant\n%s", code, out, want.String())
	}
	if out, code := runBin(t, dir, bin, []string{"PARLEY_CRASH_AT=no-such-point"}, "version"); code != 2 || !strings.Contains(out, "unknown crash point") {
		t.Errorf("crashpoints binary with an unknown point: exit %d\n%s", code, out)
	}
}
