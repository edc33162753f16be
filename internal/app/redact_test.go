package app

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chatops/parley/internal/audit/lokisink"
)

// TestChatSecretsNeverLeave runs `parley chat --trail` in-process with a
// configuration that pushes the audit log to Loki (a local stand-in for
// Loki's push API on 127.0.0.1: Loki cannot run here), and types requests
// holding credentials: an Authorization header, Slack tokens, a password,
// a GitHub token, an OpenAI key. The console output (replies and the
// rendered trail), the audit rows in the database and the Loki push
// bodies hold none of them, and `parley audit verify` passes. One of them
// is read as a deployment name, so the action's own error ("no deployment
// ... in namespace prod") would echo it but for the redaction of replies.
func TestChatSecretsNeverLeave(t *testing.T) {
	// Built from parts: no token-shaped literal in the repository.
	bearer := strings.Repeat("dG9rZW4tZm9yLXRlc3Rz", 2)
	slackBot := "xoxb-" + "1029384756-5647382910-" + strings.Repeat("Ws4Ed5", 4)
	slackApp := "xapp-" + "1-A0TEST0001-1029384756-" + strings.Repeat("f00dcafe", 4)
	ghTok := "ghp_" + strings.Repeat("Rt6Yu7Io8P", 4)
	openAI := "sk-" + "proj-" + strings.Repeat("Lk9Jh8Gf", 5)
	const password = "Vv9-Qq8-Zz7-Pp6"
	secrets := []string{bearer, slackBot, slackApp, ghTok, openAI, password}

	var (
		mu     sync.Mutex
		pushes []string
	)
	loki := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != lokisink.PushPath {
			http.NotFound(w, r)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		mu.Lock()
		pushes = append(pushes, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer loki.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	cfgFile := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfgFile, []byte("database: "+db+"\ntrail: true\nloki: {url: '"+loki.URL+"', push_audit: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	transcript := strings.Join([]string{
		"alice@ops: status of checkout in prod, curl said Authorization: Bearer " + bearer,
		"alice@ops: why is " + slackBot + " refused with " + slackApp + "?",
		"alice@ops: scale checkout to 4 in prod password=" + password,
		"alice@ops: is " + ghTok + " still valid",
		"alice@ops: /parley status deployment:" + ghTok + " namespace:prod",
		`alice@ops: show error logs for checkout containing "` + ghTok + `"`,
		"bob@ops: export OPENAI_API_KEY=" + openAI,
		"bob@ops: " + strings.Repeat("x", 20000) + " " + openAI,
	}, "\n") + "\n"
	var out, errOut strings.Builder
	env := Env{Stdin: strings.NewReader(transcript), Stdout: &out, Stderr: &errOut}
	if code := Main(t.Context(), []string{"chat", "--config", cfgFile, "--transcript", "-"}, env); code != 0 {
		t.Fatalf("chat exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	// What Parley wrote: the console echoes each transcript line as
	// "user@channel> text" (the input itself, as a terminal shows what is
	// typed); everything else is replies and the trail.
	var said []string
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "alice@ops> ") && !strings.HasPrefix(line, "bob@ops> ") {
			said = append(said, line)
		}
	}
	console := strings.Join(said, "\n")
	for _, want := range []string{"message.received", "Bearer [REDACTED]", "This changes prod: checkout replicas 3 -> 4", "Nothing was run",
		`no deployment "[REDACTED]" in prod`} {
		if !strings.Contains(console, want) {
			t.Fatalf("the conversation lacks %q:\n%s", want, out.String())
		}
	}

	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT type || ' ' || text || ' ' || params || ' ' || outcome || ' ' || error || ' ' || details FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var stored strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored.WriteString(s + "\n")
	}
	rows.Close()
	if !strings.Contains(stored.String(), "Authorization: Bearer [REDACTED]") || !strings.Contains(stored.String(), "password=[REDACTED]") {
		t.Errorf("audit rows do not keep the redacted requests:\n%s", stored.String())
	}

	mu.Lock()
	pushed := strings.Join(pushes, "\n")
	mu.Unlock()
	if !strings.Contains(pushed, "message.received") {
		t.Fatalf("nothing pushed to Loki (Close flushes the sink):\n%s", pushed)
	}
	for where, text := range map[string]string{"console output": console + errOut.String(), "audit rows": stored.String(), "Loki pushes": pushed} {
		for _, s := range secrets {
			// A name the router read is lower-cased: compare without case.
			if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
				t.Errorf("%s hold the secret %q:\n%s", where, s, text)
			}
		}
	}

	var vout strings.Builder
	if code := Main(context.Background(), []string{"audit", "verify", "--db", db}, Env{Stdout: &vout, Stderr: &vout}); code != 0 {
		t.Fatalf("audit verify exited %d:\n%s", code, vout.String())
	}
	mustContain(t, vout.String(), "audit log OK")
}
