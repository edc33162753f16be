package useraction

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// kubernetes_job runner limits and defaults.
const (
	DefaultJobTimeout = 5 * time.Minute
	MaxJobTimeout     = time.Hour
	// DefaultJobTTL is the Job's ttlSecondsAfterFinished when the template
	// sets none: long enough for a person to look at it, then it is gone.
	DefaultJobTTL = time.Hour
	// LogLines is how many of the pod's last log lines the reply shows.
	LogLines = 20
	// jobCleanup bounds the API calls around the wait (create, logs, delete).
	jobCleanup = 30 * time.Second
)

// Labels and annotations on the Jobs Parley starts.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	LabelAction      = "parley.dev/action"
	LabelRequest     = "parley.dev/request-id"
	AnnotationAsking = "parley.dev/requested-by"
	// EnvPrefix starts the environment variables that carry the
	// parameters: PARLEY_PARAM_SITE for site.
	EnvPrefix = "PARLEY_PARAM_"
)

// KubeClients returns the Kubernetes client to use for a chat subject, as
// the built-in Kubernetes actions do (per-user impersonation when
// configured).
type KubeClients func(subject string) (kube.Interface, error)

type jobRunner struct {
	namespace    string
	templateFile string // as written in the action file
	job          *batchv1.Job
	prefix       string // of the generated Job names
	timeout      time.Duration
	logs         bool
	clients      KubeClients
	poll         time.Duration
}

var (
	nameCharsRE  = regexp.MustCompile(`[^a-z0-9-]+`)
	labelCharsRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// jobPrefix is the start of the generated Job names: the template's name,
// else the action's name with dots as dashes.
func jobPrefix(job *batchv1.Job, actionName string) string {
	p := job.Name
	if p == "" {
		p = job.GenerateName
	}
	if p == "" {
		p = actionName
	}
	p = nameCharsRE.ReplaceAllString(strings.ToLower(p), "-")
	if len(p) > 40 {
		p = p[:40]
	}
	p = strings.Trim(p, "-")
	if p == "" {
		p = "parley-job"
	}
	return p
}

// jobName is unique per request: a request that somehow ran twice would
// find its Job already there instead of starting a second one.
func (r *jobRunner) jobName(actionName, requestID string) string {
	sum := sha256.Sum256([]byte(actionName + "\x00" + requestID))
	return r.prefix + "-" + hex.EncodeToString(sum[:5])
}

// labelValue makes s a valid label value (63 characters of [A-Za-z0-9-_.]).
func labelValue(s string) string {
	s = labelCharsRE.ReplaceAllString(s, "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-_.")
}

// build returns the Job for one request: the template with a generated
// name, labels tying it to the request, the parameters as environment
// variables on every container, a TTL, a deadline and no retries unless
// the template asks for them.
func (r *jobRunner) build(spec action.Spec, p action.Params, req action.Request) *batchv1.Job {
	j := r.job.DeepCopy()
	j.Name, j.GenerateName, j.Namespace = r.jobName(spec.Name, req.RequestID), "", r.namespace
	j.ResourceVersion, j.UID = "", ""
	labels := map[string]string{LabelManagedBy: "parley", LabelAction: labelValue(spec.Name)}
	if req.RequestID != "" {
		labels[LabelRequest] = labelValue(req.RequestID)
	}
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	if j.Spec.Template.Labels == nil {
		j.Spec.Template.Labels = map[string]string{}
	}
	for k, v := range labels {
		j.Labels[k] = v
		j.Spec.Template.Labels[k] = v
	}
	if req.Subject != "" {
		if j.Annotations == nil {
			j.Annotations = map[string]string{}
		}
		j.Annotations[AnnotationAsking] = req.Subject
	}
	if j.Spec.TTLSecondsAfterFinished == nil {
		ttl := int32(DefaultJobTTL / time.Second)
		j.Spec.TTLSecondsAfterFinished = &ttl
	}
	if d := int64(r.timeout / time.Second); j.Spec.ActiveDeadlineSeconds == nil || *j.Spec.ActiveDeadlineSeconds > d {
		j.Spec.ActiveDeadlineSeconds = &d
	}
	if j.Spec.BackoffLimit == nil {
		none := int32(0)
		j.Spec.BackoffLimit = &none
	}
	env := []corev1.EnvVar{{Name: "PARLEY_ACTION", Value: spec.Name}, {Name: "PARLEY_REQUEST_ID", Value: req.RequestID}}
	for _, sp := range spec.Params {
		if _, given := p[sp.Name]; given {
			env = append(env, corev1.EnvVar{Name: EnvPrefix + strings.ToUpper(sp.Name), Value: p.String(sp.Name)})
		}
	}
	ps := &j.Spec.Template.Spec
	for i := range ps.InitContainers {
		ps.InitContainers[i].Env = append(ps.InitContainers[i].Env, env...)
	}
	for i := range ps.Containers {
		ps.Containers[i].Env = append(ps.Containers[i].Env, env...)
	}
	return j
}

// describe is the Job as the confirmation prompt shows it.
func (r *jobRunner) describe(j *batchv1.Job) string {
	var images, vars []string
	for _, c := range j.Spec.Template.Spec.Containers {
		images = append(images, c.Image)
	}
	for _, e := range j.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, EnvPrefix) {
			vars = append(vars, e.Name+"="+e.Value)
		}
	}
	s := fmt.Sprintf("start Job %s/%s (%s, image %s)", j.Namespace, j.Name, r.templateFile, strings.Join(images, ", "))
	if len(vars) > 0 {
		s += " with " + strings.Join(vars, " ")
	}
	return s + fmt.Sprintf(", and wait up to %s for it", action.FormatDuration(r.timeout))
}

