package incident

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// revisionAnnotation is the deployment controller's revision of a
// ReplicaSet.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// KubeRollouts lists a deployment's revisions from its ReplicaSets, the
// way `kubectl rollout history` does. Client is Parley's own client (the
// kubernetes actions' ClientFor("")).
type KubeRollouts struct {
	Client kube.Interface
}

// Rollouts implements RolloutLister: newest revision first.
func (k KubeRollouts) Rollouts(ctx context.Context, namespace, deployment string) ([]Rollout, error) {
	if k.Client == nil {
		return nil, fmt.Errorf("rollouts: %w: no Kubernetes client", action.ErrNotConfigured)
	}
	d, err := k.Client.AppsV1().Deployments(namespace).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("rollouts of %s/%s: %w", namespace, deployment, kubeErr(err))
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("rollouts of %s/%s: %w: invalid selector", namespace, deployment, action.ErrInvalid)
	}
	list, err := k.Client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("rollouts of %s/%s: %w", namespace, deployment, kubeErr(err))
	}
	var out []Rollout
	for _, rs := range list.Items {
		if !metav1.IsControlledBy(&rs, d) {
			continue
		}
		rev, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil || rev <= 0 {
			continue
		}
		var imgs []string
		for _, c := range rs.Spec.Template.Spec.Containers {
			imgs = append(imgs, c.Image)
		}
		out = append(out, Rollout{Revision: rev, Created: rs.CreationTimestamp.Time, Image: strings.Join(imgs, ", ")})
	}
	slices.SortFunc(out, func(a, b Rollout) int { return int(b.Revision - a.Revision) })
	return out, nil
}

func kubeErr(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %v", action.ErrNotFound, err)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %v", action.ErrForbidden, err)
	case errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %v", action.ErrUnavailable, err)
}
