package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/kube"
)

// Status is kubernetes.status: a deployment's replicas, image, revision,
// conditions, restarts, recent warnings and rollout history, or one line per
// deployment of a namespace when no deployment is named.
type Status struct{ base }

// NewStatus returns kubernetes.status.
func NewStatus(o Options) (*Status, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Status{base{o}}, nil
}

// Spec implements action.Action.
func (s *Status) Spec() action.Spec { return statusSpec() }

const (
	maxWarnings = 5
	maxHistory  = 10
)

// Run implements action.Action.
func (s *Status) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := s.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	ns, name := req.Params.String("namespace"), req.Params.String("deployment")
	switch {
	case name == "":
		return s.list(ctx, c, ns)
	case ns == "":
		// Reading is harmless, so a unique match is shown, but the reply
		// says where it was found.
		named, err := s.listDeployments(ctx, c, metav1.NamespaceAll, name)
		if err != nil {
			return action.Result{}, fmt.Errorf("status %s: %w", name, err)
		}
		switch found := named.items; len(found) {
		case 0:
			// The hint needs every name there is.
			all, err := s.listDeployments(ctx, c, metav1.NamespaceAll, "")
			if err != nil {
				return action.Result{}, fmt.Errorf("status %s: %w", name, err)
			}
			names := make([]string, 0, len(all.items))
			for _, d := range all.items {
				names = append(names, d.Name)
			}
			return action.Result{}, &notFoundError{notFoundText(name, "in any namespace Parley reads", names)}
		case 1:
			d := &found[0]
			res, err := s.one(ctx, c, d)
			if err != nil {
				return action.Result{}, fmt.Errorf("status %s/%s: %w", d.Namespace, name, err)
			}
			res.Text += fmt.Sprintf("\n_No namespace given; %s exists only in %s._", name, d.Namespace)
			return res, nil
		default:
			return action.Result{}, fmt.Errorf("status %s: %w: %s exists in namespaces %s; say which one",
				name, action.ErrInvalid, name, strings.Join(namespacesOf(found, name), ", "))
		}
	default:
		d, err := getDeployment(ctx, c, ns, name)
		var nf *notFoundError
		if errors.As(err, &nf) {
			return action.Result{}, s.notFoundElsewhere(ctx, c, ns, name, nf)
		}
		if err != nil {
			return action.Result{}, fmt.Errorf("status %s/%s: %w", ns, name, err)
		}
		res, err := s.one(ctx, c, d)
		if err != nil {
			return action.Result{}, fmt.Errorf("status %s/%s: %w", ns, name, err)
		}
		return res, nil
	}
}

// notFoundElsewhere adds to a not-found answer the other namespaces where
// a deployment of that name does exist ("checkout exists in prod,
// staging"). Failing to look is not an error: the answer stays nf.
func (s *Status) notFoundElsewhere(ctx context.Context, c kube.Interface, ns, name string, nf *notFoundError) error {
	all, err := s.listDeployments(ctx, c, metav1.NamespaceAll, name)
	if err != nil {
		return nf
	}
	var other []string
	for _, n := range namespacesOf(all.items, name) {
		if n != ns {
			other = append(other, n)
		}
	}
	if len(other) == 0 {
		return nf
	}
	return &notFoundError{fmt.Sprintf("no deployment %q in %s; it exists in %s", name, ns, strings.Join(other, ", "))}
}

// namespacesOf lists the namespaces that have a deployment called name.
func namespacesOf(items []appsv1.Deployment, name string) []string {
	var out []string
	for _, d := range items {
		if d.Name == name {
			out = append(out, d.Namespace)
		}
	}
	return out
}

