package kubetest

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestKubelet reads pod logs through the real API server's pods/log,
// which reaches the fake kubelet over TLS with the cluster's certificates.
func TestKubelet(t *testing.T) {
	c := Start(t, Options{Controllers: []string{}}) // no controllers needed
	k := c.StartKubelet(t, "node-a")
	ctx := context.Background()
	admin := c.AdminClient()
	ns := c.NewNamespace(t, "logs")

	node, err := admin.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(k.Port()) || node.Status.Addresses[0].Address != "127.0.0.1" {
		t.Errorf("node status %+v", node.Status)
	}

	// No service-account controller runs: make the namespace's default
	// account the pods are admitted with.
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2"} {
		_, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}, {Name: "proxy", Image: "example.com/proxy:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	k.Schedule(t, ns, "web-1")
	if p := k.Start(t, ns, "web-1"); p.Status.Phase != corev1.PodRunning || !p.Status.ContainerStatuses[0].Ready || p.Spec.NodeName != "node-a" {
		t.Fatalf("started pod %+v", p.Status)
	}
	k.SetLog(ns, "web-1", "web", false, "one\ntwo\nthree\n")
	k.SetLog(ns, "web-1", "web", true, "crashed: out of memory\n")

	logs := func(pod string, o corev1.PodLogOptions) (string, error) {
		rc, err := admin.CoreV1().Pods(ns).GetLogs(pod, &o).Stream(ctx)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	tail := int64(2)
	limit := int64(4)
	for _, tt := range []struct {
		o    corev1.PodLogOptions
		want string
	}{
		{corev1.PodLogOptions{Container: "web"}, "one\ntwo\nthree\n"},
		{corev1.PodLogOptions{Container: "web", TailLines: &tail}, "two\nthree\n"},
		{corev1.PodLogOptions{Container: "web", LimitBytes: &limit}, "one\n"},
		{corev1.PodLogOptions{Container: "web", Previous: true}, "crashed: out of memory\n"},
		{corev1.PodLogOptions{Container: "proxy"}, ""}, // printed nothing
	} {
		got, err := logs("web-1", tt.o)
		if err != nil || got != tt.want {
			t.Errorf("logs %+v = %q, %v; want %q", tt.o, got, err, tt.want)
		}
	}
	got, err := logs("web-1", corev1.PodLogOptions{Container: "web", Timestamps: true, TailLines: &tail})
	if err != nil || !strings.HasSuffix(got, "Z three\n") || strings.Count(got, "\n") != 2 {
		t.Errorf("timestamps: %q, %v", got, err)
	}

	// The kubelet's refusals come back through the API server.
	_, err = logs("web-1", corev1.PodLogOptions{Container: "proxy", Previous: true})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `previous terminated container "proxy" in pod "web-1" not found`) {
		t.Errorf("no previous container: %v", err)
	}
	_, err = logs("web-1", corev1.PodLogOptions{Container: "sidecar"})
	if !apierrors.IsBadRequest(err) { // the API server checks the container itself
		t.Errorf("unknown container: %v", err)
	}

	// Every call came from the API server's kubelet client certificate.
	reqs := k.Requests()
	if len(reqs) < 6 {
		t.Fatalf("%d requests reached the kubelet", len(reqs))
	}
	for _, r := range reqs {
		if r.Client != KubeletClientName || r.Namespace != ns || r.Pod != "web-1" {
			t.Errorf("request %+v", r)
		}
	}
	if r := reqs[1]; r.TailLines == nil || *r.TailLines != 2 || r.Previous {
		t.Errorf("tail request %+v", r)
	}

	// A pod on no node has nothing to read; the kubelet knows only its pods.
	if got, err := logs("web-2", corev1.PodLogOptions{Container: "web"}); err != nil || got != "" {
		t.Errorf("unscheduled pod: %q, %v", got, err)
	}

	// Nobody reaches the kubelet directly without a client certificate.
	resp, err := (&http.Client{}).Get("https://127.0.0.1:" + strconv.Itoa(k.Port()) + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Error("the kubelet answered a client without a certificate")
	}

	// RBAC guards pods/log as in any cluster.
	bob, err := kubernetes.NewForConfig(c.ConfigFor("bob"))
	if err != nil {
		t.Fatal(err)
	}
	c.Grant(t, ns, UserSubject("bob"), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}})
	if _, err := bob.CoreV1().Pods(ns).GetLogs("web-1", &corev1.PodLogOptions{Container: "web"}).DoRaw(ctx); !apierrors.IsForbidden(err) {
		t.Errorf("bob without pods/log: %v", err)
	}
	c.Grant(t, ns, UserSubject("bob"), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}})
	if b, err := bob.CoreV1().Pods(ns).GetLogs("web-1", &corev1.PodLogOptions{Container: "web"}).DoRaw(ctx); err != nil || string(b) != "one\ntwo\nthree\n" {
		t.Errorf("bob with pods/log: %q, %v", b, err)
	}

	// A Job's pod, as the kubelet reports one that ran to the end.
	if p := k.Finish(t, ns, "web-1", 3); p.Status.Phase != corev1.PodFailed || p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
		t.Errorf("finished pod %+v", p.Status)
	}
}
