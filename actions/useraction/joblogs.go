package useraction

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/redact"
)

// Bounds of a Job's log tail. LogLines (job.go) is how many lines are
// asked for; these keep a tail of huge lines out of the chat and the
// audit log, where a failed Job's tail ends up inside the error.
const (
	// maxLogStream is the most read of the API server's answer (and its
	// limitBytes). The kubelet applies limitBytes from the start of the
	// tail, so it is generous: what matters is the tail's end.
	maxLogStream = 4 << 20
	// maxLogKeep is how much of the answer's end is kept while reading.
	maxLogKeep = 64 << 10
	// maxLogOutput bounds the lines shown: the newest lines that fit.
	maxLogOutput = 4 << 10
	// maxLogLine cuts one very long line.
	maxLogLine = 1000
)

// defaultContainerAnnotation names the container kubectl logs reads when
// a pod has several.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// jobLog is the tail of the log of a Job's pod.
type jobLog struct {
	pod, container string
	// lines are the newest lines, oldest first: control characters
	// removed, very long lines cut, redacted.
	lines []string
	// older is how many lines of the tail were left out to stay within
	// maxLogOutput; truncated says the answer was longer than
	// maxLogStream, so the newest lines may be missing.
	older     int
	truncated bool
	// unread says why the pod has no log to read ("pod X was never
	// scheduled to a node (...)"); "" when it was read.
	unread string
}

func (l jobLog) text() string { return strings.Join(l.lines, "\n") }

// jobLogs reads the last lines of the log of a Job's pod: the newest
// failed pod when there is one (what went wrong), else the newest pod;
// in a failed pod, the container that failed (an init container's
// failure stops the others from starting). Pod logs are served by the
// node's kubelet through the API server (pods/log).
func jobLogs(ctx context.Context, c kube.Interface, namespace, job string, lines int64) (jobLog, error) {
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return jobLog{}, kubeErr(err)
	}
	if len(pods.Items) == 0 {
		return jobLog{}, errors.New("the Job has no pod")
	}
	items := pods.Items
	slices.SortStableFunc(items, func(a, b corev1.Pod) int {
		if fa, fb := a.Status.Phase == corev1.PodFailed, b.Status.Phase == corev1.PodFailed; fa != fb {
			if fa {
				return 1
			}
			return -1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	pod := &items[len(items)-1]
	out := jobLog{pod: pod.Name, container: logContainer(pod)}
	if pod.Spec.NodeName == "" {
		// The API server answers an empty log for a pod on no node:
		// say why there is none instead.
		why := cmp.Or(string(pod.Status.Phase), string(corev1.PodPending))
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason+cond.Message != "" {
				why = strings.Trim(cond.Reason+": "+cond.Message, ": ")
			}
		}
		out.unread = fmt.Sprintf("pod %s was never scheduled to a node (%s)", pod.Name, redact.Redact(why))
		return out, nil
	}
	tail, limit := lines, int64(maxLogStream)
	rc, err := c.CoreV1().Pods(namespace).Logs(ctx, pod.Name, &corev1.PodLogOptions{
		Container: out.container, TailLines: &tail, LimitBytes: &limit,
	})
	if err != nil {
		return out, fmt.Errorf("pod %s, container %s: %w", pod.Name, out.container, kubeErr(err))
	}
	defer rc.Close()
	raw, dropped, truncated, err := readTail(rc, maxLogKeep, maxLogStream)
	if err != nil {
		return out, fmt.Errorf("pod %s, container %s: %w", pod.Name, out.container, kubeErr(err))
	}
	out.truncated = truncated
	all := cleanLines(string(raw))
	if int64(len(all)) > lines {
		all = all[int64(len(all))-lines:]
	}
	out.lines = keepNewest(all, maxLogOutput)
	out.older = min(dropped+len(all), int(lines)) - len(out.lines)
	return out, nil
}

// readTail reads r up to limit bytes and returns the last keep bytes of
// it, from the start of a line: the end of a log is what tells how a run
// ended. dropped is how many whole or cut lines before those were
// dropped; truncated says r had more than limit bytes.
func readTail(r io.Reader, keep, limit int) (tail []byte, dropped int, truncated bool, err error) {
	buf := make([]byte, 0, 2*keep)
	chunk := make([]byte, 32<<10)
	total, midLine := 0, false
	for {
		n, rerr := r.Read(chunk[:min(len(chunk), limit+1-total)])
		total += n
		buf = append(buf, chunk[:n]...)
		if total > limit {
			truncated = true
			buf = buf[:len(buf)-(total-limit)]
		}
		if len(buf) > keep {
			cut := len(buf) - keep
			dropped += bytes.Count(buf[:cut], []byte("\n"))
			midLine = buf[cut-1] != '\n'
			buf = append(buf[:0], buf[cut:]...)
		}
		if truncated || errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, 0, false, rerr
		}
	}
	if midLine {
		// The first line was cut at the front: leave it out.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
			dropped++
		}
	}
	return buf, dropped, truncated, nil
}

// logContainer is the container whose log tells what happened: in a
// failed pod the first that ended with a non-zero exit (init containers
// run first), else the pod's default container.
func logContainer(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodFailed {
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, cs := range list {
				if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
					return cs.Name
				}
			}
		}
	}
	if name := p.Annotations[defaultContainerAnnotation]; name != "" && slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == name }) {
		return name
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}

// ansiRE matches terminal escape sequences (colours, cursor moves).
var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]`)

// cleanLines turns a log into chat lines: escape sequences and control
// characters removed, secrets redacted (over the whole text, so that a
// multi-line key is found whole), very long lines cut.
func cleanLines(text string) []string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil
	}
	raw := strings.Split(text, "\n")
	for i, line := range raw {
		line = ansiRE.ReplaceAllString(strings.TrimRight(line, "\r"), "")
		line = strings.Map(func(r rune) rune {
			if r == '\t' || r >= 0x20 && r != 0x7f && (r < 0x80 || r >= 0xa0) {
				return r
			}
			return -1
		}, line)
		raw[i] = strings.ToValidUTF8(line, "\uFFFD")
	}
	out := strings.Split(redact.Redact(strings.Join(raw, "\n")), "\n")
	for i, line := range out {
		if len(line) > maxLogLine {
			cut := maxLogLine
			for cut > 0 && line[cut]&0xC0 == 0x80 {
				cut--
			}
			out[i] = line[:cut] + " …(cut)"
		}
	}
	return out
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
