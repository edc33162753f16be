package kubernetes

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// t0 is the sandbox clock in tests.
var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

type kit struct {
	sb       *Sandbox
	status   *Status
	scale    *Scale
	rollback *Rollback
	restart  *Restart
}

func newKit(t testing.TB, manifests ...[]byte) *kit {
	t.Helper()
	if len(manifests) == 0 {
		manifests = [][]byte{DemoManifests()}
	}
	sb, err := NewSandboxWithClock(clock, manifests...)
	if err != nil {
		t.Fatalf("NewSandbox: %v", err)
	}
	o := Options{Clients: sb.Clients(), Now: clock}
	k := &kit{sb: sb}
	var errs [4]error
	k.status, errs[0] = NewStatus(o)
	k.scale, errs[1] = NewScale(o)
	k.rollback, errs[2] = NewRollback(o)
	k.restart, errs[3] = NewRestart(o)
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	return k
}

func req(name string, params action.Params) action.Request {
	return action.Request{Action: name, Params: params, Subject: "console:alice", Channel: "console:ops", RequestID: "r1"}
}

func (k *kit) statusText(t *testing.T, ns, name string) string {
	t.Helper()
	res, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": ns, "deployment": name}))
	if err != nil {
		t.Fatalf("status %s/%s: %v", ns, name, err)
	}
	return res.Text
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (k *kit) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := k.sb.Client().AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (k *kit) replicaSets(t *testing.T, ns, name string) []appsv1.ReplicaSet {
	t.Helper()
	d := k.deployment(t, ns, name)
	rss, err := ownedReplicaSets(context.Background(), k.sb.Client(), d)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

func (k *kit) pods(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	d := k.deployment(t, ns, name)
	pods, err := ownedPods(context.Background(), k.sb.Client(), d, k.replicaSets(t, ns, name))
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func render(res action.Result) string {
	var b strings.Builder
	b.WriteString(res.Text + "\n")
	for _, f := range res.Fields {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	if res.Table != nil {
		b.WriteString(strings.Join(res.Table.Header, " | ") + "\n")
		for _, r := range res.Table.Rows {
			b.WriteString(strings.Join(r, " | ") + "\n")
		}
	}
	return b.String()
}

func mustErrIs(t *testing.T, err, kind error, contains ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

// The writes Parley's client does not offer, served by the sandbox as
// client-go's fake typed clients send them (Sandbox.Invoke), for tests
// that change the cluster behind Parley's back.

// create is a typed client's Create.
func create[T runtime.Object](sb *Sandbox, gvr schema.GroupVersionResource, ns string, obj T, opts metav1.CreateOptions) (T, error) {
	return typedAnswer[T](sb.Invoke(k8stesting.NewCreateActionWithOptions(gvr, ns, obj, opts)))
}

// updateStatus is a typed client's UpdateStatus.
func updateStatus[T runtime.Object](sb *Sandbox, gvr schema.GroupVersionResource, ns string, obj T, opts metav1.UpdateOptions) (T, error) {
	return typedAnswer[T](sb.Invoke(k8stesting.NewUpdateSubresourceActionWithOptions(gvr, "status", ns, obj, opts)))
}

// deleteObject is a typed client's Delete.
func deleteObject(sb *Sandbox, gvr schema.GroupVersionResource, ns, name string, opts metav1.DeleteOptions) error {
	_, err := sb.Invoke(k8stesting.NewDeleteActionWithOptions(gvr, ns, name, opts))
	return err
}

func typedAnswer[T runtime.Object](obj runtime.Object, err error) (T, error) {
	t, ok := obj.(T)
	if !ok && err == nil {
		err = fmt.Errorf("the sandbox answered a %T, want a %T", obj, t)
	}
	return t, err
}
