package kubernetes

// kubernetes.pods, kubernetes.logs and kubernetes.changes on the sandbox
// (the demo shop), as the console demo shows them. The same actions on a
// real API server are in oncall_integration_test.go.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
)

type oncallKit struct {
	*kit
	pods    *Pods
	logs    *Logs
	changes *Changes
}

func newOncallKit(t testing.TB, manifests ...[]byte) *oncallKit {
	t.Helper()
	k := newKit(t, manifests...)
	o := Options{Clients: k.sb.Clients(), Now: clock}
	ok := &oncallKit{kit: k}
	var errs [3]error
	ok.pods, errs[0] = NewPods(o)
	ok.logs, errs[1] = NewLogs(o, LogsOptions{})
	ok.changes, errs[2] = NewChanges(o)
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	return ok
}

func run(t *testing.T, a action.Action, p action.Params) action.Result {
	t.Helper()
	spec := a.Spec()
	vp, err := spec.Validate(p)
	if err != nil {
		t.Fatalf("%s %v: %v", spec.Name, p, err)
	}
	res, err := a.Run(context.Background(), req(spec.Name, vp))
	if err != nil {
		t.Fatalf("%s %v: %v", spec.Name, p, err)
	}
	return res
}

func runErr(a action.Action, p action.Params) error {
	_, err := a.Run(context.Background(), req(a.Spec().Name, p))
	return err
}

func TestOnCallSpecs(t *testing.T) {
	sb, err := NewSandbox(DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Clients: sb.Clients()}
	logs, _ := NewLogs(o, LogsOptions{})
	bare, _ := NewLogs(o, LogsOptions{NoLogStore: true})
	for _, s := range []action.Spec{PodsSpec(), LogsSpec(), ChangesSpec()} {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		if len(s.Examples) < 4 || len(s.Examples) > 8 {
			t.Errorf("%s: %d examples, want 4 to 8", s.Name, len(s.Examples))
		}
		for _, e := range s.Examples {
			if _, err := s.Validate(e.Params); err != nil {
				t.Errorf("%s example %q: %v", s.Name, e.Text, err)
			}
		}
	}
	// With a log store, "logs" alone leans to it (loki.query's cue is 3);
	// without one, to the pods' logs. Pod, container, previous and
	// crash-loop logs are this action's either way.
	if c := logs.Spec().Vocabulary.Cues; c["logs"] >= 3 || c["pod logs"] <= 3 || c["previous logs"] <= 3 || c["crashloop logs"] <= 3 || c["container logs"] <= 3 {
		t.Errorf("cues with a log store: %v", c)
	}
	if c := bare.Spec().Vocabulary.Cues; c["logs"] <= 3 {
		t.Errorf("cues without a log store: %v", c)
	}
	if c := LogsSpec().Vocabulary.Cues; c["logs"] != 2 {
		t.Errorf("LogsSpec was changed by an instance: %v", c)
	}
}

