package useraction

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// These tests run the kubernetes_job runner against a real kube-apiserver
// and kube-controller-manager (internal/testenv/kubetest): the real Job
// controller creates the pods and completes or fails the Job. No real
// node runs them: the test plays the scheduler and the kubelet with
// kubetest's fake kubelet. It binds the Job's pod to the fake's node,
// reports the pod running and finished through the status subresource,
// and serves what its containers printed on the kubelet API, which the
// API server's pods/log reaches over TLS with the cluster's certificates,
// as in a real cluster. The runner reads the log tail exactly as it does
// in production: pods list, then pods/log through the API server.

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop cluster:", err)
	}
	os.Exit(code)
}

const drainSrc = `name: emails.drain
summary: Drain a mail queue.
kind: mutating
params:
  queue: {type: string, enum: [emails, webhooks], required: true}
  batch: {type: integer, min: 10, max: 5000, default: 500}
  note: {type: string}
examples:
  - text: drain the emails queue
    params: {queue: emails}
run:
  kubernetes_job: {namespace: NAMESPACE, template: jobs/drain.yaml, timeout: 2m}
`

const drainJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: emails-drain
  labels: {team: ops}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
        - {name: wait, image: busybox:1.36, args: ["true"]}
      containers:
        - name: drain
          image: registry.example.com/ops/queue-tools:2.3.1
          args: [drain, --from-env]
          env: [{name: BROKER_URL, value: "amqps://broker:5671"}]
