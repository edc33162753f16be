// Package promtest starts real Prometheus and Alertmanager processes for
// tests, and serves a test exporter whose numbers the test controls. Each
// process listens on a free 127.0.0.1 port, keeps its data in t.TempDir(),
// is ready (its /-/ready answers 200) when the Start function returns, and
// is stopped by t.Cleanup.
//
// The binaries come from Debian's prometheus and prometheus-alertmanager
// packages (/usr/bin/prometheus, /usr/bin/prometheus-alertmanager,
// /usr/bin/promtool). When they are missing the test is skipped with a
// message saying how to install them, unless PARLEY_REQUIRE_INTEGRATION=1
// is set (as CI does), in which case it fails: a green CI means these tests
// ran.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary paths; tests may point them elsewhere before starting anything.
var (
	PrometheusBinary   = "/usr/bin/prometheus"
	PromtoolBinary     = "/usr/bin/promtool"
	AlertmanagerBinary = "/usr/bin/prometheus-alertmanager"
)

// RequireEnv is the environment variable that turns a missing binary from
// a skip into a failure.
const RequireEnv = "PARLEY_REQUIRE_INTEGRATION"

// ReadyTimeout bounds how long a process may take to become ready.
const ReadyTimeout = 30 * time.Second

// Need skips (or, with PARLEY_REQUIRE_INTEGRATION=1, fails) the test when
// a binary is not installed.
func Need(t testing.TB, binaries ...string) {
	t.Helper()
	for _, b := range binaries {
		if _, err := os.Stat(b); err != nil {
			msg := fmt.Sprintf("%s is not installed (apt-get install -y prometheus prometheus-alertmanager)", b)
			if os.Getenv(RequireEnv) == "1" {
				t.Fatalf("%s, and %s=1 requires the integration tests to run", msg, RequireEnv)
			}
			t.Skip(msg)
		}
	}
}

// process is one started server.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// lockedBuffer is written by the process's output copier and read by the
// test; os/exec copies through its own goroutine, so guard it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded on a chatty process
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs binary with args until the test ends, and waits for
// http://addr/-/ready (sent with the credentials auth sets, when the
// server demands them). A port taken between choosing and binding it is
// retried with a new port.
func start(t testing.TB, name, binary string, args func(addr string) []string, auth ...func(*http.Request)) (addr string) {
	t.Helper()
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		addr = freeAddr(t)
		out := newLockedBuffer()
		cmd := exec.Command(binary, args(addr)...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = procAttr() // on Linux: never outlive the test binary
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		p := &process{name: name, cmd: cmd, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() { p.stop(t) })
		err := waitReady(p, "http://"+addr+"/-/ready", auth...)
		if err == nil {
			return addr
		}
		lastLog = tail(out.String(), 3000)
		p.stop(t)
		if !strings.Contains(lastLog, "address already in use") {
			t.Fatalf("%s did not become ready: %v\n--- %s output ---\n%s", name, err, name, lastLog)
		}
	}
	t.Fatalf("%s: no free port after 3 attempts\n%s", name, lastLog)
	return ""
}

// stop ends the process: SIGTERM, then SIGKILL after 10s. It is safe to
// call twice.
func (p *process) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Logf("%s did not stop on SIGTERM within 10s; killed", p.name)
	}
}

func waitReady(p *process, url string, auth ...func(*http.Request)) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("process exited: %v", p.err)
		default:
		}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, a := range auth {
			a(req)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, ReadyTimeout)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls cond every 200ms until it returns nil or timeout passes,
// then fails the test with cond's last error. ctx passed to cond is
// cancelled when WaitFor returns.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = cond(cctx)
		ccancel()
		if last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: gave up after %s: %v", what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