func TestPodsSandbox(t *testing.T) {
	k := newOncallKit(t)
	res := run(t, k.pods, action.Params{"deployment": "payments", "namespace": "prod"})
	if want := "payments (prod): 2 pods, 2 ready, 7 restarts. payments-z26g8k25j7-x2k9q restarted 7 times, last Error (exit 1) 26m ago."; res.Text != want {
		t.Errorf("text %q\nwant %q", res.Text, want)
	}
	if got := res.Table.Rows[0]; strings.Join(got, "|") != "payments-z26g8k25j7-x2k9q|Running|1/1|7 (26m ago)|2d|sandbox-node-1|Error (exit 1) 26m ago" {
		t.Errorf("first row %q", got)
	}
	golden(t, "pods-prod-payments.golden", render(res))

	// No namespace: found where it exists, and said so. The scaled-up
	// search pod is 50m old, the other as old as its ReplicaSet.
	res = run(t, k.pods, action.Params{"deployment": "search"})
	if !strings.HasPrefix(res.Text, "search (prod): 2 pods, 2 ready, 0 restarts.") || !strings.Contains(res.Text, "search exists only in prod") {
		t.Errorf("search: %q", res.Text)
	}
	ages := []string{res.Table.Rows[0][4], res.Table.Rows[1][4]}
	if strings.Join(ages, ",") != "45d,50m" && strings.Join(ages, ",") != "50m,45d" {
		t.Errorf("ages %v", ages)
	}

	// A namespace without a deployment lists every pod.
	res = run(t, k.pods, action.Params{"namespace": "staging"})
	if !strings.HasPrefix(res.Text, "staging: 4 pods, 4 ready, 0 restarts.") || len(res.Table.Rows) != 4 {
		t.Errorf("staging: %q %v", res.Text, res.Table.Rows)
	}

	// A deployment scaled to zero has no pods: said, not a crash.
	if _, err := k.scale.Run(context.Background(), req(action.KubernetesScale, action.Params{"namespace": "staging", "deployment": "cart", "replicas": 0})); err != nil {
		t.Fatal(err)
	}
	res = run(t, k.pods, action.Params{"deployment": "cart", "namespace": "staging"})
	if res.Text != "cart (staging) has no pods (0 desired)." || res.Table != nil || res.Outcome["pods"] != "0" {
		t.Errorf("scaled to zero: %q %v %v", res.Text, res.Table, res.Outcome)
	}

	mustErrIs(t, runErr(k.pods, action.Params{"deployment": "chekout", "namespace": "prod"}), action.ErrNotFound, `did you mean "checkout"`)
	mustErrIs(t, runErr(k.pods, action.Params{"deployment": "checkout"}), action.ErrInvalid, "prod, staging; say which one")
	mustErrIs(t, runErr(k.pods, action.Params{"namespace": "qa"}), action.ErrNotFound, "no pods in qa")
}

func TestPodStatusReadsLikeKubectl(t *testing.T) {
	now := metav1.NewTime(t0)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(-d)) }
	pod := func(mut func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}},
		}
		mut(p)
		return p
	}
	for _, tt := range []struct {
		name, status, last string
		p                  *corev1.Pod
	}{
		{"running", "Running", "", pod(func(*corev1.Pod) {})},
		{"crash loop after an OOM kill", "CrashLoopBackOff", "OOMKilled (exit 137) 3m ago", pod(func(p *corev1.Pod) {
			cs := &p.Status.ContainerStatuses[0]
			cs.Ready, cs.RestartCount = false, 4
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, FinishedAt: ago(3 * time.Minute)}}
		})},
		{"image pull", "ImagePullBackOff", "", pod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}
		})},
		{"init container failing", "Init:Error", "", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate"}}
			p.Status.Phase = corev1.PodPending
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}}}}
		})},
		{"init container running", "Init:0/1", "", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate"}}
			p.Status.Phase = corev1.PodPending
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		})},
		{"killed by a signal, no reason", "ExitCode:143", "Terminated (exit 143, signal 15) 60s ago", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Signal: 15, FinishedAt: ago(time.Minute)}}
		})},
		{"being deleted", "Terminating", "", pod(func(p *corev1.Pod) { p.DeletionTimestamp = &now })},
		{"evicted", "Evicted", "", pod(func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted"
			p.Status.ContainerStatuses = nil
		})},
	} {
		if got := podStatus(tt.p); got != tt.status {
			t.Errorf("%s: status %q, want %q", tt.name, got, tt.status)
		}
		if got := lastTermination(tt.p, t0); got != tt.last {
			t.Errorf("%s: last termination %q, want %q", tt.name, got, tt.last)
		}
	}
}