`

// loadJob loads the drain action for namespace ns with the given clients.
func loadJob(t *testing.T, ns string, clients KubeClients) *Action {
	t.Helper()
	dir := writeDir(t, map[string]string{
		"drain.yaml":      strings.Replace(drainSrc, "NAMESPACE", ns, 1),
		"jobs/drain.yaml": drainJob,
	})
	acts, err := LoadDir(dir, Options{Kube: clients, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return acts[0]
}

func static(c kubernetes.Interface) KubeClients {
	return func(string) (kube.Interface, error) { return kubego.Wrap(c), nil }
}

// jobPod waits for the pod the Job controller creates for the Job.
func jobPod(t *testing.T, c kubernetes.Interface, ns, job string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	kubetest.WaitFor(t, 30*time.Second, "the Job's pod", func(ctx context.Context) error {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return errors.New("no pod yet")
		}
		pod = &pods.Items[0]
		return nil
	})
	return pod
}

// runPod plays the node for the Job's pod: binds it to the fake kubelet,
// reports it running, sets what each container printed, and, unless
// exitCode is nil, reports it finished with that exit code.
func runPod(t *testing.T, k *kubetest.Kubelet, c kubernetes.Interface, ns, job string, logs map[string]string, exitCode *int32) *corev1.Pod {
	t.Helper()
	pod := jobPod(t, c, ns, job)
	k.Schedule(t, ns, pod.Name)
	k.Start(t, ns, pod.Name)
	for container, text := range logs {
		k.SetLog(ns, pod.Name, container, false, text)
	}
	if exitCode != nil {
		k.Finish(t, ns, pod.Name, *exitCode)
	}
	return pod
}

func exit(code int32) *int32 { return &code }

// numbered is n log lines "prefix 1" to "prefix n", each ending in a newline.
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i+1)
	}
	return out
}

func logText(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// lastRequest is the last pods/log call the fake kubelet answered.
func lastRequest(t *testing.T, k *kubetest.Kubelet) kubetest.LogRequest {
	t.Helper()
	reqs := k.Requests()
	if len(reqs) == 0 {
		t.Fatal("no pods/log request reached the kubelet")
	}
	return reqs[len(reqs)-1]
}

type runOutcome struct {
	res action.Result
	err error
}

// start runs the action in the background; the result arrives on the channel.
func start(ctx context.Context, a *Action, req action.Request) <-chan runOutcome {
	out := make(chan runOutcome, 1)
	go func() {
		res, err := a.Run(ctx, req)
		out <- runOutcome{res, err}
	}()
	return out
}

func wait(t *testing.T, ch <-chan runOutcome) runOutcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(90 * time.Second):
		t.Fatal("the action did not return")
		return runOutcome{}
	}
}

type progressLog struct{ texts chan string }

func (p progressLog) Update(_ context.Context, text string) { p.texts <- text }

// brokerPassword is a credential a runbook prints by mistake; built from
// parts so that no secret-shaped literal is in the repository.
var brokerPassword = strings.Join([]string{"q7Rt", "x9Vw", "2kLm"}, "")

func TestJobSucceeds(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain")
	k := c.StartKubelet(t, "useraction-succeeds")
	client := c.AdminClient()
	a := loadJob(t, ns, static(client))
	if a.RunTimeout() <= 2*time.Minute {
		t.Errorf("RunTimeout %s does not cover the Job's timeout", a.RunTimeout())
	}
	p := validated(t, a, map[string]any{"queue": "emails", "note": `x"; rm -rf / #`})
	progress := progressLog{texts: make(chan string, 4)}
	req := action.Request{Action: "emails.drain", Params: p, RequestID: "5f1c0ffee0a1b2c3", Subject: "console:alice", Progress: progress}

	plan, err := a.Plan(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	name := a.job.jobName("emails.drain", req.RequestID)
	if !strings.HasPrefix(name, "emails-drain-") {
		t.Errorf("job name %q", name)
	}
	for _, want := range []string{"start Job " + ns + "/" + name, "jobs/drain.yaml", "registry.example.com/ops/queue-tools:2.3.1",
		"PARLEY_PARAM_QUEUE=emails", "PARLEY_PARAM_BATCH=500", "wait up to 2m"} {
		if !strings.Contains(plan.Summary, want) {
			t.Errorf("plan lacks %q: %s", want, plan.Summary)
		}
	}
	if jobs, _ := client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Fatalf("the plan's dry run created %d Jobs", len(jobs.Items))
	}

	ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
	defer cancel()
	done := start(ctx, a, req)
	// What the drain printed: its init container too, which the reply
	// does not show (the pod did not fail; its main container speaks).
	pod := runPod(t, k, client, ns, name, map[string]string{
		"wait": "broker is up\n",
		"drain": "\x1b[32mstarting\x1b[0m drain of emails (batch 500)\n" +
			"connecting to amqps://drainer:" + brokerPassword + "@broker:5671/\n" +
			"moved 1200 messages in 3 batches\n" +
			"done\n",
	}, exit(0))
	got := wait(t, done)
	if got.err != nil {
		t.Fatalf("run: %v", got.err)
	}
	if msg := <-progress.texts; !strings.Contains(msg, "Started Job "+ns+"/"+name+"; waiting up to 2m") {
		t.Errorf("progress = %q", msg)
	}
	// The reply is the drain container's log tail, read through the API
	// server from the kubelet, cleaned and redacted.
	heading := ". Last log lines of pod " + pod.Name + ", container drain:"
	if !strings.HasPrefix(got.res.Text, "Job "+ns+"/"+name+" succeeded in ") || !strings.HasSuffix(got.res.Text, heading) {
		t.Errorf("reply = %q", got.res.Text)
	}
	wantCode := "starting drain of emails (batch 500)\nconnecting to amqps://drainer:[REDACTED]@broker:5671/\nmoved 1200 messages in 3 batches\ndone"
	if got.res.Code != wantCode {
		t.Errorf("log tail = %q\nwant %q", got.res.Code, wantCode)
	}
	if strings.Contains(fmt.Sprint(got.res), brokerPassword) {
		t.Errorf("the password the Job printed reached the reply: %+v", got.res)
	}
	if r := lastRequest(t, k); r.Pod != pod.Name || r.Container != "drain" || r.TailLines == nil || *r.TailLines != LogLines ||
		r.LimitBytes == nil || *r.LimitBytes != maxLogStream || r.Previous || r.Client != kubetest.KubeletClientName {
		t.Errorf("pods/log reached the kubelet as %+v", r)
	}
	if got.res.Outcome["status"] != "succeeded" || got.res.Outcome["job"] != ns+"/"+name {
		t.Errorf("outcome = %v", got.res.Outcome)
	}

	// The parameters reach every container as environment variables,
	// unchanged, and nowhere else.
	for _, ctr := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		env := map[string]string{}
		for _, e := range ctr.Env {
			env[e.Name] = e.Value
		}
		if env["PARLEY_PARAM_QUEUE"] != "emails" || env["PARLEY_PARAM_BATCH"] != "500" || env["PARLEY_PARAM_NOTE"] != `x"; rm -rf / #` ||
			env["PARLEY_REQUEST_ID"] != req.RequestID || env["PARLEY_ACTION"] != "emails.drain" {
			t.Errorf("container %s env = %v", ctr.Name, env)
		}
		if strings.Contains(strings.Join(append(ctr.Command, ctr.Args...), " "), "emails") {
			t.Errorf("a parameter reached the command line of %s: %v %v", ctr.Name, ctr.Command, ctr.Args)
		}
	}
	if env := pod.Spec.Containers[0].Env; env[0].Name != "BROKER_URL" {
		t.Errorf("the template's own env was not kept first: %v", env)
	}
	job, err := client.BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[LabelRequest] != req.RequestID || job.Labels[LabelManagedBy] != "parley" || job.Labels["team"] != "ops" ||
		pod.Labels[LabelRequest] != req.RequestID || job.Annotations[AnnotationAsking] != "console:alice" {
		t.Errorf("labels = %v, pod labels = %v, annotations = %v", job.Labels, pod.Labels, job.Annotations)
	}
	if *job.Spec.TTLSecondsAfterFinished != 3600 || *job.Spec.ActiveDeadlineSeconds != 120 || *job.Spec.BackoffLimit != 0 {
		t.Errorf("ttl %d, deadline %d, backoff %d", *job.Spec.TTLSecondsAfterFinished, *job.Spec.ActiveDeadlineSeconds, *job.Spec.BackoffLimit)
	}

	// The same request never starts a second Job.
	_, err = a.Run(t.Context(), req)
	if !errors.Is(err, action.ErrConflict) || !strings.Contains(err.Error(), "not started twice") {
		t.Errorf("second run: %v", err)
	}
	jobs, err := client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelRequest + "=" + req.RequestID})
	if err != nil || len(jobs.Items) != 1 {
		t.Errorf("%d Jobs for the request (%v), want 1", len(jobs.Items), err)
	}
}

