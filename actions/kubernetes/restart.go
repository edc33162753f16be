package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Restart is kubernetes.restart, with the semantics of kubectl rollout
// restart: a new restartedAt annotation on the pod template makes the
// controller roll every pod to a new ReplicaSet revision.
type Restart struct{ base }

// NewRestart returns kubernetes.restart.
func NewRestart(o Options) (*Restart, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Restart{base{o}}, nil
}

// Spec implements action.Action.
func (r *Restart) Spec() action.Spec { return restartSpec() }

type restartPlan struct {
	action.Plan
	d        *appsv1.Deployment
	pods     int32
	revision int64
}

// Plan implements action.Planner.
func (r *Restart) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	c, ctx, cancel, err := r.begin(ctx, req)
	if err != nil {
		return action.Plan{}, err
	}
	defer cancel()
	p, err := r.plan(ctx, c, req, true)
	return p.Plan, err
}

// plan reads the deployment and works out the restart. With dryRun it also
// submits the restart patch (stamped with the time of planning) as a
// server-side dry run.
func (r *Restart) plan(ctx context.Context, c kube.Interface, req action.Request, dryRun bool) (restartPlan, error) {
	ns, name, err := target(req)
	if err != nil {
		return restartPlan{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("restart %s/%s: %w", ns, name, err) }
	d, rss, err := rolloutState(ctx, c, ns, name)
	if err != nil {
		return restartPlan{}, wrap(err)
	}
	if dryRun {
		patch, err := restartPatch("", r.o.Now()) // the change, checked on the current object
		if err != nil {
			return restartPlan{}, wrap(err)
		}
		if _, err := c.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch,
			metav1.PatchOptions{DryRun: dryRunAll}); err != nil {
			return restartPlan{}, wrap(fmt.Errorf("dry run: %w", apiError(err)))
		}
	}
	p := restartPlan{d: d, pods: replicasOf(d), revision: currentRevision(d, rss)}
	next := int64(1)
	if len(rss) > 0 {
		next = revision(&rss[0]) + 1
	}
	p.Target = ns + "/" + name
	p.State = fingerprint(d, p.pods)
	p.Summary = fmt.Sprintf("restart all %s of %s (rolling)", plural(int(p.pods), "pod"), name)
	last := d.Spec.Template.Annotations[RestartedAtAnnotation]
	if last == "" {
		last = "never"
	}
	p.Changes = []action.Change{
		{Field: "revision", Before: strconv.FormatInt(p.revision, 10), After: strconv.FormatInt(next, 10)},
		{Field: "restartedAt", Before: last, After: "time of the restart"},
	}
	return p, nil
}

// Run implements action.Action. The patch carries the resourceVersion that
// was planned against, which the API server checks as a precondition.
func (r *Restart) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := r.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	p, err := r.plan(ctx, c, req, false)
	if err != nil {
		return action.Result{}, err
	}
	d := p.d
	now := r.o.Now()
	at := restartStamp(now)
	p, err = retryWrite(ctx, p, func(p restartPlan) string { return p.State },
		func() (restartPlan, error) { return r.plan(ctx, c, req, false) },
		func(p restartPlan) error {
			patch, err := restartPatch(p.d.ResourceVersion, now)
			if err != nil {
				return fmt.Errorf("restart %s/%s: %w", d.Namespace, d.Name, err)
			}
			if _, err := c.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return fmt.Errorf("restart %s/%s: %w", d.Namespace, d.Name, apiError(err))
			}
			return nil
		})
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{
		Text: fmt.Sprintf("Restarted %s (%s): rolling restart of %s started.", d.Name, d.Namespace, plural(int(p.pods), "pod")),
		Outcome: map[string]string{
			"restarted_at":    at,
			"revision_before": strconv.FormatInt(p.revision, 10),
			"pods":            strconv.Itoa(int(p.pods)),
		},
	}, nil
}

// restartStamp is the restartedAt value for a restart at t, as kubectl
// writes it.
func restartStamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// restartPatch is kubectl rollout restart's patch, with resourceVersion
// (unless empty) as a precondition.
func restartPatch(resourceVersion string, at time.Time) ([]byte, error) {
	patch := map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{RestartedAtAnnotation: restartStamp(at)},
		}}},
	}
	if resourceVersion != "" {
		patch["metadata"] = map[string]any{"resourceVersion": resourceVersion}
	}
	return json.Marshal(patch)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
