package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// binPath is the real binary, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "parley")
	cmd := exec.Command("go", "build", "-o", binPath, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
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
