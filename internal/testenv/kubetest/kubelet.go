package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Kubelet is a fake kubelet for a Cluster: a TLS server on 127.0.0.1 that
// answers the kubelet API's containerLogs endpoint as a real kubelet
// does, registered as a Node whose InternalIP and kubelet endpoint point
// at it. The API server's pods/log (kubectl logs, client-go's GetLogs)
// then reaches it for pods bound to that node: the request goes through
// the API server's authentication, RBAC (pods/log) and its kubelet client,
// which verifies the fake's serving certificate against the cluster CA and
// presents its own client certificate, which the fake verifies.
//
// The test plays the scheduler and the kubelet around it: Schedule binds
// a pod to the node, Start and Finish write the pod status a kubelet
// would, UpdateStatus any other, and SetLog what a container printed.
type Kubelet struct {
	c    *Cluster
	name string
	port int
	srv  *http.Server
	done chan struct{}

	mu   sync.Mutex
	logs map[logKey][]logLine
	reqs []LogRequest
}

type logKey struct {
	namespace, pod, container string
	previous                  bool
}

type logLine struct {
	at   time.Time
	text string
}

// LogRequest is one containerLogs call the fake kubelet answered, as the
// API server sent it.
type LogRequest struct {
	Namespace, Pod, Container string
	Previous, Timestamps      bool
	TailLines, LimitBytes     *int64
	// Client is the common name of the caller's client certificate
	// (KubeletClientName for the API server).
	Client string
}

// StartKubelet starts a fake kubelet and registers it as the Node name,
// Ready. Nodes are cluster-wide: tests sharing a cluster each pick their
// own name. The server and the Node go when the test ends.
func (c *Cluster) StartKubelet(t testing.TB, name string) *Kubelet {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.pki.servingCert, c.pki.servingKey)
	if err != nil {
		t.Fatalf("kubetest: kubelet certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.caPEM) {
		t.Fatal("kubetest: kubelet: bad CA")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kubetest: kubelet: %v", err)
	}
	k := &Kubelet{c: c, name: name, port: l.Addr().(*net.TCPAddr).Port, done: make(chan struct{}), logs: map[logKey][]logLine{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.containerLogs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	k.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert, // the kubelet's x509 authentication
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
	}
	go func() {
		defer close(k.done)
		if err := k.srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("kubetest: kubelet %s: %v", name, err)
		}
	}()
	t.Cleanup(k.stop(t))
	if err := k.register(); err != nil {
		t.Fatal(err)
	}
	return k
}

// stop shuts the server down and deletes the Node (unless the cluster is
// already gone).
func (k *Kubelet) stop(t testing.TB) func() {
	return func() {
		ctx, cancel := callCtx()
		defer cancel()
		if err := k.srv.Shutdown(ctx); err != nil {
			t.Errorf("kubetest: stop kubelet %s: %v", k.name, err)
		}
		<-k.done
		if k.c.stopped.Load() {
			return
		}
		if err := k.c.client.CoreV1().Nodes().Delete(ctx, k.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("kubetest: delete node %s: %v", k.name, err)
		}
	}
}

// register creates the Node with the fake's address and port, and sets
// its status as a kubelet does.
func (k *Kubelet) register() error {
	ctx, cancel := callCtx()
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.name, Labels: map[string]string{"kubernetes.io/hostname": k.name}}}
	created, err := k.c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("kubetest: register node %s: %w", k.name, err)
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.port)}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubetest fake kubelet", LastHeartbeatTime: now, LastTransitionTime: now}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "kubetest", OperatingSystem: "linux", Architecture: "amd64"},
	}
	if _, err := k.c.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubetest: node %s status: %w", k.name, err)
	}
	return nil
}

// NodeName is the Node the kubelet registered.
func (k *Kubelet) NodeName() string { return k.name }

// Port is the kubelet API's port on 127.0.0.1.
func (k *Kubelet) Port() int { return k.port }

// SetLog sets what a container printed: the running container's log, or
// with previous the log of the one that ended before it. Each line gets
// the time of the call (for timestamps and sinceSeconds). A container
// whose log was never set printed nothing; one whose previous log was
// never set has no previous container, as the kubelet answers.
func (k *Kubelet) SetLog(namespace, pod, container string, previous bool, text string) {
	now := time.Now()
	var lines []logLine
	for _, l := range strings.SplitAfter(text, "\n") {
		if l != "" {
			lines = append(lines, logLine{at: now, text: l})
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.logs[logKey{namespace, pod, container, previous}] = lines
}

// Requests returns the containerLogs calls answered so far.
func (k *Kubelet) Requests() []LogRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.reqs)
}

