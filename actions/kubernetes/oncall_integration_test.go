package kubernetes

// kubernetes.pods, kubernetes.logs and kubernetes.changes on a real API
// server and controller manager (internal/testenv/kubetest). The test
// plays the scheduler and the kubelet: it binds the deployment's pods to
// a fake kubelet's node, writes their status through the status
// subresource, and sets what their containers printed; the logs then
// travel the real path, the API server's pods/log to the kubelet API over
// TLS. Parley reads as an impersonated user holding exactly the RBAC rules
// the Helm chart grants for these actions.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// onCallReadRules are exactly the RBAC rules kubernetes.pods,
// kubernetes.logs and kubernetes.changes need in each namespace they read
// (the Helm chart's Role for them): the tests below pass with nothing more.
var onCallReadRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

func TestRealClusterPodsAndLogs(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "oncall")
	kubelet := c.StartKubelet(t, "node-"+ns)
	admin := c.AdminClient()
	ctx := context.Background()

	const reader = "parley-oncall-reader"
	c.Grant(t, ns, kubetest.UserSubject(reader), onCallReadRules...)
	clients, err := NewClients(ClusterOptions{Kubeconfig: c.Kubeconfig(t), Impersonate: map[string]Identity{
		"console:alice": {User: reader},
		"console:eve":   {User: "parley-nobody"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The clock the actions read: the moment the test's statuses are
	// written from, so ages read exactly.
	var now time.Time
	o := Options{Clients: clients, Timeout: 30 * time.Second, Now: func() time.Time { return now }}
	pods, err := NewPods(o)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := NewLogs(o, LogsOptions{})
	if err != nil {
		t.Fatal(err)
	}

	c.ApplyYAML(t, ns, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: app, image: shop/api:1.0.0}, {name: proxy, image: shop/proxy:2.0.0}]
`)
	var names []string
	kubetest.WaitFor(t, settleTimeout, "the deployment's two pods", func(ctx context.Context) error {
		list, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=api"})
		if err != nil {
			return err
		}
		if len(list.Items) != 2 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		names = []string{list.Items[0].Name, list.Items[1].Name}
		return nil
	})
	healthy, crashing := names[0], names[1]

	// Both pods run on the fake node. One restarted three times after
	// being OOM-killed and runs again; the other is in a crash loop.
	now = time.Now()
	for _, p := range names {
		kubelet.Schedule(t, ns, p)
		kubelet.Start(t, ns, p)
	}
	kubelet.UpdateStatus(t, ns, healthy, func(p *corev1.Pod) {
		cs := &p.Status.ContainerStatuses[0]
		cs.RestartCount = 3
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "OOMKilled", ExitCode: 137, StartedAt: metav1.NewTime(now.Add(-time.Hour)), FinishedAt: metav1.NewTime(now.Add(-5 * time.Minute))}}
	})
	kubelet.UpdateStatus(t, ns, crashing, func(p *corev1.Pod) {
		cs := &p.Status.ContainerStatuses[0]
		cs.Ready, cs.RestartCount = false, 12
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container"}}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "Error", ExitCode: 2, StartedAt: metav1.NewTime(now.Add(-2 * time.Minute)), FinishedAt: metav1.NewTime(now.Add(-time.Minute))}}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
	})
	secret := "s3cr3t-" + "db-pw-7c1e"
	kubelet.SetLog(ns, healthy, "app", false, "starting api 1.0.0\nconnecting to db password="+secret+"\n\x1b[32mGET /healthz 200\x1b[0m\nGET /orders 200\n")
	kubelet.SetLog(ns, healthy, "app", true, "allocating cache\nfatal error: runtime: out of memory\n")
	kubelet.SetLog(ns, crashing, "app", false, "starting api 1.0.0\npanic: nil map write\n")
	kubelet.SetLog(ns, healthy, "proxy", false, "proxy ready\n")

	res, err := pods.Run(ctx, req(PodsName, action.Params{"deployment": "api", "namespace": ns}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "api ("+ns+"): 2 pods, 1 ready, 15 restarts. "+crashing+" restarted 12 times, last Error (exit 2) 60s ago (container app); now CrashLoopBackOff.") {
		t.Errorf("pods text %q", res.Text)
	}
	rows := res.Table.Rows
	if got := strings.Join(rows[0][:4], "|"); got != crashing+"|CrashLoopBackOff|1/2|12 (60s ago)" {
		t.Errorf("crashing row %v", rows[0])
	}
	if got := strings.Join(append(rows[1][1:4:4], rows[1][5:]...), "|"); got != "Running|2/2|3 (5m ago)|node-"+ns+"|app: OOMKilled (exit 137) 5m ago" {
		t.Errorf("healthy row %v", rows[1])
	}

	// Logs: the default container (the first), troubled pod first; the
	// crash loop shows the container that ended; escape codes removed,
	// the password redacted.
	res, err = logs.Run(ctx, req(LogsName, action.Params{"deployment": "api", "namespace": ns, "lines": 50}))
	if err != nil {
		t.Fatal(err)
	}
	want := "==> " + crashing + " (now CrashLoopBackOff; the last container ended: Error, exit 2, 60s ago) <==\n" +
		"starting api 1.0.0\npanic: nil map write\n" +
		"==> " + healthy + " <==\n" +
		"starting api 1.0.0\nconnecting to db password=[REDACTED]\nGET /healthz 200\nGET /orders 200\n"
	if res.Code != want {
		t.Errorf("logs:\n%s\nwant:\n%s", res.Code, want)
	}
	if !strings.Contains(res.Text, "The pods also run proxy") || strings.Contains(res.Code, secret) {
		t.Errorf("logs text %q", res.Text)
	}

	// previous for the OOM kill, tail honoured, another container.
	res, err = logs.Run(ctx, req(LogsName, action.Params{"deployment": "api", "namespace": ns, "previous": true, "lines": 1}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Code, "==> "+healthy+" (previous container: OOMKilled, exit 137, 5m ago) <==\nfatal error: runtime: out of memory\n") {
		t.Errorf("previous logs:\n%s", res.Code)
	}
	// The crash-looping pod's previous container has no log on the node:
	// the kubelet's answer is shown, not a failure.
	if !strings.Contains(res.Code, `previous terminated container "app" in pod "`+crashing+`" not found`) {
		t.Errorf("missing previous log:\n%s", res.Code)
	}
	res, err = logs.Run(ctx, req(LogsName, action.Params{"deployment": "api", "namespace": ns, "container": "proxy"}))
	if err != nil || !strings.Contains(res.Code, "proxy ready") {
		t.Errorf("proxy logs: %q, %v", res.Code, err)
	}
	var tails []int64
	for _, r := range kubelet.Requests() {
		if r.Client != kubetest.KubeletClientName {
			t.Errorf("kubelet called by %q", r.Client)
		}
		if r.TailLines != nil {
			tails = append(tails, *r.TailLines)
		}
	}
	if len(tails) < 5 || tails[0] != 50 {
		t.Errorf("tail lines asked of the kubelet: %v", tails)
	}

	// Without the RBAC rules the API server refuses, with its reason.
	eve := req(LogsName, action.Params{"deployment": "api", "namespace": ns})
	eve.Subject = "console:eve"
	_, err = logs.Run(ctx, eve)
	mustErrIs(t, err, action.ErrForbidden, `User "parley-nobody" cannot get resource "deployments"`)
}

func TestRealClusterChanges(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.NewNamespace(t, "changes")
	l := newLive(t, c, adminClients(t, c))
	const reader = "parley-changes-reader"
	c.Grant(t, ns, kubetest.UserSubject(reader), onCallReadRules...)
	clients, err := NewClients(ClusterOptions{Kubeconfig: c.Kubeconfig(t), Impersonate: map[string]Identity{"console:alice": {User: reader}}})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := NewChanges(Options{Clients: clients, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The deployment controller's events have second resolution: a pause
	// keeps each step apart, as changes made by people are.
	step := func() { time.Sleep(1100 * time.Millisecond) }
	l.deploy(t, ns, "web", "shop/web:1.0.0")
	step()
	d, err := l.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Annotations = map[string]string{ChangeCauseAnnotation: "deploy 1.1.0: faster search"}
	d.Spec.Template.Spec.Containers[0].Image = "shop/web:1.1.0"
	if _, err := l.admin.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	l.settled(t, ns, "web", 2)
	step()
	if _, err := l.scale.Run(ctx, scaleReq(ns, "web", 5)); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, settleTimeout, "the scale event", func(ctx context.Context) error {
		ev, err := l.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=ScalingReplicaSet"})
		if err != nil {
			return err
		}
		for _, e := range ev.Items {
			if strings.HasSuffix(e.Message, "from 3 to 5") {
				return nil
			}
		}
		return fmt.Errorf("%d scaling events, none to 5", len(ev.Items))
	})
	l.settled(t, ns, "web", 2)
	step()
	if _, err := l.restart.Run(ctx, req(action.KubernetesRestart, params(ns, "web"))); err != nil {
		t.Fatal(err)
	}
	l.settled(t, ns, "web", 3)
	step()
	if _, err := l.rollback.Run(ctx, req(action.KubernetesRollback, params(ns, "web", "revision", 1))); err != nil {
		t.Fatal(err)
	}
	l.settled(t, ns, "web", 4)

	res, err := changes.Run(ctx, req(ChangesName, action.Params{"namespace": ns, "window": "1h"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Table.Rows {
		got = append(got, r[1]+": "+r[2]+": "+r[3])
	}
	want := []string{
		"web: rollback: back to revision 1 (now 4), shop/web:1.0.0",
		"web: restart (revision 3): same image shop/web:1.1.0",
		"web: scale: 3 → 5 replicas",
		"web: rollout to revision 2: shop/web:1.0.0 → shop/web:1.1.0; change cause: deploy 1.1.0: faster search",
		"web: created: shop/web:1.0.0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		ev, _ := l.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		for _, e := range ev.Items {
			t.Logf("event %s %s %s/%s %s first=%s last=%s et=%s series=%v", e.Reason, e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message, e.FirstTimestamp, e.LastTimestamp, e.EventTime, e.Series)
		}
		rsl, _ := l.admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		for _, r := range rsl.Items {
			t.Logf("rs %s created=%s ann=%v", r.Name, r.CreationTimestamp, r.Annotations)
		}
		t.Errorf("changes:\n%s\nwant:\n%s\n(%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), res.Text)
	}
	if !strings.HasPrefix(res.Text, "5 changes in "+ns+" in the last 1h, newest first:") {
		t.Errorf("text %q", res.Text)
	}
}

// An API server that accepts connections and never answers: each on-call
// read ends with ErrUnavailable at the action's deadline. The server is an
// httptest server on 127.0.0.1; no binaries needed.
func TestOnCallReadsOnAHangingAPIServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(path, &rest.Config{Host: srv.URL}); err != nil {
		t.Fatal(err)
	}
	clients, err := NewClients(ClusterOptions{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Clients: clients, Timeout: 300 * time.Millisecond}
	pods, _ := NewPods(o)
	logs, _ := NewLogs(o, LogsOptions{})
	changes, _ := NewChanges(o)
	for _, a := range []action.Action{pods, logs, changes} {
		_, err := a.Run(context.Background(), req(a.Spec().Name, action.Params{"deployment": "checkout", "namespace": "prod"}))
		mustErrIs(t, err, action.ErrUnavailable, "did not answer in time")
	}
}
