package kubernetes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// LogsName is the name of the kubernetes.logs action.
const LogsName = "kubernetes.logs"

// Bounds of kubernetes.logs.
const (
	DefaultLogLines = 50
	MaxLogLines     = 500
	// maxLogPods is how many of a deployment's pods one reply reads.
	maxLogPods = 5
	// maxLogBytesPerPod is what the API server is asked for per pod
	// (limitBytes), so a pod with huge lines cannot flood Parley.
	maxLogBytesPerPod = 256 << 10
	// maxLogOutput bounds the lines shown in one reply, all pods together,
	// so that a chat message shows them whole (Slack shows about 12,000
	// characters); each pod keeps its newest lines within its share.
	maxLogOutput = 10 << 10
	// maxLogLine cuts one very long line.
	maxLogLine = 2000
)

// defaultContainerAnnotation names the container kubectl logs reads when
// a pod has several and none is given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// Logs is kubernetes.logs: the recent log lines of a deployment's pods,
// read through the Kubernetes API (pods/log), so it works without a log
// store. Lines are redacted and size-capped; previous reads the container
// that ended last, for crash loops.
type Logs struct {
	base
	lo LogsOptions
}

// LogsOptions say what else answers for logs.
type LogsOptions struct {
	// NoLogStore is set when no log store (Loki) is configured: then
	// "logs" alone means pod logs, and the spec's cues say so.
	NoLogStore bool
}

// NewLogs returns kubernetes.logs.
func NewLogs(o Options, lo LogsOptions) (*Logs, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Logs{base: base{o}, lo: lo}, nil
}

