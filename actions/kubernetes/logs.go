package kubernetes

import (
	"bytes"
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
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
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
	header string   // "(previous container: Error, exit 1, 26m ago)" and the like
	lines  []string // the newest lines that fit the pod's share, cleaned for chat, oldest first
	cut    int      // the older lines that did not fit
	note   string   // why there are no lines
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
	// The pods' logs are read at once: each is a round trip through the
	// API server to a kubelet (one after the other from a client that
	// answers from memory). Each pod's share of the output is known
	// beforehand; a pod keeps its newest lines.
	share := logShare(len(shown))
	got := make([]podLog, len(shown))
	errs := make([]error, len(shown))
	read := func(i int) {
		defer func() { // as the pipeline recovers Run: a failed reply, not a crashed bot
			if v := recover(); v != nil {
				errs[i] = fmt.Errorf("reading the log panicked: %v", v)
			}
		}()
		got[i], errs[i] = l.podLog(ctx, c, &shown[i], container, previous, lines, share)
	}
	if kube.IsInProcess(c) {
		for i := range shown {
			read(i)
		}
	} else {
		var wg sync.WaitGroup
		for i := range shown {
			wg.Go(func() { read(i) })
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return action.Result{}, fmt.Errorf("logs of %s/%s, pod %s: %w", ns, name, shown[i].Name, err)
		}
	}
	return l.render(ns, name, container, previous, lines, pods, got, note), nil
}

// logShare is each pod's share of a reply's log output, in bytes.
func logShare(pods int) int { return maxLogOutput / max(1, pods) }

// podLog reads one pod's log and keeps its newest lines that fit in share
// bytes. A previous container that does not exist, or a pod that has not
// started, is a note, not a failure.
func (l *Logs) podLog(ctx context.Context, c kube.Interface, pod *corev1.Pod, container string, previous bool, lines, share int) (podLog, error) {
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
	case apierrors.IsNotFound(err):
		// Deleted since the pods were listed (a rollout or a restart
		// replacing it): the other pods' logs are still worth showing.
		pl.header, pl.note = "", "the pod is gone: it was deleted after the pods were listed"
		return pl, nil
	case err != nil:
		return pl, err
	}
	pl.lines, pl.cut = newestLines(text, share)
	// A container waiting to restart (a crash loop) has no running
	// instance: the kubelet serves the one that ended.
	if !previous && cs != nil && cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil {
		pl.header = fmt.Sprintf("now %s; the last container ended: %s", cs.State.Waiting.Reason,
			termination(cs.LastTerminationState.Terminated, l.o.Now()))
	}
	if len(pl.lines)+pl.cut == 0 && pl.note == "" {
		pl.note = "no output"
	}
	return pl, nil
}

// read fetches a container's log tail through the API server.
func (l *Logs) read(ctx context.Context, c kube.Interface, pod *corev1.Pod, container string, previous bool, lines int) (string, error) {
	tail, limit := int64(lines), int64(maxLogBytesPerPod)
	rc, err := c.CoreV1().Pods(pod.Namespace).Logs(ctx, pod.Name, &corev1.PodLogOptions{
		Container: container, Previous: previous, TailLines: &tail, LimitBytes: &limit,
	})
	if err != nil {
		return "", apiError(err)
	}
	defer rc.Close()
	// A body held in memory as text (the sandbox's) is taken as it is.
	if body, ok := rc.(kube.TextBody); ok && len(body.Text()) <= maxLogBytesPerPod {
		return body.Text(), nil
	}
	// bytes.Buffer reads straight into itself (io.Copy into a
	// strings.Builder would take a 32 KiB buffer for every pod), from
	// room for a typical tail (50 lines) on.
	var b bytes.Buffer
	b.Grow(8 << 10)
	if _, err := b.ReadFrom(io.LimitReader(rc, maxLogBytesPerPod)); err != nil {
		return "", apiError(err)
	}
	return b.String(), nil
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

	var code strings.Builder
	size := 0
	for _, pl := range got {
		size += len(pl.pod) + len(pl.header) + len(pl.note) + 40
		for _, line := range pl.lines {
			size += len(line) + 1
		}
	}
	code.Grow(size)
	total, cut := 0, false
	for _, pl := range got {
		code.WriteString("==> ")
		code.WriteString(pl.pod)
		if pl.header != "" {
			code.WriteString(" (" + pl.header + ")")
		}
		code.WriteString(" <==\n")
		if pl.note != "" {
			code.WriteString("(" + pl.note + ")\n")
			continue
		}
		if pl.cut > 0 {
			cut = true
			fmt.Fprintf(&code, "(%d older lines cut)\n", pl.cut)
		}
		for _, line := range pl.lines {
			code.WriteString(line)
			code.WriteByte('\n')
		}
		total += len(pl.lines)
	}
	if cut {
		fmt.Fprintf(&b, "\n_Long output: each pod shows its newest lines that fit in %d KiB._", logShare(len(got))>>10)
	}
	if note != "" {
		b.WriteString("\n" + note)
	}
	return action.Result{Text: b.String(), Code: code.String(), Outcome: map[string]string{
		"pods": strconv.Itoa(len(got)), "lines": strconv.Itoa(total), "container": container, "previous": strconv.FormatBool(previous),
	}}
}

// ansiRE matches terminal escape sequences (colours, cursor moves).
var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]`)

// newestLines turns a log into the newest chat lines that fit in budget
// bytes (each with its newline), oldest first, and counts the older lines
// left out. Only the lines kept are cleaned (cleanLine): a 500-line tail
// shown in a 2 KiB share is not redacted line by line to be thrown away.
func newestLines(text string, budget int) (kept []string, cut int) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil, 0
	}
	size, end := 0, len(text) // text[:end] holds the lines not yet looked at
	for {
		start := strings.LastIndexByte(text[:end], '\n') + 1
		line := cleanLine(text[start:end])
		if size+len(line)+1 > budget {
			cut = 1 + strings.Count(text[:start], "\n")
			break
		}
		size += len(line) + 1
		kept = append(kept, line)
		if start == 0 {
			break
		}
		end = start - 1 // before the newline
	}
	slices.Reverse(kept)
	return kept, cut
}

// cleanLine makes one log line fit for chat: escape sequences and control
// characters removed, a very long line cut, secrets redacted.
func cleanLine(line string) string {
	if !plainASCII(line) {
		line = ansiRE.ReplaceAllString(strings.TrimRight(line, "\r"), "")
		line = strings.Map(func(r rune) rune {
			if r == '\t' || r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) {
				return r
			}
			return -1
		}, line)
		line = strings.ToValidUTF8(line, "�")
	}
	if len(line) > maxLogLine {
		cutAt := maxLogLine
		for cutAt > 0 && line[cutAt]&0xC0 == 0x80 {
			cutAt--
		}
		line = line[:cutAt] + " …(cut)"
	}
	return redact.Redact(line)
}

// plainASCII reports whether s is printable ASCII and tabs only, which
// cleanLine's escape, control-character and UTF-8 passes leave as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
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
