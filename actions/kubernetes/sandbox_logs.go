package kubernetes

// The sandbox's pod logs: what the API server's pods/log would return from
// the kubelet, made up deterministically from the pod, the container and
// the clock, so the demo can show kubernetes.logs without a cluster.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// serveLog is the API server's answer to GET pods/NAME/log: the log, or
// the Status error the API server answers with.
func (s *Sandbox) serveLog(ns, name string, opts *corev1.PodLogOptions) (string, error) {
	obj, err := s.tracker.peek(podsGVR, ns, name) // only read
	if err != nil {
		return "", err
	}
	pod := obj.(*corev1.Pod)
	container := opts.Container
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", name, names))
		}
		container = pod.Spec.Containers[0].Name
	}
	cs := containerStatus(pod, container)
	if cs == nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name))
	}
	var from, to time.Time
	var crash *corev1.ContainerStateTerminated
	switch {
	case opts.Previous:
		t := cs.LastTerminationState.Terminated
		if t == nil {
			return "", apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, name))
		}
		from, to, crash = t.StartedAt.Time, t.FinishedAt.Time, t
	case cs.State.Running != nil:
		from, to = cs.State.Running.StartedAt.Time, s.now()
	case cs.State.Terminated != nil:
		from, to, crash = cs.State.Terminated.StartedAt.Time, cs.State.Terminated.FinishedAt.Time, cs.State.Terminated
	case cs.LastTerminationState.Terminated != nil:
		// Waiting to restart (CrashLoopBackOff): the kubelet serves the
		// container that ended, as kubectl logs shows it.
		t := cs.LastTerminationState.Terminated
		from, to, crash = t.StartedAt.Time, t.FinishedAt.Time, t
	default:
		reason := "ContainerCreating"
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			reason = cs.State.Waiting.Reason
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, name, reason))
	}
	tail := -1
	if opts.TailLines != nil {
		tail = int(max(0, *opts.TailLines))
	}
	log := demoLog(pod, container, from, to, crash, tail, opts.Timestamps)
	body := log.text
	if tail >= 0 {
		body = log.last(tail)
	}
	if opts.LimitBytes != nil && int64(len(body)) > *opts.LimitBytes {
		body = body[:max(0, *opts.LimitBytes)]
	}
	return body, nil
}

// demoLogText is a made-up log: its lines, each ending in a newline, and
// where each starts.
type demoLogText struct {
	text   string
	starts []int
}

// last returns the text of the last n lines.
func (l demoLogText) last(n int) string {
	if n >= len(l.starts) {
		return l.text
	}
	if n <= 0 {
		return ""
	}
	return l.text[l.starts[len(l.starts)-n]:]
}

// lines returns the lines, without their newlines.
func (l demoLogText) lines() []string {
	out := make([]string, len(l.starts))
	for i, start := range l.starts {
		end := len(l.text)
		if i+1 < len(l.starts) {
			end = l.starts[i+1]
		}
		out[i] = l.text[start : end-1]
	}
	return out
}

// demoRoutes are the requests each demo service serves.
var demoRoutes = map[string][]string{
	"checkout": {"POST /api/checkout", "GET /api/cart/summary", "POST /api/cart/merge", "GET /api/shipping/quotes"},
	"payments": {"POST /v1/charges", "POST /v1/charges/capture", "POST /v1/refunds", "GET /v1/charges/status"},
	"auth":     {"POST /oauth/token", "GET /session", "POST /session/refresh"},
	"cart":     {"GET /cart/items", "POST /cart/items", "DELETE /cart/items"},
	"search":   {"GET /search", "GET /suggest"},
	"frontend": {"GET /", "GET /product", "GET /static/app.js"},
}

// maxDemoLines bounds what a demo container has written (the kubelet
// would rotate older lines away anyway).
const maxDemoLines = 600