// LogsSpec is kubernetes.logs' public contract, as offered when a log
// store (Loki) is configured: then "logs" alone still means a log search
// (loki.query, whose "logs" cue is 3) and this action is chosen for what
// only the pods have: pod, container, previous, crash-loop and kubectl
// logs.
func LogsSpec() action.Spec {
	return action.Spec{
		Name: LogsName, Kind: action.Read,
		Description: "Show the recent log lines of a deployment's pods through the Kubernetes API (no log store needed); previous reads the container that crashed.",
		Params: []action.Param{
			deploymentParam(true), namespaceParam(false),
			{Name: "container", Type: action.String, Pattern: regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`),
				Description: "container name when the pods have several (default: the pod's default container)",
				Words:       []string{"container", "-c", "sidecar"}},
			{Name: "previous", Type: action.Bool,
				Description: "the previous (crashed) container's logs instead of the running one's",
				Words:       []string{"previous", "prior", "crashed", "before the restart", "before it restarted", "--previous", "-p"},
				// a crash loop's story is in the container that ended: "crashloop logs", "the crash logs"
				Synonyms: map[string][]string{"true": {"crash", "crashloop", "crashlooping", "crashloopbackoff", "before it crashed"}}},
			{Name: "lines", Type: action.Int, Min: ptr(1), Max: ptr(MaxLogLines), Default: DefaultLogLines,
				Description: fmt.Sprintf("lines per pod, newest last (default %d, at most %d)", DefaultLogLines, MaxLogLines),
				Words:       []string{"lines", "last", "tail", "--tail"}},
		},
		Examples: []action.Example{
			{Text: "pod logs of payments", Params: map[string]any{"deployment": "payments"}},
			{Text: "show the container logs for checkout in prod", Params: map[string]any{"deployment": "checkout", "namespace": "prod"}},
			{Text: "previous logs of payments, it keeps crashlooping", Params: map[string]any{"deployment": "payments", "previous": true}},
			{Text: "kubectl logs deploy/auth -n staging --tail=100", Params: map[string]any{"deployment": "auth", "namespace": "staging", "lines": 100}},
			{Text: "last 200 log lines of cart in staging", Params: map[string]any{"deployment": "cart", "namespace": "staging", "lines": 200}},
			{Text: "crashloop logs for payments in prod", Params: map[string]any{"deployment": "payments", "namespace": "prod", "previous": true}},
			{Text: "logs of the istio-proxy container of checkout", Params: map[string]any{"deployment": "checkout", "container": "istio-proxy"}},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"logs": 2, "log": 1.5, "stdout": 4, "stderr": 4, "tail": 1, "container": 2.5,
			"pod logs": 4.5, "pods logs": 4.5, "container logs": 4.5, "previous logs": 5, "crashloop logs": 5,
			"crash logs": 4.5, "(kubectl|k) logs": 6, "previous": 2, "crashloop": 1.5, "crashlooping": 1.5, "--previous": 3,
			// what a pod wrote: "what's the orders pod saying", "what did the billing pod print before it crashed"
			"(pod|pods|container|containers) ... (print|printed|printing|prints|saying|say|says|said|output|outputs|writing|wrote)": 3.5,
			"before (it|the|they) (crashed|crash|died|restarted|restart)":                                                           2,
		}},
	}
}

// Spec implements action.Action. Without a log store "logs" alone means
// pod logs: the cue outweighs loki.query's.
func (l *Logs) Spec() action.Spec {
	s := LogsSpec()
	if l.lo.NoLogStore {
		cues := maps.Clone(s.Vocabulary.Cues)
		cues["logs"], cues["log"] = 3.5, 2.5
		s.Vocabulary.Cues = cues
	}
	return s
}

// podLog is what one pod contributed.
type podLog struct {
	pod    string
	header string // "(previous container: Error, exit 1, 26m ago)" and the like
	lines  []string
	note   string // why there are no lines
}

// Run implements action.Action.
func (l *Logs) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := l.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	name := req.Params.String("deployment")
	if name == "" {
		return action.Result{}, fmt.Errorf("logs: %w: which deployment?", action.ErrInvalid)
	}
	ns, note, d, err := l.locate(ctx, c, req.Params.String("namespace"), name)
	if err != nil {
		return action.Result{}, fmt.Errorf("logs of %s: %w", name, err)
	}
	lines := DefaultLogLines
	if n, ok := req.Params.Int("lines"); ok {
		lines = n
	}
	if lines < 1 || lines > MaxLogLines {
		return action.Result{}, fmt.Errorf("logs of %s/%s: %w: lines must be between 1 and %d", ns, name, action.ErrInvalid, MaxLogLines)
	}
	previous, _ := req.Params["previous"].(bool)
	container := req.Params.String("container")

	if d == nil {
		if d, err = getDeployment(ctx, c, ns, name); err != nil {
			return action.Result{}, fmt.Errorf("logs of %s/%s: %w", ns, name, err)
		}
	}
	_, pods, err := workload(ctx, c, d)
	if err != nil {
		return action.Result{}, fmt.Errorf("logs of %s/%s: %w", ns, name, err)
	}
	if len(pods) == 0 {
		return action.Result{}, fmt.Errorf("logs of %s/%s: %w: the deployment has no pods", ns, name, action.ErrNotFound)
	}
	// The troubled pods first (their logs are why people ask), then the
	// newest.
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		if c := cmp.Compare(boolRank(podHealthy(&a)), boolRank(podHealthy(&b))); c != 0 {
			return c
		}
		if c := cmp.Compare(podRestarts(&b), podRestarts(&a)); c != 0 {
			return c
		}
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if container == "" {
		container = defaultContainer(&pods[0])
	} else if !hasContainer(&pods[0], container) {
		return action.Result{}, fmt.Errorf("logs of %s/%s: %w: the pods have no container %q; they have %s",
			ns, name, action.ErrNotFound, container, strings.Join(containerNames(&pods[0]), ", "))
	}
	shown := pods
	if len(shown) > maxLogPods {
		shown = shown[:maxLogPods]
	}
	var got []podLog
	for i := range shown {
		pl, err := l.podLog(ctx, c, &shown[i], container, previous, lines)
		if err != nil {
			return action.Result{}, fmt.Errorf("logs of %s/%s, pod %s: %w", ns, name, shown[i].Name, err)
		}
		got = append(got, pl)
	}
	return l.render(ns, name, container, previous, lines, pods, got, note), nil
}

// podLog reads one pod's log. A previous container that does not exist,
// or a pod that has not started, is a note, not a failure.
func (l *Logs) podLog(ctx context.Context, c clientset.Interface, pod *corev1.Pod, container string, previous bool, lines int) (podLog, error) {
	pl := podLog{pod: pod.Name}
	if pod.Spec.NodeName == "" {
		pl.note = fmt.Sprintf("not scheduled to a node yet (%s)", podStatus(pod))
		return pl, nil
	}
	cs := containerStatus(pod, container)
	if previous {
		if cs == nil || cs.LastTerminationState.Terminated == nil {
			pl.note = "no previous container: it has not restarted"
			return pl, nil
		}
		pl.header = "previous container: " + termination(cs.LastTerminationState.Terminated, l.o.Now())
	}
	text, err := l.read(ctx, c, pod, container, previous, lines)
	var se apierrors.APIStatus
	switch {
	case err != nil && errors.As(err, &se) && se.Status().Code == 400:
		// The kubelet's answer about the container's state: no previous
		// container, or one still waiting to start.
		pl.header, pl.note = "", strings.TrimSpace(se.Status().Message)
		return pl, nil
	case err != nil:
		return pl, err
	}
	pl.lines = splitLines(text)
	// A container waiting to restart (a crash loop) has no running
	// instance: the kubelet serves the one that ended.
	if !previous && cs != nil && cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil {
		pl.header = fmt.Sprintf("now %s; the last container ended: %s", cs.State.Waiting.Reason,
			termination(cs.LastTerminationState.Terminated, l.o.Now()))
	}
	if len(pl.lines) == 0 && pl.note == "" {
		pl.note = "no output"
	}
	return pl, nil
}

// read fetches a container's log tail through the API server.
func (l *Logs) read(ctx context.Context, c clientset.Interface, pod *corev1.Pod, container string, previous bool, lines int) (string, error) {
	tail, limit := int64(lines), int64(maxLogBytesPerPod)
	rc, err := c.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: container, Previous: previous, TailLines: &tail, LimitBytes: &limit,
	}).Stream(ctx)
	if err != nil {
		return "", apiError(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLogBytesPerPod))
	if err != nil {
		return "", apiError(err)
	}
	return string(b), nil
}

func (l *Logs) render(ns, name, container string, previous bool, lines int, pods []corev1.Pod, got []podLog, note string) action.Result {
	which := "Last"
	if previous {
		which = "Previous containers' last"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d lines of %s (%s), container %s", which, lines, name, ns, container)
	if len(pods) > len(got) {
		fmt.Fprintf(&b, ", from %d of %d pods (troubled and newest first)", len(got), len(pods))
	} else {
		fmt.Fprintf(&b, ", %s", plural(len(pods), "pod"))
	}
	b.WriteString(":")
	if others := slices.DeleteFunc(containerNames(&pods[0]), func(s string) bool { return s == container }); len(others) > 0 {
		fmt.Fprintf(&b, "\n_The pods also run %s; say \"container NAME\" for those._", strings.Join(others, ", "))
	}

	// Each pod's share of the output; a pod keeps its newest lines.
	share := maxLogOutput / max(1, len(got))
	var code strings.Builder
	total, cut := 0, false
	for _, pl := range got {
		header := "==> " + pl.pod
		if pl.header != "" {
			header += " (" + pl.header + ")"
		}
		code.WriteString(header + " <==\n")
		if pl.note != "" {
			code.WriteString("(" + pl.note + ")\n")
			continue
		}
		kept := keepNewest(pl.lines, share)
		if len(kept) < len(pl.lines) {
			cut = true
			fmt.Fprintf(&code, "(%d older lines cut)\n", len(pl.lines)-len(kept))
		}
		for _, line := range kept {
			code.WriteString(line + "\n")
		}
		total += len(kept)
	}
	if cut {
		fmt.Fprintf(&b, "\n_Long output: each pod shows its newest lines that fit in %d KiB._", share>>10)
	}
	if note != "" {
		b.WriteString("\n" + note)
	}
	return action.Result{Text: b.String(), Code: code.String(), Outcome: map[string]string{
		"pods": strconv.Itoa(len(got)), "lines": strconv.Itoa(total), "container": container, "previous": strconv.FormatBool(previous),
	}}
}

// keepNewest keeps the newest lines that fit in budget bytes.
func keepNewest(lines []string, budget int) []string {
	size, i := 0, len(lines)
	for i > 0 && size+len(lines[i-1])+1 <= budget {
		size += len(lines[i-1]) + 1
		i--
	}
	return lines[i:]
}

// ansiRE matches terminal escape sequences (colours, cursor moves).
var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]`)

// splitLines turns a log into clean chat lines: escape sequences and
// control characters removed, very long lines cut, secrets redacted.
func splitLines(text string) []string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil
	}
	raw := strings.Split(text, "\n")
	out := make([]string, 0, len(raw))
	for _, line := range raw {
		line = ansiRE.ReplaceAllString(strings.TrimRight(line, "\r"), "")
		line = strings.Map(func(r rune) rune {
			if r == '\t' || r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) {
				return r
			}
			return -1
		}, line)
		line = strings.ToValidUTF8(line, "�")
		if len(line) > maxLogLine {
			cutAt := maxLogLine
			for cutAt > 0 && line[cutAt]&0xC0 == 0x80 {
				cutAt--
			}
			line = line[:cutAt] + " …(cut)"
		}
		out = append(out, redact.Redact(line))
	}
	return out
}

func defaultContainer(p *corev1.Pod) string {
	if c := p.Annotations[defaultContainerAnnotation]; c != "" && hasContainer(p, c) {
		return c
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}

func hasContainer(p *corev1.Pod, name string) bool {
	return slices.Contains(containerNames(p), name)
}

// containerNames lists a pod's containers, then its init containers.
func containerNames(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name)
	}
	for _, c := range p.Spec.InitContainers {
		out = append(out, c.Name)
	}
	return out
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// termination is "Error, exit 1, 26m ago".
func termination(t *corev1.ContainerStateTerminated, now time.Time) string {
	s := fmt.Sprintf("%s, exit %d", cmp.Or(t.Reason, "Terminated"), t.ExitCode)
	if !t.FinishedAt.IsZero() {
		s += ", " + age(now, t.FinishedAt.Time) + " ago"
	}
	return s
}