func TestLogsSandbox(t *testing.T) {
	k := newOncallKit(t)
	res := run(t, k.logs, action.Params{"deployment": "payments", "namespace": "prod", "lines": 5})
	if res.Text != "Last 5 lines of payments (prod), container payments, 2 pods:" {
		t.Errorf("text %q", res.Text)
	}
	blocks := strings.Split(strings.TrimSpace(res.Code), "==> ")
	if len(blocks) != 3 || !strings.HasPrefix(blocks[1], "payments-z26g8k25j7-x2k9q <==") {
		t.Fatalf("code:\n%s", res.Code)
	}
	for _, b := range blocks[1:] {
		if n := strings.Count(strings.TrimSpace(b), "\n"); n != 5 {
			t.Errorf("block has %d lines, want 5:\n%s", n, b)
		}
	}
	if res.Outcome["lines"] != "10" || res.Outcome["pods"] != "2" {
		t.Errorf("outcome %v", res.Outcome)
	}

	// The crashed container, for the crash loop: what it said before it
	// ended, and why it ended. The pod that never restarted says so.
	res = run(t, k.logs, action.Params{"deployment": "payments", "namespace": "prod", "previous": true, "lines": 3})
	golden(t, "logs-prod-payments-previous.golden", res.Text+"\n"+res.Code)
	if !strings.Contains(res.Code, "==> payments-z26g8k25j7-x2k9q (previous container: Error, exit 1, 26m ago) <==") ||
		!strings.Contains(res.Code, `level=fatal msg="giving up: fraud scoring unreachable; exiting" exit_code=1`) ||
		!strings.Contains(res.Code, "(no previous container: it has not restarted)") {
		t.Errorf("previous:\n%s", res.Code)
	}

	res = run(t, k.logs, action.Params{"deployment": "search", "namespace": "prod", "lines": 500})
	// Both pods asked for 500 lines: the output stays within its budget,
	// each pod keeping its newest lines, and says so.
	if len(res.Code) > maxLogOutput+1024 || !strings.Contains(res.Code, "older lines cut") || !strings.Contains(res.Text, "Long output") {
		t.Errorf("%d bytes of output; text %q", len(res.Code), res.Text)
	}

	mustErrIs(t, runErr(k.logs, action.Params{"deployment": "payments", "namespace": "prod", "container": "istio-proxy"}),
		action.ErrNotFound, `no container "istio-proxy"; they have payments`)
	mustErrIs(t, runErr(k.logs, action.Params{"namespace": "prod"}), action.ErrInvalid, "which deployment")
	mustErrIs(t, runErr(k.logs, action.Params{"deployment": "payments", "namespace": "prod", "lines": 501}), action.ErrInvalid, "between 1 and 500")

	// A pod deleted after the listing (a restart replacing it) is said
	// under its name; the other pods' logs are shown.
	gone := ""
	k.sb.Fake().PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" && gone == "" {
			gone = "x"
			return true, nil, apierrors.NewNotFound(corev1.Resource("pods"), "payments-gone")
		}
		return false, nil, nil
	})
	res = run(t, k.logs, action.Params{"deployment": "payments", "namespace": "prod", "lines": 3})
	if !strings.Contains(res.Code, "(the pod is gone: it was deleted after the pods were listed)") || strings.Count(res.Code, "level=") < 3 {
		t.Errorf("a pod gone while reading:\n%s", res.Code)
	}

	// The API server refusing (RBAC on pods/log) is a failure, not an
	// empty log.
	k.sb.Fake().PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" {
			return true, nil, fmt.Errorf("pods \"x\" is forbidden: cannot get resource \"pods/log\"")
		}
		return false, nil, nil
	})
	if err := runErr(k.logs, action.Params{"deployment": "payments", "namespace": "prod"}); err == nil || !strings.Contains(err.Error(), "pods/log") {
		t.Errorf("forbidden logs: %v", err)
	}
}

