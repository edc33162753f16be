package evals

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Kubernetes Jobs mode. A run with runner: kubernetes becomes one Indexed
// Job (completionMode Indexed, completions = parallelism = shards) whose
// pods run
//
//	parley eval worker --suite S --variant V --baseline B --run ID --shard $(JOB_COMPLETION_INDEX) --shards N
//
// Each worker answers the cases i with i % N == shard, for both variants,
// and writes its results into one ConfigMap, parley-eval-ID-SHARD,
// labelled parley.dev/eval-run=ID, key results.jsonl (one CaseResult a
// line). ConfigMaps were chosen over pod logs: they are read with the
// same RBAC as the Job, survive the pod, do not depend on log rotation or
// a kubelet's log endpoint, and are written once, atomically. Their 1 MiB
// limit is kept by clipping long answers (see WriteShard). The runner
// creates the Job, polls until every shard has written its ConfigMap (or
// the Job fails or ctx ends), stores the results and deletes the
// ConfigMaps. The Job itself is left for its TTL so that its pods' logs
// can be read.
//
// RBAC: Parley needs create/get/delete on jobs and get/list/delete on
// configmaps in the namespace; the workers' service account needs create
// on configmaps (and whatever its model endpoint needs).

// Labels and names.
const (
	LabelRun   = "parley.dev/eval-run"
	LabelShard = "parley.dev/eval-shard"
	resultsKey = "results.jsonl"
)

// KubeOptions configure the Kubernetes Jobs mode.
type KubeOptions struct {
	Client         kube.Interface // required
	Namespace      string         // required
	Image          string         // the Parley image; required
	ServiceAccount string
	Command        []string        // default ["parley"]
	ExtraArgs      []string        // e.g. --config /etc/parley/config.yaml
	Env            []corev1.EnvVar // e.g. the model API key from a Secret
	// PollInterval between checks of the Job (default 2s); Deadline is the
	// Job's activeDeadlineSeconds (default 1h).
	PollInterval time.Duration
	Deadline     time.Duration
}

func (k *KubeOptions) check() error {
	if k.Client == nil || k.Namespace == "" || k.Image == "" {
		return errors.New("evals: kubernetes mode needs a client, a namespace and an image")
	}
	k.PollInterval = cmp.Or(k.PollInterval, 2*time.Second)
	k.Deadline = cmp.Or(k.Deadline, time.Hour)
	if len(k.Command) == 0 {
		k.Command = []string{"parley"}
	}
	return nil
}

// JobName is the Job of a run.
func JobName(runID int) string { return fmt.Sprintf("parley-eval-%d", runID) }

// ShardConfigMap is the ConfigMap a worker writes.
func ShardConfigMap(runID, shard int) string { return fmt.Sprintf("parley-eval-%d-%d", runID, shard) }

// Job builds the Indexed Job of a run.
func (k *KubeOptions) Job(run Run, shards int) *batchv1.Job {
	labels := map[string]string{"app.kubernetes.io/name": "parley", "app.kubernetes.io/component": "eval-worker", LabelRun: strconv.Itoa(run.ID)}
	n := int32(shards)
	mode := batchv1.IndexedCompletion
	backoff := int32(2 * shards)
	deadline := int64(k.Deadline.Seconds())
	ttl := int32(24 * 3600)
	no, yes := false, true
	args := []string{"eval", "worker", "--suite", run.Suite, "--variant", run.Variant, "--baseline", run.Baseline,
		"--run", strconv.Itoa(run.ID), "--shard", "$(JOB_COMPLETION_INDEX)", "--shards", strconv.Itoa(shards),
		"--namespace", k.Namespace}
	args = append(args, k.ExtraArgs...)
	env := append([]corev1.EnvVar{{Name: "PARLEY_EVAL_RUN", Value: strconv.Itoa(run.ID)}}, k.Env...)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: JobName(run.ID), Namespace: k.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			CompletionMode:          &mode,
			Completions:             &n,
			Parallelism:             &n,
			BackoffLimit:            &backoff,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           k.ServiceAccount,
					AutomountServiceAccountToken: &yes, // the worker writes its ConfigMap
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "worker", Image: k.Image, Command: k.Command, Args: args, Env: env,
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}

