// Package kubetest runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and kube-controller-manager as separate processes on free
// 127.0.0.1 ports, with their data in a temporary directory. There is no
// kubelet and no scheduler, so pods are created but never run; everything
// the API server and the controllers do is real: authentication, RBAC,
// admission, validation, server-side dry run and apply, optimistic
// concurrency, Deployments rolling out ReplicaSets with revision history,
// the garbage collector, Jobs creating pods, leases.
//
// Where a test needs what a node does, it plays the node with a fake
// kubelet (Cluster.StartKubelet, kubelet.go): a TLS server on 127.0.0.1
// registered as a Ready Node (InternalIP 127.0.0.1, its port as the
// kubelet endpoint) that answers the kubelet API's
// GET /containerLogs/{namespace}/{pod}/{container} with tailLines,
// limitBytes, previous, timestamps, sinceSeconds and sinceTime, as a
// kubelet does. The API server reaches it for pods/log (kubectl logs,
// client-go's GetLogs) with its kubelet client certificate
// (--kubelet-client-certificate), and verifies the kubelet's serving
// certificate against the cluster CA (--kubelet-certificate-authority).
// The test acts as the scheduler and the kubelet around it:
//
//	k := c.StartKubelet(t, "node-a")
//	k.Schedule(t, ns, pod)                       // bind the pod to node-a
//	k.Start(t, ns, pod)                          // Running, containers ready
//	k.SetLog(ns, pod, "app", false, "started\n") // what the container printed
//	k.SetLog(ns, pod, "app", true, "panic\n")    // the previous container's log
//	k.Finish(t, ns, pod, 0)                      // Succeeded (a Job's pod)
//
// UpdateStatus writes any other status (a crash loop, an OOM kill), and
// Requests lists the calls the kubelet answered.
//
// The binaries are built from the Go module proxy by scripts/build-kube.sh
// into .cache/bin at the main module's root; $KUBEBUILDER_ASSETS, when set,
// is searched first. When they are missing the test is skipped with a
// message saying how to build them, unless PARLEY_REQUIRE_INTEGRATION=1 is
// set, in which case it fails: a green CI means these tests ran.
//
// A test starts its own cluster with Start, or shares one per test binary
// with Shared (a cluster takes several seconds to start). A package that
// uses Shared stops it in TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		kubetest.StopShared()
//		os.Exit(code)
//	}
//
// Tests on a shared cluster keep apart by namespace (NewNamespace). The
// processes run in their own process groups, are stopped with the cluster,
// and are killed by the kernel if the test binary dies first.
package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// RequireEnv is the environment variable that turns missing binaries from
// a skip into a failure.
const RequireEnv = "PARLEY_REQUIRE_INTEGRATION"

// AssetsEnv names a directory searched for the binaries before .cache/bin,
// as controller-runtime's envtest does.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Binary names.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
)

// DefaultControllers are the kube-controller-manager controllers a cluster
// runs unless Options.Controllers says otherwise: enough for Deployments to
// roll out ReplicaSets and pods, Jobs to create pods, new namespaces to get
// their default service account, and deletes to cascade.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"job-controller",
	"serviceaccount-controller",
	"namespace-controller",
	"garbage-collector-controller",
}

// DefaultReadyTimeout bounds how long each component may take to become
// ready when Options.ReadyTimeout is zero.
const DefaultReadyTimeout = 60 * time.Second

// AdminUser is the static-token user in system:masters that AdminConfig
// authenticates as.
const AdminUser = "kubetest-admin"

// User is a static-token user the API server knows from its start.
type User struct {
	Name   string
	Groups []string
}

// Options configure a cluster. The zero value is a cluster with the
// default controllers.
type Options struct {
	// Controllers are kube-controller-manager's --controllers. Nil means
	// DefaultControllers; an empty, non-nil slice starts no controller
	// manager at all.
	Controllers []string
	// Users are static-token users besides the admin (TokenConfig).
	Users []User
	// APIServerArgs and ControllerManagerArgs are extra flags, appended
	// after kubetest's own, so they override them.
	APIServerArgs         []string
	ControllerManagerArgs []string
	// ReadyTimeout bounds the start of each component. Zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

func (o Options) check() (Options, error) {
	if o.Controllers == nil {
		o.Controllers = DefaultControllers
	}
	if o.ReadyTimeout < 0 {
		return o, fmt.Errorf("kubetest: negative ready timeout %s", o.ReadyTimeout)
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	seen := map[string]bool{AdminUser: true}
	for _, u := range o.Users {
		if u.Name == "" || strings.ContainsAny(u.Name, ",\"\n") {
			return o, fmt.Errorf("kubetest: bad user name %q", u.Name)
		}
		if seen[u.Name] {
			return o, fmt.Errorf("kubetest: user %q given twice", u.Name)
		}
		seen[u.Name] = true
		for _, g := range u.Groups {
			if g == "" || strings.ContainsAny(g, ",\"\n") {
				return o, fmt.Errorf("kubetest: user %q: bad group name %q", u.Name, g)
			}
		}
	}
	return o, nil
}

// Cluster is a running control plane.
type Cluster struct {
	dir    string // temporary directory with data, keys and configs
	host   string // https://127.0.0.1:port
	pki    pki
	caPEM  []byte
	tokens map[string]string // user name -> static bearer token

	admin  *rest.Config
	client kubernetes.Interface

	procs    []*process // in start order; stopped in reverse
	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool // helpers' cleanups have nothing to undo then
}

// Need skips (or, with PARLEY_REQUIRE_INTEGRATION=1, fails) the test when
// the control-plane binaries are missing, and returns their directory
// paths.
func Need(t testing.TB) Binaries {
	t.Helper()
	b, err := FindBinaries()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v, and %s=1 requires the integration tests to run", err, RequireEnv)
		}
		t.Skip(err.Error())
	}
	return b
}