// containerLogs is GET /containerLogs/{namespace}/{pod}/{container}, with
// the query the API server builds from PodLogOptions: tailLines,
// limitBytes, previous, timestamps, sinceSeconds, sinceTime. follow is
// accepted and answered with what there is (the fake never streams).
func (k *Kubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, podName, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	q := r.URL.Query()
	lr := LogRequest{Namespace: ns, Pod: podName, Container: container,
		Previous: q.Get("previous") == "true", Timestamps: q.Get("timestamps") == "true"}
	if len(r.TLS.PeerCertificates) > 0 {
		lr.Client = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	var since time.Time
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"tailLines", &lr.TailLines}, {"limitBytes", &lr.LimitBytes}, {"sinceSeconds", nil}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || (p.name != "tailLines" && n == 0) {
			http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
			return
		}
		if p.dst != nil {
			*p.dst = &n
		} else {
			since = time.Now().Add(-time.Duration(n) * time.Second)
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
			return
		}
		since = t
	}
	k.mu.Lock()
	k.reqs = append(k.reqs, lr)
	k.mu.Unlock()

	// The kubelet knows the pods bound to its node, and their containers.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	pod, err := k.c.client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	if err != nil || pod.Spec.NodeName != k.name {
		http.Error(w, fmt.Sprintf("pod %q does not exist", podName), http.StatusNotFound)
		return
	}
	if !slices.ContainsFunc(append(slices.Clone(pod.Spec.Containers), pod.Spec.InitContainers...), func(c corev1.Container) bool { return c.Name == container }) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", container, podName), http.StatusNotFound)
		return
	}
	k.mu.Lock()
	lines, ok := k.logs[logKey{ns, podName, container, lr.Previous}]
	lines = slices.Clone(lines)
	k.mu.Unlock()
	if lr.Previous && !ok {
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, podName), http.StatusBadRequest)
		return
	}
	lines = slices.DeleteFunc(lines, func(l logLine) bool { return l.at.Before(since) })
	if lr.TailLines != nil && int(*lr.TailLines) < len(lines) {
		lines = lines[len(lines)-int(*lr.TailLines):]
	}
	var b strings.Builder
	for _, l := range lines {
		if lr.Timestamps {
			b.WriteString(l.at.UTC().Format(time.RFC3339Nano) + " ")
		}
		b.WriteString(l.text)
	}
	out := b.String()
	if lr.LimitBytes != nil && int64(len(out)) > *lr.LimitBytes {
		out = out[:*lr.LimitBytes]
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(out))
}

// Schedule binds the pod to this kubelet's node, as the scheduler does
// (there is none in a kubetest cluster).
func (k *Kubelet) Schedule(t testing.TB, namespace, pod string) {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	err := k.c.client.CoreV1().Pods(namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: namespace},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.name},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: bind %s/%s to %s: %v", namespace, pod, k.name, err)
	}
}

// UpdateStatus changes the pod's status through the status subresource,
// as the kubelet does, retrying when the status moved meanwhile.
func (k *Kubelet) UpdateStatus(t testing.TB, namespace, pod string, mutate func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := k.c.client.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(p)
		out, err = k.c.client.CoreV1().Pods(namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("kubetest: status of %s/%s: %v", namespace, pod, err)
	}
	return out
}

// Start marks the pod Running with every container started and ready, as
// the kubelet reports a healthy pod.
func (k *Kubelet) Start(t testing.TB, namespace, pod string) *corev1.Pod {
	t.Helper()
	return k.UpdateStatus(t, namespace, pod, func(p *corev1.Pod) {
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.HostIP, p.Status.PodIP = "127.0.0.1", "127.0.0.1"
		p.Status.StartTime = &now
		p.Status.Conditions = nil
		for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptrTo(true),
				ContainerID: "containerd://" + p.Name + "-" + c.Name,
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
	})
}

// Finish marks every container of the pod terminated with exitCode and
// the pod Succeeded (exit 0) or Failed, as the kubelet reports a pod
// whose containers ran to the end (a Job's pod).
func (k *Kubelet) Finish(t testing.TB, namespace, pod string, exitCode int32) *corev1.Pod {
	t.Helper()
	return k.UpdateStatus(t, namespace, pod, func(p *corev1.Pod) {
		now := metav1.Now()
		reason, phase := "Completed", corev1.PodSucceeded
		if exitCode != 0 {
			reason, phase = "Error", corev1.PodFailed
		}
		p.Status.Phase = phase
		if p.Status.StartTime == nil {
			p.Status.StartTime = &now
		}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now},
		}
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptrTo(false),
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: exitCode, Reason: reason, StartedAt: *p.Status.StartTime, FinishedAt: now}},
			})
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
