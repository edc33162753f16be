package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Rollback is kubernetes.rollback, with the semantics of kubectl rollout
// undo: the pod template of the chosen revision's ReplicaSet is copied back
// into the deployment, and the deployment controller then makes that
// ReplicaSet the newest revision.
type Rollback struct{ base }

// NewRollback returns kubernetes.rollback.
func NewRollback(o Options) (*Rollback, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Rollback{base{o}}, nil
}

// Spec implements action.Action.
func (r *Rollback) Spec() action.Spec { return rollbackSpec() }

// rollbackSkipAnnotations are the deployment annotations kubectl rollout
// undo keeps from the deployment instead of taking them from the
// ReplicaSet (kubectl's annotationsToSkip).
var rollbackSkipAnnotations = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	RevisionAnnotation:                 true,
	RevisionHistoryAnnotation:          true,
	DesiredReplicasAnnotation:          true,
	MaxReplicasAnnotation:              true,
	appsv1.DeprecatedRollbackTo:        true,
}

type rollbackPlan struct {
	action.Plan
	d                  *appsv1.Deployment // as read; its resourceVersion guards the write
	upd                *appsv1.Deployment // d rolled back: what Run writes
	to                 *appsv1.ReplicaSet
	fromRev, toRev     int64
	fromImage, toImage string
	noChange           bool
}

// Plan implements action.Planner.
func (r *Rollback) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	c, ctx, cancel, err := r.begin(ctx, req)
	if err != nil {
		return action.Plan{}, err
	}
	defer cancel()
	p, err := r.plan(ctx, c, req, true)
	return p.Plan, err
}

