package kubetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestFindBinariesPrefersAssetsDir(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{Etcd, APIServer, ControllerManager} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(AssetsEnv, dir)
	b, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if b.APIServer != filepath.Join(dir, APIServer) || b.Etcd != filepath.Join(dir, Etcd) || b.ControllerManager != filepath.Join(dir, ControllerManager) {
		t.Errorf("binaries %+v, want them from %s", b, dir)
	}

	// A non-executable file is not a binary; the error says how to build one.
	if err := os.Chmod(filepath.Join(dir, APIServer), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // no go.mod above: only the assets dir is searched
	_, err = FindBinaries()
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver not found") || !strings.Contains(err.Error(), "scripts/build-kube.sh") {
		t.Errorf("err = %v", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, o := range []Options{
		{ReadyTimeout: -time.Second},
		{Users: []User{{Name: ""}}},
		{Users: []User{{Name: "a,b"}}},
		{Users: []User{{Name: AdminUser}}},
		{Users: []User{{Name: "x"}, {Name: "x"}}},
		{Users: []User{{Name: "x", Groups: []string{"g\""}}}},
	} {
		if _, err := o.check(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := Options{}.check()
	if err != nil || len(o.Controllers) != len(DefaultControllers) || o.ReadyTimeout != DefaultReadyTimeout {
		t.Errorf("defaults %+v, %v", o, err)
	}
}

func whoami(t *testing.T, cfg *rest.Config) authenticationv1.UserInfo {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := callCtx()
	defer cancel()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.UserInfo
}

// One cluster exercises every helper, then stops and leaves no process.
func TestCluster(t *testing.T) {
	c := Start(t, Options{Users: []User{{Name: "alice", Groups: []string{"dev"}}}})
	ctx := context.Background()

	if u := whoami(t, c.AdminConfig()); u.Username != AdminUser || !slices.Contains(u.Groups, "system:masters") {
		t.Errorf("admin is %+v", u)
	}
	alice, err := c.TokenConfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u := whoami(t, alice); u.Username != "alice" || !slices.Contains(u.Groups, "dev") {
		t.Errorf("alice is %+v", u)
	}
	if _, err := c.TokenConfig("nobody"); err == nil {
		t.Error("a token for an unknown user")
	}
	if u := whoami(t, c.ConfigFor("bob", "ops")); u.Username != "bob" || !slices.Contains(u.Groups, "ops") {
		t.Errorf("impersonated bob is %+v", u)
	}

	// RBAC is enforced, and Grant takes effect before it returns.
	ns := c.NewNamespace(t, "kubetest")
	ac, err := kubernetes.NewForConfig(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("alice lists config maps before the grant: %v", err)
	}
	c.Grant(t, ns, UserSubject("alice"), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}})
	if _, err := ac.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("alice lists config maps after the grant: %v", err)
	}

	// A service account authenticates with a token the API server issued.
	sa := c.ServiceAccountConfig(t, ns, "robot")
	if u := whoami(t, sa); u.Username != "system:serviceaccount:"+ns+":robot" {
		t.Errorf("service account is %+v", u)
	}

	// Manifests apply, and the controller manager rolls a Deployment out.
	objs := c.ApplyYAML(t, ns, `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example.com/web:1}]
`)
	if len(objs) != 2 || objs[1].GetNamespace() != ns || objs[1].GetUID() == "" {
		t.Fatalf("applied %d objects", len(objs))
	}
	WaitFor(t, time.Minute, "the ReplicaSet of deployment web", func(ctx context.Context) error {
		rss, err := c.AdminClient().AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(rss.Items) != 1 || rss.Items[0].Annotations["deployment.kubernetes.io/revision"] != "1" {
			return errors.New("no ReplicaSet with revision 1 yet")
		}
		return nil
	})

	// The kubeconfig file works for another program.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if u := whoami(t, cfg); u.Username != AdminUser {
		t.Errorf("kubeconfig user %+v", u)
	}

	// Stop ends every process group; a second Stop is harmless.
	procs := append([]*process(nil), c.procs...)
	if len(procs) != 3 {
		t.Fatalf("%d processes, want etcd, kube-apiserver, kube-controller-manager", len(procs))
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s's process group is still there: %v", p.name, err)
		}
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind: %v", err)
	}
}
