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