// list answers "status" without a deployment: one line per deployment,
// each with its own state; the reply is styled by the worst of them.
func (s *Status) list(ctx context.Context, c kube.Interface, ns string) (action.Result, error) {
	got, err := s.listDeployments(ctx, c, ns, "")
	if err != nil {
		where := ns
		if where == "" {
			where = "all namespaces"
		}
		return action.Result{}, fmt.Errorf("status of %s: %w", where, err)
	}
	items := got.items
	var b strings.Builder
	switch {
	case len(items) == 0 && ns != "":
		return action.Result{}, &notFoundError{fmt.Sprintf("namespace %s has no deployments (or does not exist)", ns)}
	case len(items) == 0:
		return action.Result{}, fmt.Errorf("status: %w: no deployments found", action.ErrNotFound)
	case ns != "":
		fmt.Fprintf(&b, "Deployments in %s:", ns)
	default:
		b.WriteString("Deployments:")
	}
	kind, unhealthy := chat.KindSuccess, 0
	for i := range items {
		d := &items[i]
		h := assess(d, nil)
		kind = worstKind(kind, h.kind)
		if h.kind == chat.KindAttention || h.kind == chat.KindProgress {
			unhealthy++
		}
		b.WriteString("\n• ")
		if ns == "" {
			b.WriteString(d.Namespace + "/")
		}
		b.WriteString(d.Name + ": " + summary(d, h))
	}
	if unhealthy > 0 {
		head, rest, _ := strings.Cut(b.String(), "\n")
		b.Reset()
		fmt.Fprintf(&b, "%s %d of %d not healthy.\n%s", head, unhealthy, len(items), rest)
	}
	if n := got.note(); n != "" {
		b.WriteString("\n" + n)
	}
	return action.Result{Text: b.String(), Kind: kind}, nil
}

// summaryLine is the first line of a status reply:
// "checkout (prod): 3/3 ready, image shop/checkout:1.4.2, revision 4", with
// what is wrong after the ready count ("0/4 ready, rollout stuck
// (ProgressDeadlineExceeded), ...").
func summaryLine(d *appsv1.Deployment, h health) string {
	return fmt.Sprintf("%s (%s): %s", d.Name, d.Namespace, summary(d, h))
}

// summary is "3/3 ready, image shop/checkout:1.4.2, revision 4".
func summary(d *appsv1.Deployment, h health) string {
	parts := append([]string{fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, replicasOf(d))}, h.issues...)
	parts = append(parts, fmt.Sprintf("%s %s", strings.ToLower(imageLabel(d)), images(&d.Spec.Template)),
		fmt.Sprintf("revision %d", revision(d)))
	return strings.Join(parts, ", ")
}

// worstKind is the reply style of two states together.
func worstKind(a, b chat.ReplyKind) chat.ReplyKind {
	if kindRank(b) > kindRank(a) {
		return b
	}
	return a
}

func kindRank(k chat.ReplyKind) int {
	switch k {
	case chat.KindInfo:
		return 1
	case chat.KindProgress:
		return 2
	case chat.KindAttention:
		return 3
	}
	return 0 // chat.KindSuccess, and what ranks with it
}

func imageLabel(d *appsv1.Deployment) string {
	if len(d.Spec.Template.Spec.Containers) > 1 {
		return "Images"
	}
	return "Image"
}

