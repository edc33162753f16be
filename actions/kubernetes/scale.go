package kubernetes

import (
	"context"
	"fmt"
	"strconv"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Scale is kubernetes.scale: set a deployment's replica count through the
// scale subresource, with optimistic concurrency.
type Scale struct{ base }

// NewScale returns kubernetes.scale.
func NewScale(o Options) (*Scale, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Scale{base{o}}, nil
}

// Spec implements action.Action.
func (s *Scale) Spec() action.Spec { return scaleSpec() }

// scalePlan is a plan plus what Run needs to carry it out.
type scalePlan struct {
	action.Plan
	scale         *autoscalingv1.Scale // as read; its resourceVersion guards the write
	before, after int32
	name, ns      string
	noChange      bool
}

// Plan implements action.Planner.
func (s *Scale) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	c, ctx, cancel, err := s.begin(ctx, req)
	if err != nil {
		return action.Plan{}, err
	}
	defer cancel()
	p, err := s.plan(ctx, c, req, true)
	return p.Plan, err
}

// plan reads the deployment and works out the change. With dryRun it also
// submits the new scale as a server-side dry run and reports the server's
// answer; Run, which writes right after planning, leaves it out.
func (s *Scale) plan(ctx context.Context, c kube.Interface, req action.Request, dryRun bool) (scalePlan, error) {
	ns, name, err := target(req)
	if err != nil {
		return scalePlan{}, err
	}
	want, ok := req.Params.Int("replicas")
	if !ok || want < 0 {
		return scalePlan{}, fmt.Errorf("scale %s/%s: %w: how many replicas?", ns, name, action.ErrInvalid)
	}
	d, err := getDeployment(ctx, c, ns, name)
	if err != nil {
		return scalePlan{}, fmt.Errorf("scale %s/%s: %w", ns, name, err)
	}
	sc, err := c.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return scalePlan{}, fmt.Errorf("scale %s/%s: read scale: %w", ns, name, apiError(err))
	}
	if sc.ResourceVersion == "" { // never write without a precondition
		sc.ResourceVersion = d.ResourceVersion
	}
	p := scalePlan{scale: sc, before: sc.Spec.Replicas, after: int32(want), name: name, ns: ns}
	p.Target = ns + "/" + name
	p.State = fingerprint(d, sc.Spec.Replicas)
	if p.before == p.after {
		p.Summary = fmt.Sprintf("%s replicas %d -> %d (no change)", name, p.before, p.after)
		p.noChange = true
		return p, nil
	}
	if dryRun {
		sc := p.scale.DeepCopy()
		sc.Spec.Replicas = p.after
		sc.ResourceVersion = "" // the change, checked on the current object
		got, err := c.AppsV1().Deployments(ns).UpdateScale(ctx, name, sc, metav1.UpdateOptions{DryRun: dryRunAll})
		if err != nil {
			return scalePlan{}, fmt.Errorf("scale %s/%s: dry run: %w", ns, name, apiError(err))
		}
		p.after = got.Spec.Replicas // what the server would store, after admission
	}
	p.Summary = fmt.Sprintf("%s replicas %d -> %d", name, p.before, p.after)
	if note := autoscalerNote(ctx, c, ns, name); note != "" {
		p.Summary += " (" + note + ")"
	}
	p.Changes = []action.Change{{Field: "replicas", Before: strconv.Itoa(int(p.before)), After: strconv.Itoa(int(p.after))}}
	return p, nil
}

// Run implements action.Action. It plans again and writes the new count
// with the resourceVersion it read: if anything changed the deployment in
// between, the API server refuses and Run returns action.ErrConflict.
func (s *Scale) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := s.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	p, err := s.plan(ctx, c, req, false)
	if err != nil {
		return action.Result{}, err
	}
	outcome := map[string]string{
		"replicas_before": strconv.Itoa(int(p.before)),
		"replicas_after":  strconv.Itoa(int(p.after)),
	}
	if p.noChange {
		return action.Result{
			Text:    fmt.Sprintf("%s (%s) already has %d replicas; nothing changed.", p.name, p.ns, p.before),
			Outcome: outcome,
		}, nil
	}
	p, err = retryWrite(ctx, p, func(p scalePlan) string { return p.State },
		func() (scalePlan, error) { return s.plan(ctx, c, req, false) },
		func(p scalePlan) error {
			sc := p.scale.DeepCopy()
			sc.Spec.Replicas = p.after
			if _, err := c.AppsV1().Deployments(p.ns).UpdateScale(ctx, p.name, sc, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("scale %s/%s: %w", p.ns, p.name, apiError(err))
			}
			return nil
		})
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{
		Text:    fmt.Sprintf("Scaled %s (%s) %d -> %d.", p.name, p.ns, p.before, p.after),
		Outcome: outcome,
	}, nil
}

// autoscalerNote warns when a HorizontalPodAutoscaler manages the
// deployment and will likely undo a manual scale. It is a hint only: when
// the autoscalers cannot be read, there is no note.
func autoscalerNote(ctx context.Context, c kube.Interface, ns, name string) string {
	list, err := c.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, h := range list.Items {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != name {
			continue
		}
		minReplicas := int32(1)
		if h.Spec.MinReplicas != nil {
			minReplicas = *h.Spec.MinReplicas
		}
		return fmt.Sprintf("note: HorizontalPodAutoscaler %s manages its replicas (%d-%d) and may change them back",
			h.Name, minReplicas, h.Spec.MaxReplicas)
	}
	return ""
}
