package kubernetes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "sekret-token"}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`

func TestNewClientsImpersonation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	clients, err := NewClients(ClusterOptions{Kubeconfig: path, Impersonate: map[string]Identity{
		"slack:U1": {User: "alice@example.com", Groups: []string{"sre"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients(""); err != nil {
		t.Fatalf("Parley's own client: %v", err)
	}
	c, err := clients("slack:U1")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := clients("slack:U1")
	if again != c {
		t.Error("client not cached per subject")
	}
	_, err = clients("slack:U2")
	if !errors.Is(err, action.ErrForbidden) || !strings.Contains(err.Error(), "no Kubernetes identity is mapped for slack:U2") {
		t.Errorf("unmapped subject: %v", err)
	}
	if strings.Contains(err.Error(), "sekret") {
		t.Error("token in error")
	}
}

func TestNewClientsBadKubeconfig(t *testing.T) {
	_, err := NewClients(ClusterOptions{Kubeconfig: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("err = %v", err)
	}
}

func TestClusterConfigRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		qps          float32
		burst        int
		wantQPS      float32
		wantBurst    int
		wantAgentSet bool
	}{
		{0, 0, DefaultQPS, DefaultBurst, false},
		{50, 100, 50, 100, true},
		{3, 0, 3, 1, false},
	} {
		o := ClusterOptions{Kubeconfig: path, QPS: c.qps, Burst: c.burst}
		if c.wantAgentSet {
			o.UserAgent = "parley/test"
		}
		cfg, err := clusterConfig(o)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.QPS != c.wantQPS || cfg.Burst != c.wantBurst {
			t.Errorf("QPS %v burst %d: got %v/%d, want %v/%d", c.qps, c.burst, cfg.QPS, cfg.Burst, c.wantQPS, c.wantBurst)
		}
		if want := map[bool]string{true: "parley/test", false: "parley"}[c.wantAgentSet]; cfg.UserAgent != want {
			t.Errorf("user agent %q, want %q", cfg.UserAgent, want)
		}
	}
}
