package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
)

// binPath is the release binary, built once by TestMain with
// scripts/build.sh, exactly as it ships; binDir holds it and the test
// builds (crash points).
var binPath, binDir string

// e2eVersion is the version baked into the binary under test.
const e2eVersion = "e2e-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-e2e")
	if err != nil {
		panic(err)
	}
	binDir, binPath = dir, filepath.Join(dir, "parley")
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "build.sh"), binPath)
	cmd.Env = append(os.Environ(), "VERSION="+e2eVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("scripts/build.sh: " + err.Error() + "\n" + string(out))
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the test cluster:", err)
	}
	os.Exit(code)
}

func parley(*testing.T) string { return binPath }

func run(t *testing.T, dir, bin string, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestBinaryTranscriptAuditVerify runs the compiled binary the way the
// README does: a scripted conversation between several people, then the
// audit log, its verification, and verification after a hand edit.
func TestBinaryTranscriptAuditVerify(t *testing.T) {
	bin := parley(t)
	dir := t.TempDir()
	transcript := strings.Join([]string{
		"# a refusal, a confirmed change, a second confirm",
		"eve@ops: scale checkout to 5 in prod",
		"alice@ops: status of checkout in prod",
		"alice@ops: scale checkout to 5 in prod",
		"alice@ops: confirm",
		"alice@ops: confirm",
		"bob@ops: status of checkout in prod",
	}, "\n") + "\n"
	out, code := run(t, dir, bin, transcript, "chat", "--transcript", "-")
	if code != 0 {
		t.Fatalf("chat exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"may not run kubernetes.scale",
		"checkout (prod): 3/3 ready, image shop/checkout:1.4.2, revision 4",
		"This changes prod: checkout replicas 3 -> 5.",
		"Scaled checkout (prod) 3 -> 5.",
		"no pending request here that you can confirm",
		"checkout (prod): 5/5 ready",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "Scaled checkout") != 1 {
		t.Errorf("scale ran %d times, want once:\n%s", strings.Count(out, "Scaled checkout"), out)
	}

	list, code := run(t, dir, bin, "", "audit", "export", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, list)
	}
	types := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var e struct {
			Type    string `json:"type"`
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad jsonl line %q: %v", line, err)
		}
		types[e.Type]++
	}
	for _, typ := range []string{"message.received", "intent.routed", "policy.decided", "confirmation.requested",
		"confirmation.granted", "action.started", "action.succeeded", "input.rejected"} {
		if types[typ] == 0 {
			t.Errorf("audit log has no %s event: %v", typ, types)
		}
	}

	if out, code := run(t, dir, bin, "", "audit", "verify"); code != 0 {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
	db := filepath.Join(dir, ".parley", "parley.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
	// A hand edit, as someone with access to the file would make it.
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit_events SET subject = 'console:mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if out, code := run(t, dir, bin, "", "audit", "verify"); code != 1 {
		t.Fatalf("verify after a hand edit exited %d, want 1:\n%s", code, out)
	}
}

// TestBinaryClassifyContract checks the stable classify CLI contract.
func TestBinaryClassifyContract(t *testing.T) {
	bin := parley(t)
	dir := t.TempDir()
	inv := "namespaces: [prod, staging]\ndeployments: {prod: [checkout, payments], staging: [checkout]}\nservices: [checkout, payments]\n"
	if err := os.WriteFile(filepath.Join(dir, "inv.yaml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	in := `{"text": "scale checkout to 5 in prod"}` + "\n" + `{"text": "delete the prod database"}` + "\nnot json\n"
	out, code := run(t, dir, bin, in, "classify", "--inventory", "inv.yaml", "--jsonl")
	if code != 0 {
		t.Fatalf("classify exited %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 output lines, got %d:\n%s", len(lines), out)
	}
	var first struct {
		Text       string         `json:"text"`
		Action     string         `json:"action"`
		Params     map[string]any `json:"params"`
		Confidence float64        `json:"confidence"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Action != "kubernetes.scale" || first.Params["deployment"] != "checkout" ||
		first.Params["namespace"] != "prod" || first.Params["replicas"] != float64(5) || first.Confidence <= 0 {
		t.Errorf("first line = %+v", first)
	}
	if !strings.Contains(lines[1], `"action":"none"`) {
		t.Errorf("dangerous request not none: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"error"`) {
		t.Errorf("bad line has no error: %s", lines[2])
	}
}

// TestBinaryServeHealthAndShutdown starts `parley serve`, checks health
// and readiness over HTTP, and stops it with SIGTERM.
func TestBinaryServeHealthAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := "listen: " + addr + "\ndatabase: " + filepath.Join(dir, "p.db") + "\nlog: {format: json}\n"
	if err := os.WriteFile(filepath.Join(dir, "parley.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, dir, binPath, "", "config", "validate", "--config", "parley.yaml"); code != 0 {
		t.Fatalf("config validate exited %d:\n%s", code, out)
	}
	cmd := exec.Command(binPath, "serve", "--config", "parley.yaml")
	cmd.Dir = dir
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 20s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// The image's HEALTHCHECK: the binary asks the server it shares a
	// configuration with (distroless has no curl).
	for _, args := range [][]string{{"healthcheck", "--config", "parley.yaml"}, {"healthcheck", "--ready", "--config", "parley.yaml"}} {
		if out, code := run(t, dir, binPath, "", args...); code != 0 || !strings.Contains(out, addr) {
			t.Errorf("%v exited %d:\n%s", args, code, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15s of SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"parley stopped"`) {
		t.Errorf("no structured shutdown log:\n%s", logs.String())
	}
	checkJSONLogs(t, logs.String())
	// Nothing answers any more: the health check fails, saying why.
	if out, code := run(t, dir, binPath, "", "healthcheck", "--config", "parley.yaml", "--timeout", "2s"); code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("healthcheck of a stopped server exited %d:\n%s", code, out)
	}
}

// checkJSONLogs: every line on stderr is one JSON object with each key
// once (log collectors keep the first or the last of a repeated key,
// depending on the collector).
func checkJSONLogs(t *testing.T, logs string) {
	t.Helper()
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		tok, err := dec.Token()
		if err != nil || tok != json.Delim('{') {
			t.Errorf("log line %d is not a JSON object: %s", i+1, line)
			continue
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Errorf("log line %d: %v: %s", i+1, err, line)
				break
			}
			key := k.(string)
			if seen[key] {
				t.Errorf("log line %d repeats key %q: %s", i+1, key, line)
			}
			seen[key] = true
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Errorf("log line %d: %v", i+1, err)
				break
			}
		}
	}
}

// TestBinaryServeLogsOneFormat: with leader election on a real API server,
// the elector's lines and client-go's own logging (klog: the feature gates
// at debug level) come out as JSON lines of Parley's logger, not klog's
// text.
func TestBinaryServeLogsOneFormat(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "parley")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := "listen: " + addr + "\ndatabase: " + filepath.Join(dir, "p.db") + "\nlog: {format: json, level: debug}\n" +
		"kubernetes: {kubeconfig: " + c.Kubeconfig(t) + "}\n" +
		"leader_election: {lease_name: parley, lease_namespace: " + ns + ", identity: pod-a}\n"
	if err := os.WriteFile(filepath.Join(dir, "parley.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "serve", "--config", "parley.yaml")
	cmd.Dir = dir
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	const leading = `"msg":"leading: this replica holds the chat connections","component":"leader"`
	for !strings.Contains(logs.String(), leading) {
		if time.Now().After(deadline) {
			t.Fatalf("no lease acquired within 60s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // more than one retry period
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, `"component":"client-go"`) {
		t.Errorf("client-go's lines are not tagged:\n%s", out)
	}
	// Holding the lease is steady: no chat platform is configured, and
	// leadership is not given up and taken again.
	if n := strings.Count(out, leading); n != 1 {
		t.Errorf("the lease was acquired %d times:\n%s", n, out)
	}
	checkJSONLogs(t, out)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