// A failed Job answers with its reason and the last LogLines lines of its
// log, the newest last, redacted.
func TestJobFails(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-fail")
	k := c.StartKubelet(t, "useraction-fails")
	client := c.AdminClient()
	a := loadJob(t, ns, static(client))
	req := action.Request{Params: validated(t, a, map[string]any{"queue": "webhooks"}), RequestID: "fail-1"}
	ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
	defer cancel()
	done := start(ctx, a, req)
	printed := append(numbered("redelivered batch", 44), "error: broker refused the connection: password="+brokerPassword)
	pod := runPod(t, k, client, ns, a.job.jobName("emails.drain", req.RequestID), map[string]string{"drain": logText(printed)}, exit(3))
	got := wait(t, done)
	if got.err == nil {
		t.Fatal("a failed Job succeeded")
	}
	want := append(numbered("redelivered batch", 44)[25:], "error: broker refused the connection: password=[REDACTED]")
	wantErr := "failed (BackoffLimitExceeded: Job has reached the specified backoff limit). Last log lines of pod " + pod.Name +
		", container drain:\n" + strings.Join(want, "\n")
	if len(want) != LogLines || !strings.HasSuffix(got.err.Error(), wantErr) {
		t.Errorf("err = %v\nwant it to end with %q", got.err, wantErr)
	}
	if strings.Contains(got.err.Error(), brokerPassword) || strings.Contains(got.err.Error(), "batch 25\n") {
		t.Errorf("err shows a secret or more than the tail: %v", got.err)
	}
	if got.res.Outcome["job"] == "" {
		t.Errorf("outcome = %v", got.res.Outcome)
	}
}