// one is the status of one deployment, as read.
func (s *Status) one(ctx context.Context, c kube.Interface, d *appsv1.Deployment) (action.Result, error) {
	rss, pods, err := workload(ctx, c, d)
	if err != nil {
		return action.Result{}, err
	}
	warnings, err := warningEvents(ctx, c, d, rss, pods)
	if err != nil {
		return action.Result{}, err
	}
	now := s.o.Now()
	h := assess(d, pods)

	var b strings.Builder
	b.WriteString(summaryLine(d, h))
	for _, l := range h.details {
		b.WriteString("\n" + l)
	}
	if d.Status.ObservedGeneration < d.Generation {
		b.WriteString("\n_The controller has not yet observed the latest change; counts may lag._")
	}
	if len(warnings) > 0 {
		b.WriteString("\nRecent warnings:")
		for _, e := range warnings {
			fmt.Fprintf(&b, "\n• %s ago %s/%s %s: %s", age(now, eventTime(&e)), e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message))
			if e.Count > 1 {
				fmt.Fprintf(&b, " (x%d)", e.Count)
			}
		}
	}

	st := d.Status
	fields := []chat.Field{
		{Label: "Desired", Value: strconv.Itoa(int(replicasOf(d)))},
		{Label: "Ready", Value: strconv.Itoa(int(st.ReadyReplicas))},
		{Label: "Updated", Value: strconv.Itoa(int(st.UpdatedReplicas))},
		{Label: "Available", Value: strconv.Itoa(int(st.AvailableReplicas))},
		{Label: imageLabel(d), Value: images(&d.Spec.Template)},
		{Label: "Revision", Value: strconv.FormatInt(revision(d), 10)},
		{Label: "Conditions", Value: conditions(d)},
		{Label: "Pod restarts", Value: restarts(pods)},
	}
	res := action.Result{Text: b.String(), Fields: fields, Kind: h.kind}
	if len(rss) > 0 {
		t := &chat.Table{Header: []string{"Revision", "Image", "Change cause", "Age"}}
		for i, rs := range rss {
			if i == maxHistory {
				break
			}
			rev := strconv.FormatInt(revision(&rs), 10)
			if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
				rev += " (current)"
			}
			cause := rs.Annotations[ChangeCauseAnnotation]
			if cause == "" {
				cause = "—"
			}
			t.Rows = append(t.Rows, []string{rev, images(&rs.Spec.Template), cause, age(now, rs.CreationTimestamp.Time)})
		}
		res.Table = t
	}
	return res, nil
}

// warningEvents returns the newest Warning events about the deployment,
// its ReplicaSets and its pods.
func warningEvents(ctx context.Context, c kube.Interface, d *appsv1.Deployment, rss []appsv1.ReplicaSet, pods []corev1.Pod) ([]corev1.Event, error) {
	list, err := c.CoreV1().Events(d.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=" + corev1.EventTypeWarning})
	if err != nil {
		return nil, apiError(err)
	}
	about := map[string]bool{"Deployment/" + d.Name: true}
	uids := map[types.UID]bool{d.UID: true}
	for _, rs := range rss {
		about["ReplicaSet/"+rs.Name] = true
		uids[rs.UID] = true
	}
	for _, p := range pods {
		about["Pod/"+p.Name] = true
		uids[p.UID] = true
	}
	var out []corev1.Event
	for _, e := range list.Items {
		ref := e.InvolvedObject
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		if (ref.UID != "" && uids[ref.UID]) || (ref.UID == "" && about[ref.Kind+"/"+ref.Name]) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(&out[i]).After(eventTime(&out[j])) })
	if len(out) > maxWarnings {
		out = out[:maxWarnings]
	}
	return out, nil
}

// eventTime is when an event last happened, across the old and new event
// fields.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func conditions(d *appsv1.Deployment) string {
	var parts []string
	for _, t := range []appsv1.DeploymentConditionType{appsv1.DeploymentAvailable, appsv1.DeploymentProgressing, appsv1.DeploymentReplicaFailure} {
		for _, c := range d.Status.Conditions {
			if c.Type != t {
				continue
			}
			p := fmt.Sprintf("%s=%s", c.Type, c.Status)
			if c.Reason != "" {
				p += " (" + c.Reason + ")"
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "none reported"
	}
	return strings.Join(parts, ", ")
}

// restarts sums container restarts and names the pod that restarted most.
func restarts(pods []corev1.Pod) string {
	total, top, topName, topReason := int32(0), int32(0), "", ""
	for _, p := range pods {
		var n int32
		reason := ""
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
			if w := cs.State.Waiting; w != nil && w.Reason != "" {
				reason = w.Reason
			}
		}
		total += n
		if n > top || (n == top && n > 0 && p.Name < topName) {
			top, topName, topReason = n, p.Name, reason
		}
	}
	if total == 0 {
		return fmt.Sprintf("0 across %d pods", len(pods))
	}
	out := fmt.Sprintf("%d across %d pods; most: %s (%d)", total, len(pods), topName, top)
	if topReason != "" {
		out += ", now " + topReason
	}
	return out
}