func (r *jobRunner) client(subject string) (kube.Interface, error) {
	if r.clients == nil {
		return nil, fmt.Errorf("%w: kubernetes_job actions need a Kubernetes cluster (the kubernetes section of the configuration)", action.ErrNotConfigured)
	}
	return r.clients(subject)
}

// plan checks the Job with a server-side dry run: a missing namespace, a
// refused permission or an invalid manifest shows before anyone confirms.
func (r *jobRunner) plan(ctx context.Context, spec action.Spec, p action.Params, req action.Request) (string, error) {
	c, err := r.client(req.Subject)
	if err != nil {
		return "", err
	}
	j := r.build(spec, p, req)
	if _, err := c.BatchV1().Jobs(r.namespace).Create(ctx, j, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		return "", fmt.Errorf("job %s/%s: %w", r.namespace, j.Name, kubeErr(err))
	}
	return r.describe(j), nil
}

// jobResult is how a Job ended.
type jobResult struct {
	name     string
	took     time.Duration
	log      jobLog // the pod's last log lines, redacted
	logsErr  error  // why the logs could not be read
	logsRead bool   // whether they were asked for (logs: tail)
}

// run starts the Job and waits for it. A Job that fails returns an error
// with its last log lines; one that does not finish within the timeout is
// deleted (its pods with it) and says so.
func (r *jobRunner) run(ctx context.Context, spec action.Spec, p action.Params, req action.Request) (jobResult, error) {
	c, err := r.client(req.Subject)
	if err != nil {
		return jobResult{}, err
	}
	j := r.build(spec, p, req)
	res := jobResult{name: r.namespace + "/" + j.Name}
	cctx, cancel := context.WithTimeout(ctx, jobCleanup)
	_, err = c.BatchV1().Jobs(r.namespace).Create(cctx, j, metav1.CreateOptions{})
	cancel()
	if apierrors.IsAlreadyExists(err) {
		return res, fmt.Errorf("%w: Job %s already exists: this request started it before, and it is not started twice", action.ErrConflict, res.name)
	}
	if err != nil {
		return res, fmt.Errorf("create Job %s: %w", res.name, kubeErr(err))
	}
	start := time.Now()
	req.Report(ctx, fmt.Sprintf("Started Job %s; waiting up to %s for it to finish.", res.name, action.FormatDuration(r.timeout)))
	wctx, stop := context.WithTimeout(ctx, r.timeout)
	defer stop()
	failed, err := r.wait(wctx, c, j.Name)
	res.took = time.Since(start).Round(time.Second)
	readLogs := func() {
		if !r.logs {
			return
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobCleanup)
		defer cancel()
		res.log, res.logsErr = jobLogs(lctx, c, r.namespace, j.Name, LogLines)
		res.logsRead = true
	}
	switch {
	case err != nil && ctx.Err() != nil:
		// Parley itself is stopping: the Job is left to finish, bounded by
		// its activeDeadlineSeconds, and removed by its TTL.
		return res, fmt.Errorf("%w: Parley stopped waiting for Job %s after %s; the Job was left running (deadline %s, then removed)",
			action.ErrUnavailable, res.name, res.took, action.FormatDuration(r.timeout))
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		readLogs()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobCleanup)
		prop := metav1.DeletePropagationBackground
		derr := c.BatchV1().Jobs(r.namespace).Delete(dctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &prop})
		cancel()
		msg := fmt.Sprintf("Job %s did not finish within %s (timed out)", res.name, action.FormatDuration(r.timeout))
		if derr != nil && !apierrors.IsNotFound(derr) {
			msg += fmt.Sprintf("; deleting it failed too (%v): delete it by hand", kubeErr(derr))
		} else {
			msg += "; it was deleted with its pods"
		}
		return res, fmt.Errorf("%w: %s%s", context.DeadlineExceeded, msg, logsSuffix(res))
	case err != nil:
		return res, fmt.Errorf("watch Job %s: %w", res.name, err)
	case failed != "":
		readLogs()
		return res, fmt.Errorf("job %s failed (%s)%s", res.name, failed, logsSuffix(res))
	}
	readLogs()
	return res, nil
}