// Long logs are tailed to LogLines lines and to maxLogOutput bytes, the
// newest kept; escape codes are removed and a huge line is cut. In a pod
// that failed, the log read is the failed container's, even an init
// container's.
func TestJobLogTail(t *testing.T) {
	c := kubetest.Shared(t)
	k := c.StartKubelet(t, "useraction-tail")
	client := c.AdminClient()

	t.Run("long lines", func(t *testing.T) {
		ns := c.NewNamespace(t, "drain-long")
		a := loadJob(t, ns, static(client))
		req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "long-1"}
		ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
		defer cancel()
		done := start(ctx, a, req)
		var printed []string
		for i := 1; i <= 59; i++ {
			printed = append(printed, fmt.Sprintf("\x1b[33mline %02d\x1b[0m %s", i, strings.Repeat("x", 600)))
		}
		printed = append(printed, "FATAL "+strings.Repeat("y", 5000))
		runPod(t, k, client, ns, a.job.jobName("emails.drain", req.RequestID), map[string]string{"drain": logText(printed)}, exit(0))
		got := wait(t, done)
		if got.err != nil {
			t.Fatal(got.err)
		}
		shown := strings.Split(got.res.Code, "\n")
		if len(got.res.Code) > maxLogOutput || len(shown) < 2 || len(shown) >= LogLines {
			t.Fatalf("%d bytes in %d lines shown:\n%s", len(got.res.Code), len(shown), got.res.Code)
		}
		last := shown[len(shown)-1]
		if !strings.HasPrefix(last, "FATAL yyy") || !strings.HasSuffix(last, " …(cut)") || len(last) > maxLogLine+len(" …(cut)") {
			t.Errorf("the huge last line is %d bytes: %.80q…", len(last), last)
		}
		// The newest lines, contiguous, without their escape codes.
		for i, line := range shown[:len(shown)-1] {
			n := 60 - (len(shown) - 1) + i
			if want := fmt.Sprintf("line %02d %s", n, strings.Repeat("x", 600)); line != want {
				t.Errorf("line %d shown = %.40q…, want line %02d", i, line, n)
			}
		}
		older := LogLines - len(shown)
		if want := fmt.Sprintf("(the newest that fit in 4 KiB; %d older lines left out):", older); !strings.HasSuffix(got.res.Text, want) {
			t.Errorf("reply = %q, want it to end with %q", got.res.Text, want)
		}
		if strings.ContainsRune(got.res.Code, '\x1b') {
			t.Errorf("escape codes reached the reply: %q", got.res.Code)
		}
	})

	// The kubelet applies limitBytes from the start of the tail: lines
	// this long must not push the newest ones, the error, out.
	t.Run("huge lines", func(t *testing.T) {
		ns := c.NewNamespace(t, "drain-huge")
		a := loadJob(t, ns, static(client))
		req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "huge-1"}
		ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
		defer cancel()
		done := start(ctx, a, req)
		var printed []string
		for i := 1; i <= 30; i++ {
			printed = append(printed, fmt.Sprintf("dump %02d %s", i, strings.Repeat("z", 20000)))
		}
		printed = append(printed, "FATAL: queue emails is locked by another drain")
		runPod(t, k, client, ns, a.job.jobName("emails.drain", req.RequestID), map[string]string{"drain": logText(printed)}, exit(1))
		got := wait(t, done)
		if got.err == nil {
			t.Fatal("a failed Job succeeded")
		}
		msg := got.err.Error()
		if !strings.HasSuffix(msg, "\nFATAL: queue emails is locked by another drain") {
			t.Errorf("the newest line is not shown last: %.300q…", msg[max(0, len(msg)-300):])
		}
		heading, tail, _ := strings.Cut(msg, ":\n")
		if shown := strings.Count(tail, "\n") + 1; !strings.Contains(heading, fmt.Sprintf("; %d older lines left out)", LogLines-shown)) || len(tail) > maxLogOutput {
			t.Errorf("%d lines in %d bytes under %q", shown, len(tail), heading)
		}
	})

	t.Run("failed init container", func(t *testing.T) {
		ns := c.NewNamespace(t, "drain-init")
		a := loadJob(t, ns, static(client))
		req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "init-1"}
		ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
		defer cancel()
		done := start(ctx, a, req)
		pod := jobPod(t, client, ns, a.job.jobName("emails.drain", req.RequestID))
		k.Schedule(t, ns, pod.Name)
		k.SetLog(ns, pod.Name, "wait", false, "waiting for the broker\nbroker unreachable after 30s\n")
		// As the kubelet reports a pod whose init container failed: the
		// main container never started.
		k.UpdateStatus(t, ns, pod.Name, func(p *corev1.Pod) {
			now := metav1.Now()
			p.Status.Phase = corev1.PodFailed
			p.Status.StartTime = &now
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "wait", Image: p.Spec.InitContainers[0].Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}}}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "drain", Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
		})
		got := wait(t, done)
		want := ". Last log lines of pod " + pod.Name + ", container wait:\nwaiting for the broker\nbroker unreachable after 30s"
		if got.err == nil || !strings.HasSuffix(got.err.Error(), want) {
			t.Errorf("err = %v, want it to end with %q", got.err, want)
		}
	})
}

