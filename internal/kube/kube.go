// Package kube is the part of the Kubernetes API that Parley calls, as Go
// interfaces shaped like client-go's typed clients (CoreV1().Pods(ns).List
// and so on) but holding only the groups, resources and verbs Parley uses.
//
// Parley does not link client-go's clientset: its typed clients import a
// scheme that registers every API group Kubernetes has, which costs about
// 10 MiB of resident memory and start-up time in every process, sandbox
// and CLI included. Two implementations meet these interfaces in the
// product: the REST client in this package (NewForConfig), which speaks
// JSON to a real API server, and the in-memory sandbox cluster in
// actions/kubernetes. Tests may adapt a client-go clientset
// (internal/kube/kubego).
//
// Errors are client-go's: a request the API server refuses returns an
// *apierrors.StatusError (k8s.io/apimachinery/pkg/api/errors), so
// apierrors.IsNotFound, IsConflict, IsForbidden and the rest work on them.
package kube

import (
	"context"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
)

// InProcess is implemented by a client that answers from memory, without
// a round trip (the sandbox). Callers that overlap round trips by making
// calls from several goroutines (the logs of several pods) make them one
// after the other on it: there, each goroutine only costs.
type InProcess interface {
	InProcess() bool
}

// IsInProcess reports whether c answers from memory (see InProcess).
func IsInProcess(c Interface) bool {
	p, ok := c.(InProcess)
	return ok && p.InProcess()
}

// TextBody is a log body a client holds in memory as text (the
// sandbox's): reading it all is taking Text, without a copy.
type TextBody interface {
	io.ReadCloser
	Text() string
}

// Interface is a client of one cluster, as one identity.
type Interface interface {
	CoreV1() CoreV1
	AppsV1() AppsV1
	BatchV1() BatchV1
	AutoscalingV2() AutoscalingV2
	AuthorizationV1() AuthorizationV1
	CoordinationV1() CoordinationV1
	// ServerVersion is the API server's build (GET /version).
	ServerVersion(ctx context.Context) (*version.Info, error)
}

// CoreV1 is the core group ("", v1).
type CoreV1 interface {
	Pods(namespace string) Pods
	Events(namespace string) Events
	ConfigMaps(namespace string) ConfigMaps
}

// Pods are core/v1 pods.
type Pods interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	// Logs streams a container's log (GET …/pods/NAME/log). The caller
	// closes the stream.
	Logs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// Events are core/v1 events.
type Events interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.EventList, error)
}

// ConfigMaps are core/v1 config maps.
type ConfigMaps interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error)
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ConfigMapList, error)
	Create(ctx context.Context, cm *corev1.ConfigMap, opts metav1.CreateOptions) (*corev1.ConfigMap, error)
	Update(ctx context.Context, cm *corev1.ConfigMap, opts metav1.UpdateOptions) (*corev1.ConfigMap, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// AppsV1 is the apps/v1 group.
type AppsV1 interface {
	Deployments(namespace string) Deployments
	ReplicaSets(namespace string) ReplicaSets
}

// Deployments are apps/v1 deployments, with their scale subresource.
type Deployments interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*appsv1.Deployment, error)
	List(ctx context.Context, opts metav1.ListOptions) (*appsv1.DeploymentList, error)
	Update(ctx context.Context, d *appsv1.Deployment, opts metav1.UpdateOptions) (*appsv1.Deployment, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) (*appsv1.Deployment, error)
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

// ReplicaSets are apps/v1 replica sets.
type ReplicaSets interface {
	List(ctx context.Context, opts metav1.ListOptions) (*appsv1.ReplicaSetList, error)
}

// BatchV1 is the batch/v1 group.
type BatchV1 interface {
	Jobs(namespace string) Jobs
}

// Jobs are batch/v1 jobs.
type Jobs interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*batchv1.Job, error)
	List(ctx context.Context, opts metav1.ListOptions) (*batchv1.JobList, error)
	Create(ctx context.Context, job *batchv1.Job, opts metav1.CreateOptions) (*batchv1.Job, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// AutoscalingV2 is the autoscaling/v2 group.
type AutoscalingV2 interface {
	HorizontalPodAutoscalers(namespace string) HorizontalPodAutoscalers
}

// HorizontalPodAutoscalers are autoscaling/v2 horizontal pod autoscalers.
type HorizontalPodAutoscalers interface {
	List(ctx context.Context, opts metav1.ListOptions) (*autoscalingv2.HorizontalPodAutoscalerList, error)
}

// AuthorizationV1 is the authorization.k8s.io/v1 group.
type AuthorizationV1 interface {
	SelfSubjectAccessReviews() SelfSubjectAccessReviews
}

// SelfSubjectAccessReviews ask what the client's own identity may do.
type SelfSubjectAccessReviews interface {
	Create(ctx context.Context, review *authorizationv1.SelfSubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SelfSubjectAccessReview, error)
}

// CoordinationV1 is the coordination.k8s.io/v1 group.
type CoordinationV1 interface {
	Leases(namespace string) Leases
}

// Leases are coordination.k8s.io/v1 leases.
type Leases interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
}
