package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// The REST client's groups and resources: each is a resource (group
// version, name, namespace) with the verbs of objects[T, L] the
// interfaces in kube.go ask for.

var (
	coreGV          = schema.GroupVersion{Version: "v1"}
	appsGV          = schema.GroupVersion{Group: "apps", Version: "v1"}
	batchGV         = schema.GroupVersion{Group: "batch", Version: "v1"}
	autoscalingV2GV = schema.GroupVersion{Group: "autoscaling", Version: "v2"}
	authorizationGV = schema.GroupVersion{Group: "authorization.k8s.io", Version: "v1"}
	coordinationGV  = schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}
)

type clientset struct{ rc *restClient }

func (c clientset) CoreV1() CoreV1                   { return coreClient(c) }
func (c clientset) AppsV1() AppsV1                   { return appsClient(c) }
func (c clientset) BatchV1() BatchV1                 { return batchClient(c) }
func (c clientset) AutoscalingV2() AutoscalingV2     { return autoscalingClient(c) }
func (c clientset) AuthorizationV1() AuthorizationV1 { return authorizationClient(c) }
func (c clientset) CoordinationV1() CoordinationV1   { return coordinationClient(c) }

func (c clientset) ServerVersion(ctx context.Context) (*version.Info, error) {
	return c.rc.serverVersion(ctx)
}

func (c clientset) namespaced(gv schema.GroupVersion, res, ns string) resource {
	return resource{rc: c.rc, gv: gv, resource: res, namespaced: true, namespace: ns}
}

type coreClient clientset

func (c coreClient) Pods(ns string) Pods {
	return podClient{objects[corev1.Pod, corev1.PodList]{clientset(c).namespaced(coreGV, "pods", ns)}}
}

func (c coreClient) Events(ns string) Events {
	return objects[corev1.Event, corev1.EventList]{clientset(c).namespaced(coreGV, "events", ns)}
}

func (c coreClient) ConfigMaps(ns string) ConfigMaps {
	return objects[corev1.ConfigMap, corev1.ConfigMapList]{clientset(c).namespaced(coreGV, "configmaps", ns)}
}

type podClient struct {
	objects[corev1.Pod, corev1.PodList]
}

// Logs is GET …/pods/NAME/log with opts as query parameters. A non-2xx
// answer is its error, as for every other call; the 2xx body is returned
// unread for the caller to close.
func (p podClient) Logs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	if err := p.named(name); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &corev1.PodLogOptions{}
	}
	q, err := params(opts)
	if err != nil {
		return nil, err
	}
	return p.rc.stream(ctx, call{method: http.MethodGet, gr: p.gr(), name: name, path: p.path(name, "log"), query: q})
}

type appsClient clientset

func (c appsClient) Deployments(ns string) Deployments {
	return deploymentClient{objects[appsv1.Deployment, appsv1.DeploymentList]{clientset(c).namespaced(appsGV, "deployments", ns)}}
}

func (c appsClient) ReplicaSets(ns string) ReplicaSets {
	return objects[appsv1.ReplicaSet, appsv1.ReplicaSetList]{clientset(c).namespaced(appsGV, "replicasets", ns)}
}

type deploymentClient struct {
	objects[appsv1.Deployment, appsv1.DeploymentList]
}

func (d deploymentClient) GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error) {
	return getSub[autoscalingv1.Scale](ctx, d.resource, name, "scale", opts)
}

func (d deploymentClient) UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	if err := d.named(name); err != nil {
		return nil, err
	}
	if scale == nil {
		return nil, fmt.Errorf("update deployments %q scale: no Scale given", name)
	}
	return write[autoscalingv1.Scale](ctx, d.resource, http.MethodPut, name, "scale", scale, &opts)
}

type batchClient clientset

func (c batchClient) Jobs(ns string) Jobs {
	return objects[batchv1.Job, batchv1.JobList]{clientset(c).namespaced(batchGV, "jobs", ns)}
}

type autoscalingClient clientset

func (c autoscalingClient) HorizontalPodAutoscalers(ns string) HorizontalPodAutoscalers {
	return objects[autoscalingv2.HorizontalPodAutoscaler, autoscalingv2.HorizontalPodAutoscalerList]{
		clientset(c).namespaced(autoscalingV2GV, "horizontalpodautoscalers", ns)}
}

type authorizationClient clientset

func (c authorizationClient) SelfSubjectAccessReviews() SelfSubjectAccessReviews {
	// Cluster-scoped; a review has no list, so L is the object itself.
	return objects[authorizationv1.SelfSubjectAccessReview, authorizationv1.SelfSubjectAccessReview]{
		resource{rc: c.rc, gv: authorizationGV, resource: "selfsubjectaccessreviews"}}
}

type coordinationClient clientset

func (c coordinationClient) Leases(ns string) Leases {
	return objects[coordinationv1.Lease, coordinationv1.LeaseList]{clientset(c).namespaced(coordinationGV, "leases", ns)}
}