// logsSuffix ends a message about the Job with its log tail, or says
// why there is none.
func logsSuffix(res jobResult) string {
	switch {
	case !res.logsRead:
		return ""
	case len(res.log.lines) > 0:
		return ". " + logsHeading(res.log) + ":\n" + res.log.text()
	case res.logsErr != nil:
		return fmt.Sprintf(" (its logs could not be read: %v)", res.logsErr)
	case res.log.unread != "":
		return " (no log: its " + res.log.unread + ")"
	}
	return " (its pod wrote no log lines)"
}

// logsHeading introduces the log lines: which pod and container they
// come from, and what was left out.
func logsHeading(l jobLog) string {
	s := fmt.Sprintf("Last log lines of pod %s, container %s", l.pod, l.container)
	var notes []string
	if l.older > 0 {
		notes = append(notes, fmt.Sprintf("the newest that fit in %d KiB; %d older lines left out", maxLogOutput>>10, l.older))
	}
	if l.truncated {
		notes = append(notes, fmt.Sprintf("its last %d lines are longer than %d MiB: the newest may be missing", LogLines, maxLogStream>>20))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}

// wait polls the Job until it completes or fails, or ctx ends. It returns
// the failure condition's reason and message when it failed. A passing API
// error (a restarting API server, the client's rate limiter) does not end
// the wait: the Job is still running. A refusal or a deleted Job does.
func (r *jobRunner) wait(ctx context.Context, c kube.Interface, name string) (string, error) {
	poll := r.poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		gctx, cancel := context.WithTimeout(ctx, jobCleanup)
		j, err := c.BatchV1().Jobs(r.namespace).Get(gctx, name, metav1.GetOptions{})
		cancel()
		switch {
		case ctx.Err() != nil:
		case apierrors.IsNotFound(err):
			return "", fmt.Errorf("%w: the Job was deleted while Parley waited for it", action.ErrConflict)
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
			return "", kubeErr(err)
		case err != nil:
			last = err
		default:
			last = nil
			for _, cond := range j.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					continue
				}
				switch cond.Type {
				case batchv1.JobComplete:
					return "", nil
				case batchv1.JobFailed:
					why := cond.Reason
					if why == "" {
						why = "Failed"
					}
					if cond.Message != "" {
						why += ": " + cond.Message
					}
					return why, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return "", fmt.Errorf("%w (the last status read failed: %v)", ctx.Err(), kubeErr(last))
			}
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

func kubeErr(err error) error {
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %v", action.ErrForbidden, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %v", action.ErrNotFound, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("%w: %v", action.ErrInvalid, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: %v", action.ErrUnavailable, err)
}