// Binaries are the paths of the control-plane executables.
type Binaries struct {
	Etcd, APIServer, ControllerManager string
}

// FindBinaries looks for the binaries in $KUBEBUILDER_ASSETS, then in
// .cache/bin at the root of the module the test runs in.
func FindBinaries() (Binaries, error) {
	var dirs []string
	if d := os.Getenv(AssetsEnv); d != "" {
		dirs = append(dirs, d)
	}
	if root, err := moduleRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, ".cache", "bin"))
	}
	var missing []string
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	b := Binaries{Etcd: find(Etcd), APIServer: find(APIServer), ControllerManager: find(ControllerManager)}
	if len(missing) > 0 {
		return b, fmt.Errorf("kubetest: %s not found in %s (build the control plane with scripts/build-kube.sh)",
			strings.Join(missing, ", "), strings.Join(dirs, " or "))
	}
	return b, nil
}

// moduleRoot is the nearest directory at or above the working directory
// (a test's package directory) holding a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts a cluster for the test and stops it when the test ends. It
// skips the test when the binaries are missing (see Need).
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	b := Need(t)
	c, err := New(b, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test binary's shared cluster (default Options),
// starting it on first use. It skips the test when the binaries are
// missing. Stop it with StopShared in TestMain.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	b := Need(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = New(b, Options{})
	}
	if shared.err != nil {
		t.Fatalf("shared cluster: %v", shared.err)
	}
	return shared.c
}

// StopShared stops the shared cluster, if one was started.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil {
		return nil
	}
	err := shared.c.Stop()
	shared.c, shared.err = nil, errors.New("kubetest: the shared cluster was stopped")
	return err
}

// New starts a cluster from the given binaries. The caller stops it with
// Stop; tests use Start or Shared instead.
func New(b Binaries, o Options) (_ *Cluster, err error) {
	o, err = o.check()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	c := &Cluster{dir: dir, tokens: map[string]string{}}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	pki, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	c.caPEM, c.pki = pki.caPEM, pki
	if err := c.writeTokens(o.Users); err != nil {
		return nil, err
	}

	etcdURL, err := c.startEtcd(b.Etcd, o.ReadyTimeout)
	if err != nil {
		return nil, err
	}
	if err := c.startAPIServer(b.APIServer, etcdURL, pki, o); err != nil {
		return nil, err
	}
	if len(o.Controllers) > 0 {
		if err := c.startControllerManager(b.ControllerManager, pki, o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Stop stops the processes (controller manager, API server, etcd: SIGTERM
// to each process group, SIGKILL after 10s) and removes the cluster's
// directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		var errs []error
		for i := len(c.procs) - 1; i >= 0; i-- {
			errs = append(errs, c.procs[i].stop())
		}
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("kubetest: remove %s: %w", c.dir, err))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// Host is the API server's URL (https://127.0.0.1:port).
func (c *Cluster) Host() string { return c.host }

// CAData is the PEM certificate of the cluster's CA, which signed the API
// server's serving certificate.
func (c *Cluster) CAData() []byte { return append([]byte(nil), c.caPEM...) }

// AdminConfig returns a new config for the cluster's admin (system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// AdminClient is a clientset for the admin.
func (c *Cluster) AdminClient() kubernetes.Interface { return c.client }

// ConfigFor returns a config that acts as user (with groups) through the
// admin's impersonation rights, as Parley's own per-user clients do. RBAC
// then decides as it would for that user.
func (c *Cluster) ConfigFor(user string, groups ...string) *rest.Config {
	cfg := c.AdminConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// TokenConfig returns a config that authenticates with the static token of
// Options.Users' user name (or AdminUser).
func (c *Cluster) TokenConfig(name string) (*rest.Config, error) {
	tok, ok := c.tokens[name]
	if !ok {
		return nil, fmt.Errorf("kubetest: no static-token user %q (Options.Users)", name)
	}
	return c.configWithToken(tok), nil
}

func (c *Cluster) configWithToken(token string) *rest.Config {
	return &rest.Config{
		Host:            c.host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData()},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
}

// writeTokens writes the API server's static token file: the admin, then
// Options.Users, each with a random token.
func (c *Cluster) writeTokens(users []User) error {
	var b strings.Builder
	add := func(name string, groups []string) error {
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("kubetest: token: %w", err)
		}
		tok := hex.EncodeToString(raw[:])
		c.tokens[name] = tok
		// token,user,uid,"group1,group2"
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", tok, name, name, strconv.Quote(strings.Join(groups, ",")))
		return nil
	}
	if err := add(AdminUser, []string{"system:masters"}); err != nil {
		return err
	}
	for _, u := range users {
		if err := add(u.Name, u.Groups); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(c.dir, "tokens.csv"), []byte(b.String()), 0o600)
}

// WaitFor polls cond every 100ms until it returns nil, and fails the test
// with cond's last error when timeout passes first. The context given to
// cond ends when WaitFor returns.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	if err := poll(context.Background(), timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// poll calls cond until it returns nil or timeout passes; it returns
// cond's last error then.
func poll(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		last := cond(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, last)
		case <-tick.C:
		}
	}
}