// A reply template sees the log tail as .response, parsed when the
// runbook printed one JSON summary.
func TestJobReplyTemplate(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-reply")
	k := c.StartKubelet(t, "useraction-reply")
	client := c.AdminClient()
	dir := writeDir(t, map[string]string{
		"drain.yaml": strings.Replace(drainSrc, "NAMESPACE", ns, 1) +
			"reply: \"Drained {{ .response.moved }} messages of {{ .queue }} in {{ .response.batches }} batches.\"\n",
		"jobs/drain.yaml": drainJob,
	})
	acts, err := LoadDir(dir, Options{Kube: static(client), PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := acts[0]
	req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "reply-1"}
	ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
	defer cancel()
	done := start(ctx, a, req)
	runPod(t, k, client, ns, a.job.jobName("emails.drain", req.RequestID),
		map[string]string{"drain": `{"moved": 1200, "batches": 3}` + "\n"}, exit(0))
	got := wait(t, done)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.res.Text != "Drained 1200 messages of emails in 3 batches." || got.res.Code != "" {
		t.Errorf("reply = %q, code %q", got.res.Text, got.res.Code)
	}
}

// A Job still running at its timeout is deleted with its pods, and the
// reply shows what it printed so far.
func TestJobTimeoutDeletesIt(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-slow")
	k := c.StartKubelet(t, "useraction-slow")
	client := c.AdminClient()
	a := loadJob(t, ns, static(client))
	a.job.timeout = 5 * time.Second // the file's minimum is 10s; the test need not wait that long
	req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "slow-1"}
	name := a.job.jobName("emails.drain", req.RequestID)
	begun := time.Now()
	done := start(t.Context(), a, req)
	pod := runPod(t, k, client, ns, name, map[string]string{"drain": "redelivered batch 1\nwaiting for the lock on emails\n"}, nil)
	if took := time.Since(begun); took >= a.job.timeout {
		t.Fatalf("the pod was started only after %s, past the Job's %s timeout: the machine is too slow for this test", took, a.job.timeout)
	}
	got := wait(t, done)
	want := "did not finish within 5s (timed out); it was deleted with its pods. Last log lines of pod " + pod.Name +
		", container drain:\nredelivered batch 1\nwaiting for the lock on emails"
	if got.err == nil || !errors.Is(got.err, context.DeadlineExceeded) || !strings.HasSuffix(got.err.Error(), want) {
		t.Fatalf("err = %v\nwant it to end with %q", got.err, want)
	}
	kubetest.WaitFor(t, 30*time.Second, "the Job to be gone", func(ctx context.Context) error {
		_, err := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

// A pod no node ran has no log: the answer says why instead of "wrote
// no log lines".
func TestJobLogsOfAnUnscheduledPod(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-pending")
	client := c.AdminClient()
	var pod *corev1.Pod
	kubetest.WaitFor(t, 30*time.Second, "a pod (the namespace's service account comes first)", func(ctx context.Context) error {
		var err error
		pod, err = client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "emails-drain-1-x7k2p", Labels: map[string]string{batchv1.JobNameLabel: "emails-drain-1"}},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "drain", Image: "example.com/drain:1"}}},
		}, metav1.CreateOptions{})
		return err
	})
	pod.Status.Phase = corev1.PodPending
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient memory."}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := jobLogs(t.Context(), kubego.Wrap(client), ns, "emails-drain-1", LogLines)
	res := jobResult{log: l, logsErr: err, logsRead: true}
	want := " (no log: its pod emails-drain-1-x7k2p was never scheduled to a node (Unschedulable: 0/3 nodes are available: 3 Insufficient memory.))"
	if got := logsSuffix(res); got != want {
		t.Errorf("logs suffix = %q, want %q", got, want)
	}
	if _, err := jobLogs(t.Context(), kubego.Wrap(client), ns, "no-such-job", LogLines); err == nil || err.Error() != "the Job has no pod" {
		t.Errorf("a Job without pods: %v", err)
	}
}

