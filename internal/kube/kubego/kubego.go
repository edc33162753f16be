// Package kubego adapts a client-go clientset to kube.Interface. Tests use
// it to drive Parley's code through client-go (a fake clientset, or the
// admin client of a test cluster); the product does not link it.
package kubego

import (
	"context"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/parley-chatops/parley/internal/kube"
)

// Wrap returns c as a kube.Interface.
func Wrap(c kubernetes.Interface) kube.Interface { return client{c} }

type client struct{ c kubernetes.Interface }

func (c client) CoreV1() kube.CoreV1                   { return core{c.c.CoreV1()} }
func (c client) AppsV1() kube.AppsV1                   { return apps{c.c.AppsV1()} }
func (c client) BatchV1() kube.BatchV1                 { return c }
func (c client) AutoscalingV2() kube.AutoscalingV2     { return c }
func (c client) AuthorizationV1() kube.AuthorizationV1 { return c }
func (c client) CoordinationV1() kube.CoordinationV1   { return c }

func (c client) ServerVersion(context.Context) (*version.Info, error) {
	return c.c.Discovery().ServerVersion()
}

type core struct{ c corev1client.CoreV1Interface }

func (c core) Pods(ns string) kube.Pods             { return pods{c.c.Pods(ns)} }
func (c core) Events(ns string) kube.Events         { return c.c.Events(ns) }
func (c core) ConfigMaps(ns string) kube.ConfigMaps { return c.c.ConfigMaps(ns) }

type pods struct{ corev1client.PodInterface }

func (p pods) Logs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return p.GetLogs(name, opts).Stream(ctx)
}

type apps struct{ c appsv1client.AppsV1Interface }

func (a apps) Deployments(ns string) kube.Deployments { return deployments{a.c.Deployments(ns)} }
func (a apps) ReplicaSets(ns string) kube.ReplicaSets { return a.c.ReplicaSets(ns) }

type deployments struct {
	appsv1client.DeploymentInterface
}

func (d deployments) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) (*appsv1.Deployment, error) {
	return d.DeploymentInterface.Patch(ctx, name, pt, data, opts)
}

func (d deployments) UpdateScale(ctx context.Context, name string, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	return d.DeploymentInterface.UpdateScale(ctx, name, sc, opts)
}

// client is also each group with one resource.

func (c client) Jobs(ns string) kube.Jobs { return c.c.BatchV1().Jobs(ns) }

func (c client) HorizontalPodAutoscalers(ns string) kube.HorizontalPodAutoscalers {
	return c.c.AutoscalingV2().HorizontalPodAutoscalers(ns)
}

func (c client) SelfSubjectAccessReviews() kube.SelfSubjectAccessReviews {
	return c.c.AuthorizationV1().SelfSubjectAccessReviews()
}

func (c client) Leases(ns string) kube.Leases { return c.c.CoordinationV1().Leases(ns) }
