package useraction

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/redact"
)

// maxLogBytes caps the log tail read from the API server.
const maxLogBytes = 64 << 10

// jobLogs returns the last lines of the log of a Job's pod, redacted: the
// newest failed pod when there is one (what went wrong), else the newest
// pod. Pod logs are served by the node's kubelet through the API server.
func jobLogs(ctx context.Context, c kubernetes.Interface, namespace, job string, lines int64) (string, error) {
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return "", kubeErr(err)
	}
	if len(pods.Items) == 0 {
		return "", errors.New("the Job has no pod")
	}
	items := pods.Items
	slices.SortStableFunc(items, func(a, b corev1.Pod) int {
		if fa, fb := a.Status.Phase == corev1.PodFailed, b.Status.Phase == corev1.PodFailed; fa != fb {
			if fa {
				return 1
			}
			return -1
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	pod := items[len(items)-1]
	container := pod.Annotations["kubectl.kubernetes.io/default-container"]
	if container == "" && len(pod.Spec.Containers) > 0 {
		container = pod.Spec.Containers[0].Name
	}
	limit := int64(maxLogBytes)
	raw, err := c.CoreV1().Pods(namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: container, TailLines: &lines, LimitBytes: &limit,
	}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", pod.Name, kubeErr(err))
	}
	text := strings.TrimRight(string(raw), "\n")
	if l := strings.Split(text, "\n"); int64(len(l)) > lines {
		text = strings.Join(l[int64(len(l))-lines:], "\n")
	}
	return redact.Redact(text), nil
}
