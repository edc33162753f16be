package kubernetes

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/kube"
)

// PodsName is the name of the kubernetes.pods action.
const PodsName = "kubernetes.pods"

// maxPodRows is how many pods one reply lists; the rest are counted.
const maxPodRows = 30

// Pods is kubernetes.pods: each pod of a deployment (or of a namespace)
// with its status as kubectl shows it, readiness, restarts, age, node and
// the last time a container ended (OOMKilled, Error, exit code).
type Pods struct{ base }

// NewPods returns kubernetes.pods.
func NewPods(o Options) (*Pods, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Pods{base{o}}, nil
}

// PodsSpec is kubernetes.pods' public contract.
func PodsSpec() action.Spec {
	return action.Spec{
		Name: PodsName, Kind: action.Read,
		Description: "List a deployment's pods (or a namespace's) with phase, readiness, restarts, age, node and the last container termination (OOMKilled, Error, exit code).",
		Params:      []action.Param{deploymentParam(false), namespaceParam(false)},
		Examples: []action.Example{
			{Text: "show pods of payments", Params: map[string]any{"deployment": "payments"}},
			{Text: "pods for checkout in prod", Params: map[string]any{"deployment": "checkout", "namespace": "prod"}},
			{Text: "kubectl get pods -n staging", Params: map[string]any{"namespace": "staging"}},
			{Text: "are the payments pods crashlooping?", Params: map[string]any{"deployment": "payments"}},
			{Text: "was checkout OOMKilled in prod?", Params: map[string]any{"deployment": "checkout", "namespace": "prod"}},
			{Text: "which nodes are the auth pods on", Params: map[string]any{"deployment": "auth"}},
			{Text: "list the containers of cart in staging", Params: map[string]any{"deployment": "cart", "namespace": "staging"}},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"pods": 3, "pod": 2.5, "containers": 2, "container": 1.5, "crashloop": 2, "crashlooping": 2.5,
			"crashloopbackoff": 2.5, "oomkilled": 2.5, "oom": 2, "nodes": 1, "node": 1, "pending (pods|pod)": 2, "(pods|pod) ... pending": 2,
			"get pods": 3, "(kubectl|k) get (pods|pod|po)": 5, "evicted": 1.5, "imagepullbackoff": 2.5, "exit code": 2,
			"(pod|pods|container|containers) not ready": 2.5, // which one: "is any api-gateway pod not ready"
		}},
	}
}

// Spec implements action.Action.
func (p *Pods) Spec() action.Spec { return PodsSpec() }

// Run implements action.Action.
func (p *Pods) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := p.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	ns, name := req.Params.String("namespace"), req.Params.String("deployment")
	if name == "" {
		res, err := p.namespacePods(ctx, c, ns)
		if err != nil {
			return action.Result{}, fmt.Errorf("pods of %s: %w", orAll(ns), err)
		}
		return res, nil
	}
	ns, note, d, err := p.locate(ctx, c, ns, name)
	if err != nil {
		return action.Result{}, fmt.Errorf("pods of %s: %w", name, err)
	}
	if d == nil {
		if d, err = getDeployment(ctx, c, ns, name); err != nil {
			return action.Result{}, fmt.Errorf("pods of %s/%s: %w", ns, name, err)
		}
	}
	_, pods, err := workload(ctx, c, d)
	if err != nil {
		return action.Result{}, fmt.Errorf("pods of %s/%s: %w", ns, name, err)
	}
	var res action.Result
	if len(pods) == 0 { // scaled to zero, or nothing scheduled yet: no table to show
		res.Text = fmt.Sprintf("%s (%s) has no pods (%d desired).", name, ns, replicasOf(d))
		res.Outcome = map[string]string{"pods": "0", "ready": "0", "restarts": "0"}
	} else {
		res = p.table(fmt.Sprintf("%s (%s)", name, ns), pods, false)
	}
	if note != "" {
		res.Text += "\n" + note
	}
	return res, nil
}

// namespacePods lists every pod of a namespace (or of every namespace the
// options allow).
func (p *Pods) namespacePods(ctx context.Context, c kube.Interface, ns string) (action.Result, error) {
	namespaces := []string{ns}
	if ns == "" && len(p.o.Namespaces) > 0 {
		namespaces = p.o.Namespaces
	}
	var pods []corev1.Pod
	for _, n := range namespaces {
		list, err := c.CoreV1().Pods(n).List(ctx, metav1.ListOptions{})
		if err != nil {
			return action.Result{}, apiError(err)
		}
		pods = append(pods, list.Items...)
	}
	if len(pods) == 0 {
		return action.Result{}, fmt.Errorf("%w: no pods in %s", action.ErrNotFound, orAll(ns))
	}
	return p.table(orAll(ns), pods, ns == ""), nil
}