// demoLog makes up a container's log between from and to: start-up lines,
// then a request every few seconds (the last maxDemoLines), and for a
// container that crashed, the errors that led to it. With tail >= 0 only
// the lines a tail of that many needs are made (every request writes at
// least one line), so a short tail of a long-running pod stays cheap.
//
// Each line is written as the kubelet serves it: with its time in
// RFC 3339 first when stamps is set (timestamps=true).
func demoLog(pod *corev1.Pod, container string, from, to time.Time, crash *corev1.ContainerStateTerminated, tail int, stamps bool) demoLogText {
	app := pod.Labels["app.kubernetes.io/name"]
	if app == "" {
		app = container
	}
	routes := demoRoutes[app]
	if len(routes) == 0 {
		routes = []string{"GET /healthz"}
	}
	version := "dev"
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			if _, tag, ok := strings.Cut(c.Image, ":"); ok {
				version = tag
			}
		}
	}
	seed := sha256.Sum256([]byte(pod.Namespace + "/" + pod.Name + "/" + container + "/" + from.UTC().Format(time.RFC3339)))
	// rnd(i, n) is the i-th pseudo-random number below n: SplitMix64's
	// output for the seed's first eight bytes stepped i times, so any line
	// is made without the ones before it (a tail makes only its own).
	base := binary.BigEndian.Uint64(seed[:8])
	rnd := func(i int, n int) int {
		z := base + uint64(i+1)*0x9e3779b97f4a7c15
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return int((z ^ z>>31) % uint64(n))
	}
	if to.Before(from) {
		to = from
	}
	if from.IsZero() {
		from = to.Add(-time.Hour)
	}
	const step = 7 * time.Second
	n := int(to.Sub(from.Add(time.Second)) / step)
	first := max(0, n-maxDemoLines)
	if tail >= 0 {
		first = max(first, n-tail)
	}
	// Room for the lines (a request writes one or two of about 100 bytes).
	var b strings.Builder
	b.Grow((max(0, n-first) + 6) * 110)
	starts := make([]int, 0, max(0, n-first)+6)
	// logfmt writes a logfmt line: ts=… level=… msg="…" and the pairs
	// (key, value, key, value…; each value as it is written).
	var buf []byte
	logfmt := func(at time.Time, level, msg string, pairs ...string) {
		buf = buf[:0]
		if stamps {
			buf = append(at.UTC().AppendFormat(buf, time.RFC3339Nano), ' ')
		}
		buf = append(buf, "ts="...)
		buf = at.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z")
		buf = append(buf, " level="...)
		buf = append(buf, level...)
		buf = append(buf, " msg="...)
		buf = strconv.AppendQuote(buf, msg)
		for i := 0; i+1 < len(pairs); i += 2 {
			buf = append(append(append(append(buf, ' '), pairs[i]...), '='), pairs[i+1]...)
		}
		starts = append(starts, b.Len())
		b.Write(append(buf, '\n'))
	}
	if first == 0 {
		// The database password is made up per pod, so the demo shows the
		// redaction of a credential the service logged by mistake.
		pw := hex.EncodeToString(seed[4:12])
		logfmt(from, "info", "starting "+app, "version", version, "pid", "1")
		logfmt(from.Add(120*time.Millisecond), "info", "connecting to database", "dsn", strconv.Quote("postgres://"+app+":"+pw+"@db."+pod.Namespace+".svc:5432/"+app))
		logfmt(from.Add(380*time.Millisecond), "info", "listening", "addr", ":8080")
	}
	for i := first; i < n; i++ {
		at := from.Add(time.Second + time.Duration(i)*step + time.Duration(rnd(i, 900))*time.Millisecond)
		route := routes[rnd(i+1, len(routes))]
		method, path, _ := strings.Cut(route, " ")
		took := 4 + rnd(i+2, 60)
		status := "200"
		switch r := rnd(i+3, 100); {
		case app == "payments" && r < 6:
			logfmt(at, "error", "fraud scoring call failed", "err", `"context deadline exceeded"`, "upstream", "fraud-scoring", "duration_ms", "2000")
			continue
		case r < 3:
			status, took = "503", 1500+rnd(i+4, 800)
			logfmt(at, "warn", "slow upstream", "duration_ms", strconv.Itoa(took))
		case r < 8 && method == "GET":
			status = "404"
		}
		logfmt(at, "info", "request", "method", method, "path", path, "status", status, "duration_ms", strconv.Itoa(took))
	}
	if crash != nil {
		end := to
		logfmt(end.Add(-3*time.Second), "error", "fraud scoring client: dial tcp 10.43.12.7:443: i/o timeout", "attempt", "5")
		logfmt(end.Add(-2*time.Second), "error", "health check failed", "check", "fraud-scoring", "failures", "3")
		logfmt(end.Add(-time.Second), "fatal", "giving up: fraud scoring unreachable; exiting", "exit_code", strconv.Itoa(int(crash.ExitCode)))
	}
	return demoLogText{text: b.String(), starts: starts}
}