// plan reads the deployment and its history and works out the rollback.
// With dryRun it also submits the rolled-back deployment as a server-side
// dry run and reports the server's answer.
func (r *Rollback) plan(ctx context.Context, c kube.Interface, req action.Request, dryRun bool) (rollbackPlan, error) {
	ns, name, err := target(req)
	if err != nil {
		return rollbackPlan{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("rollback %s/%s: %w", ns, name, err) }
	d, rss, err := rolloutState(ctx, c, ns, name)
	if err != nil {
		return rollbackPlan{}, wrap(err)
	}
	want, named := req.Params.Int("revision")
	to, err := rollbackTarget(d, rss, int64(want), named)
	if err != nil {
		return rollbackPlan{}, wrap(err)
	}

	p := rollbackPlan{d: d, to: to, toRev: revision(to),
		fromImage: images(&d.Spec.Template), toImage: images(&to.Spec.Template)}
	p.fromRev = currentRevision(d, rss)
	p.Target = ns + "/" + name
	p.State = fingerprint(d, replicasOf(d),
		"revision="+strconv.FormatInt(p.fromRev, 10),
		"to="+string(to.UID)+"@"+strconv.FormatInt(p.toRev, 10)+":"+templateHash(&to.Spec.Template, 0))
	if equalIgnoreHash(&to.Spec.Template, &d.Spec.Template) {
		p.noChange = true
		p.Summary = fmt.Sprintf("%s already runs the template of revision %d (no change)", name, p.toRev)
		return p, nil
	}
	p.upd = rolledBack(d, to)
	if dryRun {
		check := p.upd.DeepCopy()
		check.ResourceVersion = "" // the change, checked on the current object
		got, err := c.AppsV1().Deployments(ns).Update(ctx, check, metav1.UpdateOptions{DryRun: dryRunAll})
		if err != nil {
			return rollbackPlan{}, wrap(fmt.Errorf("dry run: %w", apiError(err)))
		}
		p.toImage = images(&got.Spec.Template) // what the server would store, after admission
	}
	p.Summary = fmt.Sprintf("%s revision %d -> %d", name, p.fromRev, p.toRev)
	p.Changes = []action.Change{{Field: "revision", Before: strconv.FormatInt(p.fromRev, 10), After: strconv.FormatInt(p.toRev, 10)}}
	if p.fromImage != p.toImage {
		p.Summary += fmt.Sprintf(" (image %s -> %s)", p.fromImage, p.toImage)
		p.Changes = append(p.Changes, action.Change{Field: "image", Before: p.fromImage, After: p.toImage})
		return p, nil
	}
	// The same image: say what really changes, so nobody confirms "a
	// rollback" believing it undoes a release when it only undoes a
	// restart, and point at the revision that would.
	diff := templateDiff(&d.Spec.Template, &p.upd.Spec.Template)
	p.Summary += fmt.Sprintf(": only %s changes; the image stays %s", strings.Join(diff, " and "), p.fromImage)
	if older := olderImage(rss, p.fromImage, p.toRev); older != nil {
		p.Summary += fmt.Sprintf(" (revision %d runs %s: ask to roll back to revision %d for that)",
			revision(older), images(&older.Spec.Template), revision(older))
	}
	for _, f := range diff {
		p.Changes = append(p.Changes, action.Change{Field: f, Before: "revision " + strconv.FormatInt(p.fromRev, 10), After: "revision " + strconv.FormatInt(p.toRev, 10)})
	}
	return p, nil
}

// rollbackTarget picks the ReplicaSet to roll back to as kubectl does: the
// named revision, or else the second-newest revision in the history (which
// is the one before the current revision on a settled deployment).
// rss is sorted newest revision first.
func rollbackTarget(d *appsv1.Deployment, rss []appsv1.ReplicaSet, want int64, named bool) (*appsv1.ReplicaSet, error) {
	var history []*appsv1.ReplicaSet // with a revision, newest first
	var revs []string
	for i := range rss {
		if rev := revision(&rss[i]); rev > 0 {
			if named && rev == want {
				return &rss[i], nil
			}
			history = append(history, &rss[i])
			revs = append(revs, strconv.FormatInt(rev, 10))
		}
	}
	switch {
	case len(history) == 0:
		return nil, fmt.Errorf("%w: no rollout history found for %s (%s)", action.ErrNotFound, d.Name, d.Namespace)
	case named:
		return nil, fmt.Errorf("%w: revision %d is not in the history of %s (%s); it has revisions %s",
			action.ErrNotFound, want, d.Name, d.Namespace, strings.Join(revs, ", "))
	case len(history) == 1:
		return nil, fmt.Errorf("%w: %s (%s) has only revision %s; there is no earlier revision to roll back to",
			action.ErrNotFound, d.Name, d.Namespace, revs[0])
	}
	return history[1], nil
}

// currentRevision is the deployment's revision annotation or, before the
// controller has set it, the revision of the ReplicaSet matching its
// template.
func currentRevision(d *appsv1.Deployment, rss []appsv1.ReplicaSet) int64 {
	if rev := revision(d); rev > 0 {
		return rev
	}
	for i := range rss {
		if equalIgnoreHash(&rss[i].Spec.Template, &d.Spec.Template) {
			return revision(&rss[i])
		}
	}
	return 0
}

// Run implements action.Action. It plans again and updates the deployment
// with the resourceVersion it read.
func (r *Rollback) Run(ctx context.Context, req action.Request) (action.Result, error) {
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
	outcome := map[string]string{
		"revision_before": strconv.FormatInt(p.fromRev, 10),
		"revision_after":  strconv.FormatInt(p.toRev, 10),
		"image_before":    p.fromImage,
		"image_after":     p.toImage,
	}
	if p.noChange {
		return action.Result{
			Text:    fmt.Sprintf("%s (%s) already runs revision %d (%s); nothing changed.", d.Name, d.Namespace, p.toRev, p.toImage),
			Outcome: outcome,
		}, nil
	}

	p, err = retryWrite(ctx, p, func(p rollbackPlan) string { return p.State },
		func() (rollbackPlan, error) { return r.plan(ctx, c, req, false) },
		func(p rollbackPlan) error {
			if _, err := c.AppsV1().Deployments(d.Namespace).Update(ctx, p.upd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("rollback %s/%s to revision %d: %w", d.Namespace, d.Name, p.toRev, apiError(err))
			}
			return nil
		})
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{
		Text: fmt.Sprintf("Rolled back %s (%s) from revision %d (%s) to revision %d (%s).",
			d.Name, d.Namespace, p.fromRev, p.fromImage, p.toRev, p.toImage),
		Outcome: outcome,
	}, nil
}

// rolledBack is d with the pod template of the ReplicaSet to, as kubectl
// rollout undo writes it.
func rolledBack(d *appsv1.Deployment, to *appsv1.ReplicaSet) *appsv1.Deployment {
	upd := d.DeepCopy()
	tmpl := to.Spec.Template.DeepCopy()
	delete(tmpl.Labels, podTemplateHashLabel)
	upd.Spec.Template = *tmpl
	upd.Annotations = rollbackAnnotations(d.Annotations, to.Annotations)
	return upd
}

// rollbackAnnotations are the deployment's annotations after kubectl rollout
// undo: the rollout bookkeeping of the deployment, everything else (the
// change-cause in particular) from the target ReplicaSet.
func rollbackAnnotations(deployment, rs map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range deployment {
		if rollbackSkipAnnotations[k] {
			out[k] = v
		}
	}
	for k, v := range rs {
		if !rollbackSkipAnnotations[k] {
			out[k] = v
		}
	}
	return out
}

// olderImage is the newest ReplicaSet older than revision before whose
// images differ from image: the revision a rollback "to the previous
// release" means, when the previous revision only restarted the pods.
// rss is sorted newest revision first.
func olderImage(rss []appsv1.ReplicaSet, image string, before int64) *appsv1.ReplicaSet {
	for i := range rss {
		if rev := revision(&rss[i]); rev > 0 && rev < before && images(&rss[i].Spec.Template) != image {
			return &rss[i]
		}
	}
	return nil
}

// templateDiff names what differs between two pod templates with the same
// images, in words for a confirmation prompt: "the pod template annotation
// kubectl.kubernetes.io/restartedAt (a restart)", "the environment of
// container app", "the pod spec".
func templateDiff(from, to *corev1.PodTemplateSpec) []string {
	var out []string
	var keys []string
	for k := range union(from.Annotations, to.Annotations) {
		if from.Annotations[k] != to.Annotations[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		what := "the pod template annotation " + k
		if k == RestartedAtAnnotation {
			switch {
			case to.Annotations[k] == "":
				what += " (undoing the restart of " + from.Annotations[k] + ")"
			default:
				what += " (back to the restart of " + to.Annotations[k] + ")"
			}
		}
		out = append(out, what)
	}
	a, b := from.DeepCopy(), to.DeepCopy()
	a.Annotations, b.Annotations = nil, nil
	delete(a.Labels, podTemplateHashLabel)
	delete(b.Labels, podTemplateHashLabel)
	if !apiequality.Semantic.DeepEqual(a.Labels, b.Labels) {
		out = append(out, "the pod labels")
	}
	a.Labels, b.Labels = nil, nil
	if len(a.Spec.Containers) == len(b.Spec.Containers) {
		for i := range a.Spec.Containers {
			ca, cb := &a.Spec.Containers[i], &b.Spec.Containers[i]
			for _, part := range []struct {
				name string
				x, y any
			}{
				{"environment", []any{ca.Env, ca.EnvFrom}, []any{cb.Env, cb.EnvFrom}},
				{"resources", ca.Resources, cb.Resources},
				{"command and arguments", []any{ca.Command, ca.Args}, []any{cb.Command, cb.Args}},
				{"probes", []any{ca.LivenessProbe, ca.ReadinessProbe, ca.StartupProbe}, []any{cb.LivenessProbe, cb.ReadinessProbe, cb.StartupProbe}},
			} {
				if !apiequality.Semantic.DeepEqual(part.x, part.y) {
					out = append(out, fmt.Sprintf("the %s of container %s", part.name, ca.Name))
				}
			}
			*ca = corev1.Container{}
			*cb = corev1.Container{}
		}
	}
	if !apiequality.Semantic.DeepEqual(a.Spec, b.Spec) {
		out = append(out, "the pod spec")
	}
	if len(out) == 0 {
		out = append(out, "the pod template")
	}
	return out
}

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
