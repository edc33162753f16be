package kubetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running component.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// startProcess runs bin in its own process group, which the kernel kills
// if the test binary dies (Pdeathsig), so no component outlives its test.
func startProcess(name, bin string, args []string) (*process, error) {
	out := &tailBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stopGrace is how long a component may take to shut down on SIGTERM.
const stopGrace = 10 * time.Second

// stop sends SIGTERM to the process group, SIGKILL after stopGrace, and
// waits for the process. The group is only signalled while its leader is
// alive (not yet reaped), so the signal cannot reach a reused group id. It
// is safe to call more than once.
func (p *process) stop() error {
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kubetest: stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kubetest: kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// waitHTTP polls url until it answers 200 OK, the process exits, or
// timeout passes.
func (p *process) waitHTTP(client *http.Client, url, bearer string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		default:
		}
		last = get(ctx, client, url, bearer)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w", p.name, timeout, last)
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, client *http.Client, url, bearer string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// httpClient trusts caPEM, or for a nil caPEM speaks plain HTTP.
func httpClient(caPEM []byte) *http.Client {
	t := &http.Transport{DisableKeepAlives: true}
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}
}

// launch starts a component on fresh free ports and waits until ready
// says it is ready. A port taken between choosing and binding it is
// retried with new ports.
func (c *Cluster) launch(name, bin string, nports int, args func(ports []int) []string, ready func(p *process, ports []int) error) ([]int, error) {
	var lastErr error
	for range 3 {
		ports, err := freePorts(nports)
		if err != nil {
			return nil, err
		}
		p, err := startProcess(name, bin, args(ports))
		if err != nil {
			return nil, err
		}
		err = ready(p, ports)
		if err == nil {
			c.procs = append(c.procs, p)
			return ports, nil
		}
		lastErr = fmt.Errorf("%w\n--- %s output ---\n%s", err, name, p.out.tail(4000))
		_ = p.stop()
		if !strings.Contains(p.out.String(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("kubetest: %v", lastErr)
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailBuffer keeps the last part of a component's output. os/exec copies
// into it from its own goroutine, so it is locked.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailKeep = 256 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 2*tailKeep {
		keep := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-tailKeep:]...)
		b.buf.Reset()
		b.buf.Write(keep)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *tailBuffer) tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
