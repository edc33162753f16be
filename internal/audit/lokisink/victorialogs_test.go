package lokisink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

// TestVictoriaLogs pushes audit events through the sink into a real
// Loki-compatible receiver — VictoriaLogs, which serves Loki's push API at
// /insert/loki/api/v1/push — and reads them back with its query API, the
// way an operator would look for every scale:
// {app="parley"} | json | action="kubernetes.scale" in LogQL,
// app:=parley AND action:="kubernetes.scale" in LogsQL.
//
// The binary comes from scripts/build-victorialogs.sh (.cache/bin) or
// PARLEY_VICTORIALOGS_BIN. Without it the test is skipped, unless
// PARLEY_REQUIRE_INTEGRATION=1, when it fails.
func TestVictoriaLogs(t *testing.T) {
	bin := victoriaLogsBinary(t)
	base := startVictoriaLogs(t, bin)

	s, err := New(Options{
		URL:    base + "/insert/loki/api/v1/push",
		Labels: map[string]string{"env": "it"},
		Client: &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	events := []audit.Event{
		{Seq: 1, Type: audit.MessageReceived, Subject: "slack:U1", Channel: "slack:C1",
			Text: "scale checkout to 5 in prod, token=abc123secretvalue"},
		{Seq: 2, Type: audit.ActionSucceeded, Subject: "slack:U1", Channel: "slack:C1", Action: action.KubernetesScale,
			Params: action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5}, Outcome: "replicas 3 -> 5"},
		{Seq: 3, Type: audit.ActionSucceeded, Subject: "discord:42", Channel: "discord:7", Action: action.PrometheusQuery,
			Params: action.Params{"service": "payments"}},
		{Seq: 4, Type: audit.ActionSucceeded, Subject: "console:bob", Channel: "console:ops", Action: action.KubernetesScale,
			Params: action.Params{"deployment": "payments", "namespace": "staging", "replicas": 2}},
	}
	for i, e := range events {
		e.Time = now.Add(time.Duration(i) * time.Millisecond)
		e.Hash = "hash-" + strconv.Itoa(i+1)
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Make the pushed rows searchable now rather than within a second.
	if res, err := http.Get(base + "/internal/force_flush"); err == nil {
		res.Body.Close()
	}

	scales := queryUntil(t, base, `app:=parley AND action:="kubernetes.scale"`, 2)
	subjects := map[string]bool{}
	for _, r := range scales {
		subjects[r["subject"]] = true
		if r["type"] != string(audit.ActionSucceeded) || !strings.Contains(r["_stream"], `app="parley"`) ||
			!strings.Contains(r["_stream"], `type="action.succeeded"`) || !strings.Contains(r["_stream"], `env="it"`) {
			t.Errorf("row %v", r)
		}
		if strings.Contains(r["_stream"], "subject=") || strings.Contains(r["_stream"], "action=") {
			t.Errorf("high-cardinality field in the stream labels: %s", r["_stream"])
		}
	}
	if !subjects["slack:U1"] || !subjects["console:bob"] {
		t.Errorf("scales by %v, want slack:U1 and console:bob", subjects)
	}

	all := queryUntil(t, base, `app:=parley`, len(events))
	for _, r := range all {
		for _, v := range r {
			if strings.Contains(v, "abc123secretvalue") {
				t.Errorf("secret reached the log store: %v", r)
			}
		}
	}
}

// victoriaLogsBinary finds the victoria-logs binary or skips.
func victoriaLogsBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PARLEY_VICTORIALOGS_BIN")
	if bin == "" {
		if root, ok := moduleRoot(); ok {
			bin = filepath.Join(root, ".cache", "bin", "victoria-logs")
		}
	}
	if bin != "" {
		if fi, err := os.Stat(bin); err == nil && !fi.IsDir() {
			return bin
		}
	}
	msg := "victoria-logs binary not found (build it with scripts/build-victorialogs.sh or set PARLEY_VICTORIALOGS_BIN)"
	if os.Getenv("PARLEY_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// startVictoriaLogs runs bin on a free 127.0.0.1 port with storage in a
// temporary directory, waits until it is healthy, and stops it at cleanup.
func startVictoriaLogs(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var out syncBuffer
	cmd := exec.Command(bin,
		"-storageDataPath="+t.TempDir(),
		"-httpListenAddr="+addr,
		"-loggerLevel=WARN",
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start victoria-logs: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("victoria-logs output:\n%s", out.String())
		}
	})

	base := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	for range 200 { // at most about 20s
		select {
		case err := <-exited:
			t.Fatalf("victoria-logs exited: %v\n%s", err, out.String())
		default:
		}
		if res, err := client.Get(base + "/health"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("victoria-logs did not become healthy\n%s", out.String())
	return ""
}

// queryUntil runs a LogsQL query until it returns want rows (bounded) and
// returns the rows, each a flat map of fields.
func queryUntil(t *testing.T, base, query string, want int) []map[string]string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var rows []map[string]string
	for range 50 { // at most about 10s
		rows = rows[:0]
		res, err := client.PostForm(base+"/select/logsql/query", url.Values{"query": {query}})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var r map[string]string
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("query answer line %q: %v", sc.Text(), err)
			}
			rows = append(rows, r)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("query %s: HTTP %d", query, res.StatusCode)
		}
		if len(rows) >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(rows) != want {
		t.Fatalf("query %s returned %d rows, want %d: %v", query, len(rows), want, rows)
	}
	return rows
}

// syncBuffer collects log output from several goroutines.
type syncBuffer = logtest.Buffer