func TestJobPlanChecksTheCluster(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-plan")
	req := func(a *Action) action.Request {
		return action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "plan-1", Subject: "console:mallory"}
	}
	// A namespace that does not exist.
	a := loadJob(t, "no-such-namespace", static(c.AdminClient()))
	if _, err := a.Plan(t.Context(), req(a)); !errors.Is(err, action.ErrNotFound) {
		t.Errorf("missing namespace: %v", err)
	}
	// A requester whose Kubernetes identity may not create Jobs.
	impersonated := func(string) (kube.Interface, error) {
		k, err := kubernetes.NewForConfig(c.ConfigFor("mallory"))
		if err != nil {
			return nil, err
		}
		return kubego.Wrap(k), nil
	}
	a = loadJob(t, ns, impersonated)
	if _, err := a.Plan(t.Context(), req(a)); !errors.Is(err, action.ErrForbidden) {
		t.Errorf("no RBAC: %v", err)
	}
	if _, err := a.Run(t.Context(), req(a)); !errors.Is(err, action.ErrForbidden) {
		t.Errorf("no RBAC, run: %v", err)
	}
	// Without a cluster configured, the action says so.
	a = loadJob(t, ns, nil)
	if _, err := a.Run(t.Context(), req(a)); !errors.Is(err, action.ErrNotConfigured) {
		t.Errorf("no cluster: %v", err)
	}
}

// readTail keeps the end of a stream, from the start of a line, and says
// what it left out.
func TestReadTail(t *testing.T) {
	log := logText(numbered("line", 1000)) // "line 1\n" … "line 1000\n": 8893 bytes
	for _, tc := range []struct {
		keep, limit int
		first       string
		dropped     int
		truncated   bool
	}{
		{keep: 1 << 20, limit: 1 << 20, first: "line 1\n"},
		{keep: 100, limit: 1 << 20, first: "line 990\n", dropped: 989},
		{keep: 100, limit: 4000, first: "line 447\n", dropped: 446, truncated: true}, // ends inside line 456
	} {
		tail, dropped, truncated, err := readTail(strings.NewReader(log), tc.keep, tc.limit)
		if err != nil || !strings.HasPrefix(string(tail), tc.first) || dropped != tc.dropped || truncated != tc.truncated || len(tail) > tc.keep {
			t.Errorf("keep %d, limit %d: %q… (%d bytes), dropped %d, truncated %v, %v; want %q…, dropped %d, truncated %v",
				tc.keep, tc.limit, string(tail[:min(len(tail), 12)]), len(tail), dropped, truncated, err, tc.first, tc.dropped, tc.truncated)
		}
		if !tc.truncated && !strings.HasSuffix(string(tail), "line 1000\n") {
			t.Errorf("keep %d: the end is missing: %q", tc.keep, tail)
		}
	}
}
