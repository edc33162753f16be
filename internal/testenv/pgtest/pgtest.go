// Package pgtest gives tests a throwaway PostgreSQL database.
//
// Start returns the DSN of a new, empty schema, dropped when the test
// ends: the DSN sets search_path to it, so everything the test creates
// without naming a schema lands there, apart from every other test. (A
// schema costs milliseconds; a new database half a second.) The server
// behind it is, in order of preference:
//
//   - the server named by PARLEY_TEST_POSTGRES_DSN (a postgres:// URL with
//     the right to create schemas in its database), when set;
//   - a server this package starts from Debian's PostgreSQL binaries
//     (/usr/lib/postgresql/<version>/bin, or initdb and postgres on PATH):
//     a cluster initialised in a private temporary directory, listening on
//     a free 127.0.0.1 port (its socket in that directory, password
//     authentication with a random password), tuned for speed over
//     durability (fsync off). One server serves a whole test binary when
//     its TestMain runs the tests through Main; otherwise each Start gets
//     its own server, stopped by t.Cleanup.
//
// PostgreSQL refuses to run as root, and tests here (and in CI) do: as
// root, initdb and postgres run as the "postgres" system user, which owns
// the temporary directory. The kernel kills the server if the test binary
// dies without cleaning up.
//
// When no binaries are found the test is skipped with a message saying how
// to install them, unless PARLEY_REQUIRE_INTEGRATION=1 is set (as CI does),
// in which case it fails: a green CI means these tests ran.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Environment variables.
const (
	// DSNEnv names an external server to create test databases on.
	DSNEnv = "PARLEY_TEST_POSTGRES_DSN"
	// RequireEnv turns missing binaries from a skip into a failure.
	RequireEnv = "PARLEY_REQUIRE_INTEGRATION"
)

// ReadyTimeout bounds starting a server, and each database operation.
const ReadyTimeout = 30 * time.Second

var (
	mu      sync.Mutex
	inMain  bool    // Main is running the tests: share one server
	shared  *server // started by the first Start under Main
	sharedE error   // why shared could not start; not retried
)

// Main runs the tests of a package and stops the shared server after them.
// Use it from TestMain so that all tests of the package share one server:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Nothing is started unless a test calls Start.
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	s := shared
	shared, inMain = nil, false
	mu.Unlock()
	if s != nil {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	return code
}

// Start returns the DSN (a postgres:// URL) of a new, empty schema for t,
// dropped with everything in it by t.Cleanup. Close what uses it before
// the test ends (cleanups registered after Start run before it). It skips
// or fails t when PostgreSQL is not available (see the package comment).
func Start(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(DSNEnv)
	if admin == "" {
		srv := serverFor(t)
		admin = srv.dsn("postgres")
	}
	dsn, schema, err := createSchema(admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := dropSchema(admin, schema); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// Schema returns the schema a DSN from Start puts the test in.
func Schema(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return u.Query().Get("search_path")
}

// serverFor returns the shared server under Main, or a new one for t.
func serverFor(t testing.TB) *server {
	t.Helper()
	bin := need(t)
	mu.Lock()
	defer mu.Unlock()
	if inMain {
		if shared == nil && sharedE == nil {
			shared, sharedE = startServer(bin)
		}
		if sharedE != nil {
			t.Fatalf("pgtest: %v", sharedE)
		}
		return shared
	}
	srv, err := startServer(bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return srv
}

// need returns the directory holding initdb and postgres, or skips (fails
// under RequireEnv) t.
func need(t testing.TB) string {
	t.Helper()
	bin, err := findBinaries()
	if err == nil {
		return bin
	}
	msg := fmt.Sprintf("%v (apt-get install -y postgresql, or set %s to a server's postgres:// URL)", err, DSNEnv)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires the integration tests to run", msg, RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// findBinaries looks in /usr/lib/postgresql/*/bin (newest major version
// first), then on PATH.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found")
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

// server is one running postgres process.
type server struct {
	dir      string // private temporary directory: data/, the socket, pwfile
	port     int
	password string
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd.Wait returned
	waitErr  error         // set before done is closed
	output   *lockedBuffer
}

// dsn is the URL of database name on s, as the superuser.
func (s *server) dsn(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// startServer initialises a cluster and starts postgres on it, trying a
// few ports in case another process takes the free one first.
func startServer(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "parley-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{dir: dir, password: randomHex(16)}
	if err := s.initdb(bin, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		err = s.run(bin, cred)
		if err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(s.output.String(), "could not bind") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// serverCredential is who runs initdb and postgres: nil (this user)
// unless this user is root, whom PostgreSQL refuses.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: %w (the postgresql package creates the postgres user)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres: unusable uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *server) initdb(bin string, cred *syscall.Credential) error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	if cred != nil {
		for _, p := range []string{s.dir, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("hand the data directory to the postgres user: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*ReadyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", filepath.Join(s.dir, "data"), "-U", "postgres", "--pwfile", pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync")
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr(cred)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, tail(string(out), 2000))
	}
	return os.Remove(pwfile)
}

// run starts postgres on a free port and waits until it accepts
// connections.
func (s *server) run(bin string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	s.output = &lockedBuffer{}
	s.done = make(chan struct{})
	s.cmd = exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		// A test server: speed over durability.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "log_min_messages=warning",
	)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.SysProcAttr = procAttr(cred)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.kill()
		return fmt.Errorf("postgres on port %d: %w\n%s", port, err, tail(s.output.String(), 2000))
	}
	return nil
}

// waitReady connects until the server answers, it exits, or ReadyTimeout.
func (s *server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	db, err := openAdmin(s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", ReadyTimeout, err)
		case <-tick.C:
		}
	}
}

// stop shuts the server down ("fast": clients disconnected, no waiting)
// and removes its directory.
func (s *server) stop() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(ReadyTimeout):
			err = fmt.Errorf("postgres did not stop within %v; killed", ReadyTimeout)
			_ = s.kill()
		}
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// kill ends the server at once and waits for it.
func (s *server) kill() error {
	_ = s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown: children too
	select {
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return nil
}

// createSchema makes a schema with a fresh name on the admin DSN's
// database and returns a DSN whose search_path is that schema.
func createSchema(admin string) (dsn, schema string, err error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Say nothing of the DSN itself: it holds a password.
		return "", "", fmt.Errorf("%s (or the started server's DSN) must be a postgres:// URL", DSNEnv)
	}
	db, err := openAdmin(admin)
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	schema = "parley_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends it as a session setting
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// dropSchema drops the schema and everything in it.
func dropSchema(admin, schema string) error {
	db, err := openAdmin(admin)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// openAdmin opens a small pool on an administrative DSN.
func openAdmin(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("unparsable PostgreSQL DSN")
	}
	cfg.ConnectTimeout = 5 * time.Second
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	return db, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on Linux
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// lockedBuffer collects the server's output; os/exec copies into it from
// its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // bounded, whatever the server says
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
