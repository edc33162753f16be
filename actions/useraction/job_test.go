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
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// These tests run the kubernetes_job runner against a real kube-apiserver
// and kube-controller-manager (internal/testenv/kubetest): the real Job
// controller creates the pods and completes or fails the Job. There is no
// kubelet, so the test acts as one: it sets the pod's phase through the
// status subresource, as a kubelet reports a finished container.

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
	return func(string) (kubernetes.Interface, error) { return c, nil }
}

// finishPod waits for the Job's pod and reports it finished with phase,
// as a kubelet would.
func finishPod(t *testing.T, c kubernetes.Interface, ns, job string, phase corev1.PodPhase) *corev1.Pod {
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
	kubetest.WaitFor(t, 30*time.Second, "the pod's status update", func(ctx context.Context) error {
		p, err := c.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		exit := int32(0)
		if phase == corev1.PodFailed {
			exit = 3
		}
		p.Status.Phase = phase
		p.Status.StartTime = &now
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "drain", Image: p.Spec.Containers[0].Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, StartedAt: now, FinishedAt: now, Reason: "Completed"}}}}
		_, err = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err // a conflict with the controller's own write: try again
	})
	return pod
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

func TestJobSucceeds(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain")
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
	pod := finishPod(t, client, ns, name, corev1.PodSucceeded)
	got := wait(t, done)
	if got.err != nil {
		t.Fatalf("run: %v", got.err)
	}
	if msg := <-progress.texts; !strings.Contains(msg, "Started Job "+ns+"/"+name+"; waiting up to 2m") {
		t.Errorf("progress = %q", msg)
	}
	// No kubelet runs the pod here, so the API server has no log lines to
	// give (a pod never bound to a node has an empty log).
	if !strings.HasPrefix(got.res.Text, "Job "+ns+"/"+name+" succeeded in ") || !strings.HasSuffix(got.res.Text, " (its pod wrote no log lines).") {
		t.Errorf("reply = %q", got.res.Text)
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

func TestJobFails(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-fail")
	client := c.AdminClient()
	a := loadJob(t, ns, static(client))
	req := action.Request{Params: validated(t, a, map[string]any{"queue": "webhooks"}), RequestID: "fail-1"}
	ctx, cancel := context.WithTimeout(t.Context(), a.RunTimeout())
	defer cancel()
	done := start(ctx, a, req)
	finishPod(t, client, ns, a.job.jobName("emails.drain", req.RequestID), corev1.PodFailed)
	got := wait(t, done)
	if got.err == nil || !strings.Contains(got.err.Error(), "failed (BackoffLimitExceeded: Job has reached the specified backoff limit) (its pod wrote no log lines)") {
		t.Fatalf("err = %v", got.err)
	}
	if got.res.Outcome["job"] == "" {
		t.Errorf("outcome = %v", got.res.Outcome)
	}
}

func TestJobTimeoutDeletesIt(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "drain-slow")
	client := c.AdminClient()
	a := loadJob(t, ns, static(client))
	a.job.timeout = 3 * time.Second // the file's minimum is 10s; the test need not wait that long
	req := action.Request{Params: validated(t, a, map[string]any{"queue": "emails"}), RequestID: "slow-1"}
	name := a.job.jobName("emails.drain", req.RequestID)
	_, err := a.Run(t.Context(), req)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 3s (timed out); it was deleted with its pods") {
		t.Fatalf("err = %v", err)
	}
	kubetest.WaitFor(t, 30*time.Second, "the Job to be gone", func(ctx context.Context) error {
		_, err := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
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
	impersonated := func(string) (kubernetes.Interface, error) {
		return kubernetes.NewForConfig(c.ConfigFor("mallory"))
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