// table renders pods, the troubled ones first: a summary line naming the
// pod that restarted most, and one row per pod.
func (p *Pods) table(what string, pods []corev1.Pod, withNamespace bool) action.Result {
	now := p.o.Now()
	pods = slices.Clone(pods)
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		if c := cmp.Compare(boolRank(podHealthy(&a)), boolRank(podHealthy(&b))); c != 0 {
			return c
		}
		if c := cmp.Compare(podRestarts(&b), podRestarts(&a)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	ready, restartsTotal := 0, int32(0)
	for i := range pods {
		if podReady(&pods[i]) {
			ready++
		}
		restartsTotal += podRestarts(&pods[i])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, %d ready, %s.", what, plural(len(pods), "pod"), ready, plural(int(restartsTotal), "restart"))
	if top := &pods[0]; podRestarts(top) > 0 {
		fmt.Fprintf(&b, " %s restarted %s", top.Name, plural(int(podRestarts(top)), "time"))
		if _, cs := lastEnded(top); cs != nil {
			fmt.Fprintf(&b, ", last %s", exitText(endedState(cs), now))
			if len(top.Spec.Containers) > 1 {
				fmt.Fprintf(&b, " (container %s)", cs.Name)
			}
		}
		if s := podStatus(top); s != string(corev1.PodRunning) {
			fmt.Fprintf(&b, "; now %s", s)
		}
		b.WriteString(".")
	}
	t := &chat.Table{Header: []string{"pod", "status", "ready", "restarts", "age", "node", "last termination"}}
	for i := range pods {
		if i == maxPodRows {
			fmt.Fprintf(&b, "\n_%d more pods not shown._", len(pods)-maxPodRows)
			break
		}
		pod := &pods[i]
		name := pod.Name
		if withNamespace {
			name = pod.Namespace + "/" + name
		}
		t.Rows = append(t.Rows, []string{name, podStatus(pod), readyCount(pod), restartText(pod, now),
			age(now, pod.CreationTimestamp.Time), orDash(pod.Spec.NodeName), orDash(lastTermination(pod, now))})
	}
	return action.Result{Text: b.String(), Table: t, Outcome: map[string]string{
		"pods": strconv.Itoa(len(pods)), "ready": strconv.Itoa(ready), "restarts": strconv.Itoa(int(restartsTotal)),
	}}
}

// podStatus is the STATUS kubectl get pods shows: the phase, or the reason
// a container waits or ended, Init:… for init containers, Terminating
// while the pod is deleted.
func podStatus(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	if reason == "" {
		reason = "Unknown"
	}
	initializing := false
	for i, cs := range p.Status.InitContainerStatuses {
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case cs.State.Terminated != nil:
			reason = "Init:" + cmp.Or(cs.State.Terminated.Reason, "ExitCode:"+strconv.Itoa(int(cs.State.Terminated.ExitCode)))
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing {
		running := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := p.Status.ContainerStatuses[i]
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil:
				reason = "ExitCode:" + strconv.Itoa(int(cs.State.Terminated.ExitCode))
			case cs.Ready && cs.State.Running != nil:
				running = true
			}
		}
		if reason == "Completed" && running {
			reason = string(corev1.PodRunning)
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	return reason
}

// podHealthy is a running pod whose containers are all ready, or one that
// completed.
func podHealthy(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || (podStatus(p) == string(corev1.PodRunning) && podReady(p))
}

func podRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// readyCount is "1/2": ready containers of all containers.
func readyCount(p *corev1.Pod) string {
	n := 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(p.Spec.Containers))
}

// restartText is "7 (26m ago)", as kubectl shows restarts.
func restartText(p *corev1.Pod, now time.Time) string {
	n := podRestarts(p)
	if n == 0 {
		return "0"
	}
	if last, _ := lastEnded(p); !last.IsZero() {
		return fmt.Sprintf("%d (%s ago)", n, age(now, last))
	}
	return strconv.Itoa(int(n))
}

// lastEnded returns when a container of the pod last ended, and which.
func lastEnded(p *corev1.Pod) (time.Time, *corev1.ContainerStatus) {
	var when time.Time
	var which *corev1.ContainerStatus
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && t.FinishedAt.After(when) {
				when, which = t.FinishedAt.Time, cs
			}
		}
	}
	return when, which
}

// endedState is the latest termination of a container: the current
// state when it has ended, else the last state.
func endedState(cs *corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	t := cs.State.Terminated
	if last := cs.LastTerminationState.Terminated; t == nil || (last != nil && last.FinishedAt.After(t.FinishedAt.Time)) {
		t = last
	}
	return t
}

// lastTermination is "OOMKilled (exit 137) 3m ago", with the container's
// name in front when the pod has several; empty when no container has
// ended.
func lastTermination(p *corev1.Pod, now time.Time) string {
	_, cs := lastEnded(p)
	if cs == nil {
		return ""
	}
	s := exitText(endedState(cs), now)
	if len(p.Spec.Containers) > 1 {
		s = cs.Name + ": " + s
	}
	return s
}

// exitText is "OOMKilled (exit 137) 3m ago".
func exitText(t *corev1.ContainerStateTerminated, now time.Time) string {
	s := fmt.Sprintf("%s (exit %d", cmp.Or(t.Reason, "Terminated"), t.ExitCode)
	if t.Signal != 0 {
		s += fmt.Sprintf(", signal %d", t.Signal)
	}
	return s + ") " + age(now, t.FinishedAt.Time) + " ago"
}

func orAll(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return ns
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