func TestLogsOfACrashLoop(t *testing.T) {
	manifest := `
apiVersion: v1
kind: Namespace
metadata: {name: qa}
---
apiVersion: v1
kind: Pod
metadata:
  name: worker-1
  namespace: qa
  labels: {app.kubernetes.io/name: worker}
spec:
  nodeName: n1
  containers: [{name: worker, image: shop/worker:3.0.0}, {name: istio-proxy, image: istio/proxyv2:1.22}]
status:
  phase: Running
  containerStatuses:
    - name: worker
      restartCount: 9
      state: {waiting: {reason: CrashLoopBackOff}}
      lastState:
        terminated:
          reason: OOMKilled
          exitCode: 137
          startedAt: now-4m
          finishedAt: now-2m
    - name: istio-proxy
      ready: true
      state:
        running:
          startedAt: now-1d
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: qa}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: worker}}
  template:
    metadata: {labels: {app.kubernetes.io/name: worker}}
    spec:
      containers: [{name: worker, image: shop/worker:3.0.0}, {name: istio-proxy, image: istio/proxyv2:1.22}]
`
	k := newOncallKit(t, []byte(manifest))
	// The deployment controller adopted nothing (the pod has no owner), so
	// read the pod directly as the action does for the deployment's pods.
	pod, err := k.sb.Client().CoreV1().Pods("qa").Get(context.Background(), "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := k.logs.podLog(context.Background(), k.sb.Client(), pod, "worker", false, 3, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	if pl.header != "now CrashLoopBackOff; the last container ended: OOMKilled, exit 137, 2m ago" || len(pl.lines) != 3 ||
		!strings.Contains(pl.lines[2], "exit_code=137") {
		t.Errorf("crash loop: %+v", pl)
	}
	// Its whole log: the start-up line with a database password is
	// redacted.
	pl, err = k.logs.podLog(context.Background(), k.sb.Client(), pod, "worker", false, 500, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(pl.lines, "\n")
	if !strings.Contains(all, `dsn="postgres://worker:[REDACTED]@db.qa.svc:5432/worker"`) {
		t.Errorf("the start-up line is missing or not redacted:\n%.600s", all)
	}
	if regexp.MustCompile(`postgres://worker:[0-9a-f]{16}@`).MatchString(all) {
		t.Errorf("a password is shown")
	}
	if got := defaultContainer(pod); got != "worker" {
		t.Errorf("default container %q", got)
	}
	pod.Annotations = map[string]string{defaultContainerAnnotation: "istio-proxy"}
	if got := defaultContainer(pod); got != "istio-proxy" {
		t.Errorf("annotated default container %q", got)
	}
}

func TestNewestLinesCleanForChat(t *testing.T) {
	long := strings.Repeat("é", maxLogLine) // two bytes each: the cut must not split one
	got, cut := newestLines("\x1b[31mERROR\x1b[0m boom\r\nbell\x07 and\ttab\n"+long+"\ntoken=ghp_"+strings.Repeat("a1B2", 9)+"\n\n", math.MaxInt)
	if len(got) != 4 || cut != 0 {
		t.Fatalf("lines %q, %d cut", got, cut)
	}
	if got[0] != "ERROR boom" || got[1] != "bell and\ttab" {
		t.Errorf("cleaned %q", got[:2])
	}
	if !strings.HasSuffix(got[2], " …(cut)") || len(got[2]) > maxLogLine+len(" …(cut)") || !strings.HasPrefix(got[2], "éé") || strings.ContainsRune(got[2], '�') {
		t.Errorf("long line not cut at a rune boundary: %d bytes", len(got[2]))
	}
	if strings.Contains(got[3], "a1B2") {
		t.Errorf("token not redacted: %q", got[3])
	}
}

// newestLines cleans only the lines it keeps, but keeps exactly what
// cleaning every line and then keeping the newest that fit would: the
// budget counts the lines as shown (escapes removed, long lines cut,
// secrets redacted), each with its newline.
func TestNewestLinesKeepWhatFits(t *testing.T) {
	reference := func(text string, budget int) ([]string, int) {
		text = strings.TrimRight(text, "\n")
		if text == "" {
			return nil, 0
		}
		var all []string
		for _, l := range strings.Split(text, "\n") {
			all = append(all, cleanLine(l))
		}
		size, i := 0, len(all)
		for i > 0 && size+len(all[i-1])+1 <= budget {
			size += len(all[i-1]) + 1
			i--
		}
		return all[i:], i
	}
	lines := []string{
		"ts=1 level=info msg=\"request\" path=/api/checkout",
		"",
		"\x1b[1;31mFATAL\x1b[0m password=hunter2-but-longer",
		"short",
		"ts=2 level=error msg=\"dial tcp: i/o timeout\" upstream=fraud-scoring\r",
		strings.Repeat("x", maxLogLine+50),
		"dsn=\"postgres://app:s3cretpassw0rd@db:5432/app\"",
		"\t indented",
	}
	var texts []string
	for n := 0; n <= len(lines); n++ {
		texts = append(texts, strings.Join(lines[:n], "\n"), strings.Join(lines[:n], "\n")+"\n\n", "\n"+strings.Join(lines[len(lines)-n:], "\n"))
	}
	for _, text := range texts {
		for _, budget := range []int{0, 1, 6, 7, 30, 60, 61, 100, 200, 2100, 2200, 4000, math.MaxInt} {
			got, cut := newestLines(text, budget)
			want, wantCut := reference(text, budget)
			if !slices.Equal(got, want) || cut != wantCut {
				t.Errorf("%q in %d bytes: kept %q and cut %d, want %q and %d", text, budget, got, cut, want, wantCut)
			}
		}
	}
}

func TestChangesSandbox(t *testing.T) {
	k := newOncallKit(t)
	res := run(t, k.changes, action.Params{"namespace": "prod", "window": "2h"})
	if !strings.HasPrefix(res.Text, "1 change in prod in the last 2h, newest first:") || len(res.Table.Rows) != 1 ||
		strings.Join(res.Table.Rows[0][1:], "|") != "search|scale|1 → 2 replicas" {
		t.Errorf("prod 2h: %s", render(res))
	}
	res = run(t, k.changes, action.Params{"namespace": "prod", "window": "30m"})
	if !strings.HasPrefix(res.Text, "Nothing changed in prod in the last 30m (6 deployments checked") || res.Table != nil {
		t.Errorf("prod 30m: %s", render(res))
	}
	res = run(t, k.changes, action.Params{"namespace": "staging", "window": "3d"})
	golden(t, "changes-staging-3d.golden", render(res))

	// Changes made through Parley show up: a scale, a rolling restart
	// (its own scaling folded into it), a rollback, a new image.
	ctx := context.Background()
	if _, err := k.scale.Run(ctx, scaleReq("prod", "cart", 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.restart.Run(ctx, req(action.KubernetesRestart, action.Params{"namespace": "prod", "deployment": "auth"})); err != nil {
		t.Fatal(err)
	}
	if _, err := k.rollback.Run(ctx, req(action.KubernetesRollback, action.Params{"namespace": "prod", "deployment": "checkout"})); err != nil {
		t.Fatal(err)
	}
	d := k.deployment(t, "prod", "frontend")
	d.Spec.Template.Spec.Containers[0].Image = "shop/frontend:5.4.0"
	d.Annotations[ChangeCauseAnnotation] = "deploy 5.4.0: new header"
	if _, err := k.sb.Client().AppsV1().Deployments("prod").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res = run(t, k.changes, action.Params{"namespace": "prod", "window": "15m"})
	got := map[string]string{}
	for _, r := range res.Table.Rows {
		if _, dup := got[r[1]]; dup {
			t.Errorf("%s listed twice: %s", r[1], render(res))
		}
		got[r[1]] = r[2] + ": " + r[3]
	}
	want := map[string]string{
		"cart":     "scale: 2 → 4 replicas",
		"auth":     "restart (revision 3): same image shop/auth:3.2.0",
		"checkout": "rollback: back to revision 3 (now 5), shop/checkout:1.4.1; change cause: deploy 1.4.1: fix rounding of discounts",
		"frontend": "rollout to revision 4: shop/frontend:5.3.2 → shop/frontend:5.4.0; change cause: deploy 5.4.0: new header",
	}
	for dep, w := range want {
		if got[dep] != w {
			t.Errorf("%s: %q, want %q", dep, got[dep], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes:\n%s", render(res))
	}

	// One deployment, found without a namespace when it is unique.
	res = run(t, k.changes, action.Params{"deployment": "search", "window": "1h"})
	if !strings.HasPrefix(res.Text, "1 change in search (prod) in the last 1h") || !strings.Contains(res.Text, "search exists only in prod") {
		t.Errorf("search: %s", render(res))
	}
	mustErrIs(t, runErr(k.changes, action.Params{"deployment": "checkout"}), action.ErrInvalid, "say which one")
	mustErrIs(t, runErr(k.changes, action.Params{"namespace": "prod", "window": "31d"}), action.ErrInvalid, "at most 4w2d")
}
