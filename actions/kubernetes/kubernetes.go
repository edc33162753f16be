// Package kubernetes implements Parley's Kubernetes actions —
// kubernetes.status, kubernetes.scale, kubernetes.rollback and
// kubernetes.restart, and the on-call reads kubernetes.pods,
// kubernetes.logs (pods/log, no log store needed) and kubernetes.changes —
// and the inventory of namespaces and deployments the routers resolve
// names against. Everything is written against client-go's
// kubernetes.Interface, so the same code runs against a real API server and
// against the in-memory Sandbox (a fake clientset with a small, deterministic
// deployment controller) used by tests and the demo.
//
// The mutating actions implement action.Planner. Plans read the target and
// fingerprint the fields they depend on (uid, generation, replicas, template
// hash); runs plan again and write with the resourceVersion they read, so a
// concurrent change is reported as action.ErrConflict instead of being
// overwritten. A conflict caused only by a status update (the controllers
// write status all the time) leaves the fingerprint as it was, and Run
// writes again from a fresh read. Rollback and restart follow kubectl
// rollout undo and kubectl rollout restart exactly, so a rollback done from
// chat and one done from a terminal leave the cluster in the same state.
//
// Before anyone is asked to confirm, a plan submits its write as a
// server-side dry run (dryRun=All): the API server runs authentication,
// RBAC, admission and validation on exactly the change that Run would send
// and stores nothing. The plan shows the server's answer, and a write the
// server would refuse (RBAC forbids it, validation or a webhook rejects it)
// fails at plan time with the server's reason, so nobody confirms what
// cannot run. The dry run carries no resourceVersion precondition: it
// checks the change against the current object, and concurrency is the
// fingerprint's and Run's business.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Annotations and labels with a meaning to the deployment controller and
// kubectl.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	ChangeCauseAnnotation     = "kubernetes.io/change-cause"
	RestartedAtAnnotation     = "kubectl.kubernetes.io/restartedAt"
	podTemplateHashLabel      = appsv1.DefaultDeploymentUniqueLabelKey
)

// DefaultTimeout bounds each Plan, Run and Inventory call when
// Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// dryRunAll makes a write a server-side dry run.
var dryRunAll = []string{metav1.DryRunAll}

// writeAttempts bounds how often Run writes when the API server reports a
// conflict that moved nothing the plan depends on.
const writeAttempts = 3

// retryWrite makes p's write. When the API server refuses it with a
// conflict, it plans again: if the new plan has the same fingerprint, only
// the status moved (the controllers update it all the time, and each update
// changes the resourceVersion the write carried), and it writes again from
// the new plan, writeAttempts times in all. A conflict on a target that
// really moved is returned as it is.
func retryWrite[P any](ctx context.Context, p P, state func(P) string, plan func() (P, error), write func(P) error) (P, error) {
	for attempt := 1; ; attempt++ {
		err := write(p)
		if err == nil || !errors.Is(err, action.ErrConflict) || attempt >= writeAttempts || ctx.Err() != nil {
			return p, err
		}
		fresh, perr := plan()
		if perr != nil || state(fresh) != state(p) {
			return p, err
		}
		p = fresh
	}
}

// ClientFor returns the client to use on behalf of a subject
// ("platform:user"). The empty subject means Parley itself (the inventory).
// It is the seam for per-user impersonation: a real-cluster implementation
// returns a client whose rest.Config impersonates the mapped Kubernetes user;
// the sandbox returns the same client for everyone (StaticClient).
type ClientFor func(subject string) (kube.Interface, error)

// StaticClient returns a ClientFor that uses c for every subject.
func StaticClient(c kube.Interface) ClientFor {
	return func(string) (kube.Interface, error) { return c, nil }
}

// Options configure the Kubernetes actions and the inventory.
type Options struct {
	// Clients selects the client per subject. Required.
	Clients ClientFor
	// Timeout bounds each Plan, Run and Inventory call, all of its API
	// requests together. Zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock (restartedAt stamps, ages). Nil means time.Now.
	Now func() time.Time
	// Namespaces, when set, limits the inventory and the namespace-less
	// status listings to these namespaces, listed one by one, so Parley
	// needs no cluster-wide list right and does not offer kube-system.
	Namespaces []string
}

