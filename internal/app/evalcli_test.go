package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyEvals copies the project's evals folder (suites, datasets, prompts,
// routing.yaml) so a test can add suites without touching it.
func copyEvals(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "evals")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func runEvalCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	err := cmdEvalSuite(ctx, args, env)
	code = 0
	if err != nil {
		code = 1
		if errors.Is(err, errUsage) {
			code = 2
			errb.WriteString(err.Error())
		} else if ee, ok := err.(*exitError); ok {
			code = ee.code
			errb.WriteString(ee.msg)
		} else {
			errb.WriteString(err.Error())
		}
	}
	return code, out.String(), errb.String()
}

func TestEvalCLIIntentRoutingGate(t *testing.T) {
	dir := copyEvals(t)
	db := filepath.Join(t.TempDir(), "parley.db")
	reports := t.TempDir()

	code, out, errOut := runEvalCLI(t, "run", "intent-routing", "--evals", dir, "--db", db, "--out", reports)
	if code != 0 {
		t.Fatalf("eval run intent-routing: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Log(out)
	for _, want := range []string{"eval run 1: intent-routing", "PASS routing >= 0.95", "PASS routing_safe >= 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"report.csv", "report.html"} {
		if st, err := os.Stat(filepath.Join(reports, "run-1", f)); err != nil || st.Size() < 1000 {
			t.Errorf("report %s: %v", f, err)
		}
	}

	// The same suite with a gate no router can pass must fail the command.
	impossible := strings.Replace(mustRead(t, filepath.Join(dir, "suites", "intent-routing.yaml")),
		"name: intent-routing", "name: intent-routing-strict", 1)
	impossible = strings.Replace(impossible, "{metric: routing, min: 0.95}", "{metric: routing, min: 1.01}", 1)
	if err := os.WriteFile(filepath.Join(dir, "suites", "strict.yaml"), []byte(impossible), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runEvalCLI(t, "run", "intent-routing-strict", "--evals", dir, "--db", db, "--out", reports)
	if code != 1 || !strings.Contains(out, "FAIL routing >= 1.01") || !strings.Contains(errOut, "run 2: gate failed") {
		t.Fatalf("strict gate: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	code, out, _ = runEvalCLI(t, "list", "--evals", dir, "--db", db)
	if code != 0 || !strings.Contains(out, "summarizer-golden") || !strings.Contains(out, "baseline, prompt-v2") ||
		!strings.Contains(out, "intent-routing-strict") || !strings.Contains(out, "gates FAILED") {
		t.Fatalf("eval list: exit %d\n%s", code, out)
	}
	code, out, _ = runEvalCLI(t, "show", "1", "--db", db)
	if code != 0 || !strings.Contains(out, "run 1: intent-routing done") || !strings.Contains(out, "gates passed") {
		t.Fatalf("eval show 1: exit %d\n%s", code, out)
	}
	code, _, errOut = runEvalCLI(t, "show", "99", "--db", db)
	if code == 0 || !strings.Contains(errOut, "no evaluation run 99") {
		t.Fatalf("eval show 99: exit %d, %s", code, errOut)
	}
	code, _, _ = runEvalCLI(t, "run", "--db", db)
	if code != 2 {
		t.Fatalf("eval run without a suite: exit %d, want 2", code)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