// execKube runs a run's answers as an Indexed Job and stores what the
// workers wrote. On cancel the Job is deleted; on shutdown it is left to
// finish, and Resume collects it.
func (r *Runner) execKube(ctx context.Context, run Run, s *Suite, todo []unit, save func(CaseResult) error) error {
	k := r.o.Kube
	if len(todo) == 0 {
		return nil
	}
	shards := s.Shards
	call := func(fn func(context.Context) error) error {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return fn(c)
	}
	err := call(func(c context.Context) error {
		_, err := k.Client.BatchV1().Jobs(k.Namespace).Create(c, k.Job(run, shards), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // a resumed run: its Job is still there
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create job %s: %w", JobName(run.ID), kubeErr(err))
	}
	sel := LabelRun + "=" + strconv.Itoa(run.ID)
	for {
		var cms *corev1.ConfigMapList
		if err := call(func(c context.Context) (err error) {
			cms, err = k.Client.CoreV1().ConfigMaps(k.Namespace).List(c, metav1.ListOptions{LabelSelector: sel})
			return err
		}); err != nil && ctx.Err() == nil {
			return fmt.Errorf("list results of run %d: %w", run.ID, kubeErr(err))
		}
		var job *batchv1.Job
		if err := call(func(c context.Context) (err error) {
			job, err = k.Client.BatchV1().Jobs(k.Namespace).Get(c, JobName(run.ID), metav1.GetOptions{})
			return err
		}); err != nil && ctx.Err() == nil {
			return fmt.Errorf("job %s: %w", JobName(run.ID), kubeErr(err))
		}
		failed := ""
		if job != nil {
			for _, c := range job.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					failed = c.Reason + ": " + c.Message
				}
			}
		}
		if cms != nil && (len(cms.Items) >= shards || failed != "") {
			if err := r.collect(ctx, run, cms.Items, save); err != nil {
				return err
			}
			if failed != "" {
				return fmt.Errorf("job %s failed (%s); %d of %d shards reported", JobName(run.ID), failed, len(cms.Items), shards)
			}
			return nil
		}
		if ctx.Err() != nil {
			if !errors.Is(context.Cause(ctx), errShutdown) {
				prop := metav1.DeletePropagationBackground
				c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				_ = k.Client.BatchV1().Jobs(k.Namespace).Delete(c, JobName(run.ID), metav1.DeleteOptions{PropagationPolicy: &prop})
				cancel()
			}
			return ctx.Err()
		}
		if err := sleepCtx(ctx, k.PollInterval); err != nil {
			continue // one more pass: collect or clean up
		}
	}
}

// collect stores the results of the shards' ConfigMaps and deletes them.
func (r *Runner) collect(ctx context.Context, run Run, cms []corev1.ConfigMap, save func(CaseResult) error) error {
	k := r.o.Kube
	for _, cm := range cms {
		for i, line := range bytes.Split([]byte(cm.Data[resultsKey]), []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var res CaseResult
			if err := json.Unmarshal(line, &res); err != nil {
				return fmt.Errorf("configmap %s line %d: %w", cm.Name, i+1, err)
			}
			if res.RunID != run.ID {
				return fmt.Errorf("configmap %s line %d: result of run %d, not %d", cm.Name, i+1, res.RunID, run.ID)
			}
			if err := save(res); err != nil {
				return err
			}
		}
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, cm := range cms {
		if err := k.Client.CoreV1().ConfigMaps(k.Namespace).Delete(c, cm.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			r.log.Warn("deleting an eval shard ConfigMap failed", "configmap", cm.Name, "err", err)
		}
	}
	return nil
}

// RunShard answers one shard of a run (cases i with i % shards == shard,
// for the variant and the baseline) in this process: what a worker pod
// does. Nothing is stored.
func (r *Runner) RunShard(ctx context.Context, runID int, req RunRequest, shard, shards int) ([]CaseResult, error) {
	if shards < 1 || shard < 0 || shard >= shards {
		return nil, fmt.Errorf("%w: shard %d of %d", action.ErrInvalid, shard, shards)
	}
	req.Runner = RunnerLocal
	s, ds, v, b, err := r.Prepare(req)
	if err != nil {
		return nil, err
	}
	var todo []unit
	for i := range ds.Cases {
		if i%shards != shard {
			continue
		}
		for _, vn := range variantsOf(v, b) {
			todo = append(todo, unit{idx: i, variant: vn})
		}
	}
	var out []CaseResult
	var mu sync.Mutex
	err = r.execLocal(ctx, s, ds, todo, func(res CaseResult) error {
		mu.Lock()
		defer mu.Unlock()
		res.RunID = runID
		out = append(out, res)
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

// maxConfigMapData keeps a shard's ConfigMap under the API's 1 MiB.
const maxConfigMapData = 900 << 10

// WriteShard writes a worker's results into its ConfigMap. Answers are
// clipped (to 2 KiB, then 256 bytes) if the shard would not fit.
func WriteShard(ctx context.Context, client kube.Interface, namespace string, runID, shard int, results []CaseResult) error {
	var data []byte
	for _, limit := range []int{maxOutput, 2 << 10, 256} {
		var b bytes.Buffer
		for _, res := range results {
			res.Output = clip(res.Output, limit)
			line, err := json.Marshal(res)
			if err != nil {
				return err
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		data = b.Bytes()
		if len(data) <= maxConfigMapData {
			break
		}
	}
	if len(data) > maxConfigMapData {
		return fmt.Errorf("shard %d results are %d bytes, more than a ConfigMap holds: use more shards", shard, len(data))
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ShardConfigMap(runID, shard), Namespace: namespace, Labels: map[string]string{
			"app.kubernetes.io/name": "parley", LabelRun: strconv.Itoa(runID), LabelShard: strconv.Itoa(shard)}},
		Data: map[string]string{resultsKey: string(data)},
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := client.CoreV1().ConfigMaps(namespace).Create(c, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // a retried pod of the same index
		_, err = client.CoreV1().ConfigMaps(namespace).Update(c, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write shard %d of run %d: %w", shard, runID, kubeErr(err))
	}
	return nil
}

func kubeErr(err error) error {
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %v", action.ErrForbidden, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %v", action.ErrNotFound, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("%w: %v", action.ErrInvalid, err)
	}
	return fmt.Errorf("%w: %v", action.ErrUnavailable, err)
}