func (o Options) check() (Options, error) {
	if o.Clients == nil {
		return o, fmt.Errorf("kubernetes actions: %w: no client configured", action.ErrNotConfigured)
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("kubernetes actions: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Actions returns kubernetes.status, kubernetes.scale, kubernetes.rollback
// and kubernetes.restart, ready for action.NewRegistry.
func Actions(o Options) ([]action.Action, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return []action.Action{&Status{base{o}}, &Scale{base{o}}, &Rollback{base{o}}, &Restart{base{o}}}, nil
}

// base is what every action shares: options, the client for the request
// and the call deadline.
type base struct{ o Options }

func (b base) begin(ctx context.Context, req action.Request) (kube.Interface, context.Context, context.CancelFunc, error) {
	c, err := b.o.Clients(req.Subject)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("kubernetes client for %s: %w", req.Subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	return c, ctx, cancel, nil
}

// target reads the deployment and namespace parameters, requiring both.
func target(req action.Request) (ns, name string, err error) {
	ns, name = req.Params.String("namespace"), req.Params.String("deployment")
	if name == "" {
		return "", "", fmt.Errorf("%s: %w: which deployment?", req.Action, action.ErrInvalid)
	}
	if ns == "" {
		// Mutating actions never act on a guessed namespace.
		return "", "", fmt.Errorf("%s %s: %w: which namespace?", req.Action, name, action.ErrInvalid)
	}
	return ns, name, nil
}

// apiError maps a client error to an action error kind, keeping the API
// server's message (for a forbidden request, the reason RBAC gave).
func apiError(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: Kubernetes API did not answer in time", action.ErrUnavailable)
	case apierrors.IsNotFound(err):
		kind = action.ErrNotFound
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		kind = action.ErrForbidden
	case apierrors.IsConflict(err):
		kind = action.ErrConflict
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		kind = action.ErrInvalid
	default: // timeouts, throttling, 5xx and transport failures
		kind = action.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// getDeployment reads a deployment, turning a 404 into a helpful message.
func getDeployment(ctx context.Context, c kube.Interface, ns, name string) (*appsv1.Deployment, error) {
	d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, deploymentNotFound(ctx, c, ns, name)
	}
	if err != nil {
		return nil, apiError(err)
	}
	return d, nil
}

// rolloutState reads what a rollout change (rollback, restart) works on: the
// deployment, refused while it is paused (the controller would not act),
// and its ReplicaSets.
func rolloutState(ctx context.Context, c kube.Interface, ns, name string) (*appsv1.Deployment, []appsv1.ReplicaSet, error) {
	d, err := getDeployment(ctx, c, ns, name)
	if err != nil {
		return nil, nil, err
	}
	if d.Spec.Paused {
		return nil, nil, fmt.Errorf("%w: %s (%s) is paused, so the controller would not act; resume it first (kubectl rollout resume deployment/%s -n %s) and try again",
			action.ErrInvalid, name, ns, name, ns)
	}
	rss, err := ownedReplicaSets(ctx, c, d)
	if err != nil {
		return nil, nil, err
	}
	return d, rss, nil
}

// selectorOf is the deployment's label selector in the form a list
// request carries.
func selectorOf(d *appsv1.Deployment) (string, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return "", fmt.Errorf("%w: deployment %s has an invalid selector: %v", action.ErrInvalid, d.Name, err)
	}
	return sel.String(), nil
}

// workload reads what a deployment controls: its ReplicaSets (as
// ownedReplicaSets) and their pods (as ownedPods), one list request each,
// filtered by the API server with the deployment's selector.
func workload(ctx context.Context, c kube.Interface, d *appsv1.Deployment) ([]appsv1.ReplicaSet, []corev1.Pod, error) {
	sel, err := selectorOf(d)
	if err != nil {
		return nil, nil, err
	}
	rss, err := listReplicaSets(ctx, c, d, sel)
	if err != nil {
		return nil, nil, err
	}
	pods, err := listPods(ctx, c, d, sel, rss)
	if err != nil {
		return nil, nil, err
	}
	return rss, pods, nil
}

// ownedReplicaSets lists the ReplicaSets the deployment controls (selector
// match and controller ownerReference), newest revision first, as
// kubectl's deploymentutil.GetAllReplicaSets does.
func ownedReplicaSets(ctx context.Context, c kube.Interface, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	sel, err := selectorOf(d)
	if err != nil {
		return nil, err
	}
	return listReplicaSets(ctx, c, d, sel)
}

func listReplicaSets(ctx context.Context, c kube.Interface, d *appsv1.Deployment, sel string) ([]appsv1.ReplicaSet, error) {
	list, err := c.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, apiError(err)
	}
	out := list.Items[:0] // filtered in place
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], d) {
			out = append(out, list.Items[i])
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	sort.SliceStable(out, func(i, j int) bool { return revision(&out[i]) > revision(&out[j]) })
	return out, nil
}

// ownedPods lists the pods of the deployment's ReplicaSets.
func ownedPods(ctx context.Context, c kube.Interface, d *appsv1.Deployment, rss []appsv1.ReplicaSet) ([]corev1.Pod, error) {
	sel, err := selectorOf(d)
	if err != nil {
		return nil, err
	}
	return listPods(ctx, c, d, sel, rss)
}

func listPods(ctx context.Context, c kube.Interface, d *appsv1.Deployment, sel string, rss []appsv1.ReplicaSet) ([]corev1.Pod, error) {
	list, err := c.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, apiError(err)
	}
	out := list.Items[:0] // filtered in place
	for i := range list.Items {
		if ref := metav1.GetControllerOfNoCopy(&list.Items[i]); ref != nil && controlledBy(rss, ref.UID) {
			out = append(out, list.Items[i])
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// controlledBy reports whether uid is one of the ReplicaSets'.
func controlledBy(rss []appsv1.ReplicaSet, uid types.UID) bool {
	for i := range rss {
		if rss[i].UID == uid {
			return true
		}
	}
	return false
}

// revision is the deployment.kubernetes.io/revision annotation, 0 if absent
// or malformed.
func revision(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// images lists the container images of a pod template.
func images(t *corev1.PodTemplateSpec) string {
	var out []string
	for _, c := range t.Spec.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ", ")
}

// equalIgnoreHash reports whether two pod templates are equal apart from
// the pod-template-hash label (deploymentutil.EqualIgnoreHash: semantic
// equality). It compares the labels itself and the rest on shallow copies
// without them, so it copies nothing deep, and it settles the common cases
// before the reflective semantic comparison, which allocates at every
// field: templates whose containers differ in name or image (another
// revision) are not equal, and templates equal field for field are.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	if !labelsEqualIgnoreHash(a.Labels, b.Labels) ||
		!sameNamesAndImages(a.Spec.Containers, b.Spec.Containers) ||
		!sameNamesAndImages(a.Spec.InitContainers, b.Spec.InitContainers) {
		return false
	}
	ac, bc := *a, *b
	ac.Labels, bc.Labels = nil, nil
	if reflect.DeepEqual(&ac, &bc) { // stricter than semantic equality
		return true
	}
	return apiequality.Semantic.DeepEqual(&ac, &bc)
}

// sameNamesAndImages reports whether two container lists have the same
// names and images in the same order, which their semantic equality
// requires.
func sameNamesAndImages(a, b []corev1.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Image != b[i].Image {
			return false
		}
	}
	return true
}

// labelsEqualIgnoreHash reports whether two label sets are equal apart
// from the pod-template-hash label.
func labelsEqualIgnoreHash(a, b map[string]string) bool {
	n := 0
	for k, v := range a {
		if k == podTemplateHashLabel {
			continue
		}
		if w, ok := b[k]; !ok || w != v {
			return false
		}
		n++
	}
	if _, ok := b[podTemplateHashLabel]; ok {
		n++
	}
	return n == len(b)
}

// templateHash is a short, stable hash of a pod template without its
// pod-template-hash label, used in plan fingerprints and by the sandbox for
// ReplicaSet names.
func templateHash(t *corev1.PodTemplateSpec, collisions int32) string {
	if _, ok := t.Labels[podTemplateHashLabel]; ok { // a shallow copy without it
		c := *t
		c.Labels = maps.Clone(t.Labels)
		delete(c.Labels, podTemplateHashLabel)
		t = &c
	}
	b, err := json.Marshal(t)
	if err != nil { // a PodTemplateSpec always marshals
		panic(err)
	}
	h := fnv.New32a()
	h.Write(b)
	if collisions > 0 {
		fmt.Fprintf(h, "/%d", collisions)
	}
	return utilrand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// fingerprint is the state a plan depends on. It leaves out the
// resourceVersion on purpose: status updates by the controller change it
// without moving the target.
func fingerprint(d *appsv1.Deployment, replicas int32, extra ...string) string {
	parts := []string{
		"uid=" + string(d.UID),
		"generation=" + strconv.FormatInt(d.Generation, 10),
		"replicas=" + strconv.Itoa(int(replicas)),
		"template=" + templateHash(&d.Spec.Template, 0),
	}
	return strings.Join(append(parts, extra...), ",")
}

// age formats how long ago t was, in kubectl's coarse style: 45s, 12m, 3h, 4d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}
