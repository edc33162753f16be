package kubernetes

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/redact"
)

// ChangesName is the name of the kubernetes.changes action.
const ChangesName = "kubernetes.changes"

// Bounds of kubernetes.changes.
const (
	DefaultChangesWindow = time.Hour
	MaxChangesWindow     = 30 * 24 * time.Hour
	maxChangeRows        = 30
	// rolloutSpan is how long after a rollout starts the deployment
	// controller's scaling of its ReplicaSets counts as part of it (the
	// default progress deadline).
	rolloutSpan = 10 * time.Minute
	// eventRetention is how long the API server keeps events by default
	// (kube-apiserver --event-ttl).
	eventRetention = time.Hour
)

// Changes is kubernetes.changes: what changed in a namespace's
// deployments in a window — rollouts (image, revision, change cause),
// rollbacks, rolling restarts, scales, new deployments — newest first. It
// reads Deployments and ReplicaSets (rollouts stay in their revision
// history) and the deployment controller's ScalingReplicaSet events
// (scales; events live about an hour by default).
type Changes struct{ base }

// NewChanges returns kubernetes.changes.
func NewChanges(o Options) (*Changes, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Changes{base{o}}, nil
}

// ChangesSpec is kubernetes.changes' public contract.
func ChangesSpec() action.Spec {
	return action.Spec{
		Name: ChangesName, Kind: action.Read,
		Description: "List what changed in a namespace's deployments in a window (default 1h): rollouts with image, revision and change cause, rollbacks, restarts and scales.",
		Params: []action.Param{
			namespaceParam(false),
			{Name: "window", Type: action.Duration, Default: action.FormatDuration(DefaultChangesWindow),
				Description: "how far back to look, e.g. 2h, 1d (default 1h, at most 30d)",
				Words:       []string{"last", "past", "since", "in the last", "over"}},
			deploymentParam(false),
		},
		Examples: []action.Example{
			{Text: "what changed in prod in the last 2h", Params: map[string]any{"namespace": "prod", "window": "2h"}},
			{Text: "recent changes in staging", Params: map[string]any{"namespace": "staging"}},
			{Text: "what was deployed to prod today?", Params: map[string]any{"namespace": "prod", "window": "1d"}},
			{Text: "what changed in checkout recently?", Params: map[string]any{"deployment": "checkout"}},
			{Text: "any rollouts or scaling in prod over the past 6 hours", Params: map[string]any{"namespace": "prod", "window": "6h"}},
			{Text: "who touched payments in staging in the last 30m", Params: map[string]any{"deployment": "payments", "namespace": "staging", "window": "30m"}},
			{Text: "show deploys in prod since yesterday", Params: map[string]any{"namespace": "prod", "window": "1d"}},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"changed": 3, "changes": 3, "change": 1.5, "deployed": 2.5, "deploys": 2.5, "deployments": 0.5,
			"rollouts": 2.5, "rolled out": 2.5, "released": 2, "releases": 2, "shipped": 2, "touched": 2,
			"what happened": 2, "recently": 1, "scaled": 1, "scaling": 2, "restarted": 1, "went out": 2,
			"(change|changes) (log|logs)": 5, "changelog": 4,
			"what (was|were|got|has|have) ... (rolled|deployed|released|shipped|pushed|changed)": 2, // a list of what happened, not "is it rolled out"
			"<window>": 0.3, // a window asks about a stretch of time, not the state now
		}},
	}
}

// Spec implements action.Action.
func (ch *Changes) Spec() action.Spec { return ChangesSpec() }

// change is one row of the answer.
type change struct {
	at         time.Time
	namespace  string
	deployment string
	what       string // "rollout to revision 5", "scale", ...
	details    string
}

// scalingRE reads the deployment controller's ScalingReplicaSet message.
var scalingRE = regexp.MustCompile(`^Scaled (up|down) replica set (\S+) from (\d+) to (\d+)$`)

// Run implements action.Action.
func (ch *Changes) Run(ctx context.Context, req action.Request) (action.Result, error) {
	c, ctx, cancel, err := ch.begin(ctx, req)
	if err != nil {
		return action.Result{}, err
	}
	defer cancel()
	window := DefaultChangesWindow
	if v := req.Params.String("window"); v != "" {
		if window, err = action.ParseDuration(v); err != nil {
			return action.Result{}, fmt.Errorf("changes: %w: window: %v", action.ErrInvalid, err)
		}
	}
	if window > MaxChangesWindow {
		return action.Result{}, fmt.Errorf("changes: %w: the window is at most %s", action.ErrInvalid, action.FormatDuration(MaxChangesWindow))
	}
	ns, name := req.Params.String("namespace"), req.Params.String("deployment")
	var note string
	if name != "" {
		var found *appsv1.Deployment
		if ns, note, found, err = ch.locate(ctx, c, ns, name); err != nil {
			return action.Result{}, fmt.Errorf("changes of %s: %w", name, err)
		}
		if found == nil {
			if _, err := getDeployment(ctx, c, ns, name); err != nil {
				return action.Result{}, fmt.Errorf("changes of %s/%s: %w", ns, name, err)
			}
		}
	}
	namespaces := []string{ns}
	if ns == "" && len(ch.o.Namespaces) > 0 {
		namespaces = ch.o.Namespaces
	}
	now := ch.o.Now()
	since := now.Add(-window)
	var changes []change
	checked := 0
	for _, n := range namespaces {
		got, nd, err := ch.namespaceChanges(ctx, c, n, name, since)
		if err != nil {
			return action.Result{}, fmt.Errorf("changes in %s: %w", orAll(n), err)
		}
		changes = append(changes, got...)
		checked += nd
	}
	slices.SortStableFunc(changes, func(a, b change) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return cmp.Compare(a.namespace+"/"+a.deployment, b.namespace+"/"+b.deployment)
	})

	where := orAll(ns)
	if name != "" {
		where = name + " (" + ns + ")"
	}
	span := action.FormatDuration(window)
	var b strings.Builder
	if len(changes) == 0 {
		fmt.Fprintf(&b, "Nothing changed in %s in the last %s (%s checked: rollouts from their ReplicaSets, scales from events).",
			where, span, plural(checked, "deployment"))
	} else {
		fmt.Fprintf(&b, "%s in %s in the last %s, newest first:", upperFirst(plural(len(changes), "change")), where, span)
	}
	var t *chat.Table
	if len(changes) > 0 {
		t = &chat.Table{Header: []string{"when (UTC)", "deployment", "change", "details"}}
		for i, c := range changes {
			if i == maxChangeRows {
				fmt.Fprintf(&b, "\n_%d older changes not shown; narrow the window or name a deployment._", len(changes)-maxChangeRows)
				break
			}
			dep := c.deployment
			if ns == "" {
				dep = c.namespace + "/" + dep
			}
			t.Rows = append(t.Rows, []string{c.at.UTC().Format("Jan 2 15:04") + " (" + age(now, c.at) + " ago)", dep, c.what, c.details})
		}
	}
	if window > eventRetention {
		fmt.Fprintf(&b, "\n_Scales are read from events, which the API server keeps about %s by default; older scales may be missing. Rollouts come from the revision history and are complete._",
			action.FormatDuration(eventRetention))
	}
	if note != "" {
		b.WriteString("\n" + note)
	}
	return action.Result{Text: b.String(), Table: t, Outcome: map[string]string{
		"changes": strconv.Itoa(len(changes)), "window": span, "deployments": strconv.Itoa(checked),
	}}, nil
}

// namespaceChanges finds the changes of one namespace (of one deployment
// when only is set) since the given time, and how many deployments it
// looked at.
func (ch *Changes) namespaceChanges(ctx context.Context, c kube.Interface, ns, only string, since time.Time) ([]change, int, error) {
	deps, err := ch.listDeployments(ctx, c, ns, only)
	if err != nil {
		return nil, 0, err
	}
	// One deployment's changes need only its ReplicaSets and the events
	// about it: the API server filters.
	var rsOpts metav1.ListOptions
	evSel := fields.Set{"reason": "ScalingReplicaSet"}
	if only != "" && len(deps.items) == 1 {
		d := &deps.items[0]
		if sel, err := selectorOf(d); err == nil {
			rsOpts.LabelSelector = sel
		}
		evSel["involvedObject.kind"], evSel["involvedObject.name"] = "Deployment", d.Name
	}
	rsList, err := c.AppsV1().ReplicaSets(ns).List(ctx, rsOpts)
	if err != nil {
		return nil, 0, apiError(err)
	}
	evList, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: evSel.AsSelector().String()})
	if err != nil {
		return nil, 0, apiError(err)
	}
	owned := map[types.UID][]appsv1.ReplicaSet{}
	for _, rs := range rsList.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.Kind == "Deployment" {
			owned[ref.UID] = append(owned[ref.UID], rs)
		}
	}
	events := map[types.UID][]corev1.Event{}
	for _, e := range evList.Items {
		if e.Reason == "ScalingReplicaSet" && e.InvolvedObject.Kind == "Deployment" {
			events[e.InvolvedObject.UID] = append(events[e.InvolvedObject.UID], e)
		}
	}
	var out []change
	checked := 0
	for i := range deps.items {
		d := &deps.items[i]
		if only != "" && d.Name != only {
			continue
		}
		checked++
		out = append(out, deploymentChanges(d, owned[d.UID], events[d.UID], since)...)
	}
	return out, checked, nil
}

// deploymentChanges reads one deployment's history: a ReplicaSet created
// in the window is a rollout (or a restart, when only the restartedAt
// stamp changed); an older ReplicaSet scaled up from zero while another
// went to zero is a rollback; other scaling, outside a rollout, is a
// scale.
func deploymentChanges(d *appsv1.Deployment, rss []appsv1.ReplicaSet, events []corev1.Event, since time.Time) []change {
	ch := func(at time.Time, what, details string) change {
		return change{at: at, namespace: d.Namespace, deployment: d.Name, what: what, details: redact.Redact(details)}
	}
	var out []change
	if !d.CreationTimestamp.Time.Before(since) {
		out = append(out, ch(d.CreationTimestamp.Time, "created", images(&d.Spec.Template)))
	}
	byName := map[string]*appsv1.ReplicaSet{}
	for i := range rss {
		byName[rss[i].Name] = &rss[i]
	}
	// The deployment controller's scaling, oldest first.
	var scalings []scaling
	for _, e := range events {
		m := scalingRE.FindStringSubmatch(strings.TrimSpace(e.Message))
		at := eventTime(&e)
		if m == nil || at.Before(since) {
			continue
		}
		from, _ := strconv.Atoi(m[3])
		to, _ := strconv.Atoi(m[4])
		scalings = append(scalings, scaling{at: at, rs: m[2], from: from, to: to})
	}
	slices.SortStableFunc(scalings, func(a, b scaling) int { return a.at.Compare(b.at) })

	// Rollouts and restarts: ReplicaSets made in the window, each compared
	// with the revision before the one it was made as (a rollback gives an
	// old ReplicaSet a new number later; revision-history keeps the old).
	var h history
	for i := range rss {
		rs := &rss[i]
		created := rs.CreationTimestamp.Time
		first := slices.Min(revisionsOf(rs))
		if created.Before(since) || first == 0 {
			continue
		}
		prev := holdingRevisionBelow(rss, first)
		h.add(newRollout(created, rs, rss, scalings))
		if prev == nil && !d.CreationTimestamp.Time.Before(since) {
			continue // the first ReplicaSet of a new deployment: "created" says it
		}
		out = append(out, ch(created, rolloutKind(first, rs, prev), rolloutDetails(rs, prev)))
	}
	for i, s := range scalings {
		rs := byName[s.rs]
		if rs == nil || h.covers(s) {
			continue
		}
		switch {
		case s.from == 0 && s.to > 0 && paired(scalings, i):
			// Back from zero while another went to zero: a rollback.
			h.add(newRollout(s.at, rs, rss, scalings))
			out = append(out, ch(s.at, "rollback", rollbackDetails(rs)))
		case s.from > 0 && s.to == 0 && paired(scalings, i):
			// the other half of a rollback
		default:
			out = append(out, ch(s.at, "scale", fmt.Sprintf("%d → %d replicas", s.from, s.to)))
		}
	}
	return out
}

// rollout is one rollout (or rollback) to a ReplicaSet: when it started,
// until when the controller's scaling belongs to it (the last scale-down
// of a ReplicaSet that existed before, within rolloutSpan), and until the
// next rollout started.
type rollout struct {
	start, end, until time.Time
	rs                string
}

func newRollout(start time.Time, target *appsv1.ReplicaSet, rss []appsv1.ReplicaSet, scalings []scaling) rollout {
	r := rollout{start: start, end: start, rs: target.Name}
	old := map[string]bool{}
	for i := range rss {
		if rss[i].Name != target.Name && rss[i].CreationTimestamp.Time.Before(start) {
			old[rss[i].Name] = true
		}
	}
	for _, s := range scalings {
		if old[s.rs] && s.to < s.from && !s.at.Before(start.Add(-time.Minute)) && !s.at.After(start.Add(rolloutSpan)) && s.at.After(r.end) {
			r.end = s.at
		}
	}
	return r
}

// covers reports whether a scaling event is part of the rollout: during
// it anything; just before it (a Recreate rollout empties the old
// ReplicaSet before making the new one) only other ReplicaSets going to
// zero; after it, until the next rollout, the new ReplicaSet's first
// scale-up from zero.
func (r rollout) covers(s scaling) bool {
	switch {
	case s.at.Before(r.start.Add(-time.Minute)):
		return false
	case s.at.Before(r.start):
		return s.rs != r.rs && s.to == 0
	case !s.at.After(r.end):
		return true
	}
	return s.rs == r.rs && s.from == 0 && (r.until.IsZero() || s.at.Before(r.until))
}

// history is the window's rollouts in start order.
type history struct{ rollouts []rollout }

// add inserts a rollout; each ends, at the latest, when the next starts.
func (h *history) add(r rollout) {
	h.rollouts = append(h.rollouts, r)
	slices.SortStableFunc(h.rollouts, func(a, b rollout) int { return a.start.Compare(b.start) })
	for i := range h.rollouts {
		h.rollouts[i].until = time.Time{}
		if i+1 < len(h.rollouts) {
			next := h.rollouts[i+1].start
			h.rollouts[i].until = next
			if !h.rollouts[i].end.Before(next) {
				h.rollouts[i].end = next.Add(-time.Nanosecond)
			}
		}
	}
}

func (h *history) covers(s scaling) bool {
	return slices.ContainsFunc(h.rollouts, func(r rollout) bool { return r.covers(s) })
}

// scaling is one ScalingReplicaSet event: a ReplicaSet's replicas from
// and to.
type scaling struct {
	at       time.Time
	rs       string
	from, to int
}

// paired reports whether, within a rollout's span of scalings[i] (a
// ReplicaSet going to or coming back from zero), another ReplicaSet went
// the other way: one rollout or rollback, not two scales.
func paired(scalings []scaling, i int) bool {
	me := scalings[i]
	for j, s := range scalings {
		if j == i || s.rs == me.rs || s.at.Sub(me.at).Abs() > rolloutSpan {
			continue
		}
		if (me.from == 0 && s.from > 0 && s.to == 0) || (me.to == 0 && s.from == 0 && s.to > 0) {
			return true
		}
	}
	return false
}

// revisionsOf lists the revisions a ReplicaSet has been: those in its
// revision-history (a rollback renumbers it) and its current one.
func revisionsOf(rs *appsv1.ReplicaSet) []int64 {
	out := []int64{revision(rs)}
	for _, h := range strings.Split(rs.Annotations[RevisionHistoryAnnotation], ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// holdingRevisionBelow is the ReplicaSet that was the highest revision
// below rev: the one a rollout to rev replaced.
func holdingRevisionBelow(rss []appsv1.ReplicaSet, rev int64) *appsv1.ReplicaSet {
	var best *appsv1.ReplicaSet
	var bestRev int64
	for i := range rss {
		for _, r := range revisionsOf(&rss[i]) {
			if r < rev && r > bestRev {
				best, bestRev = &rss[i], r
			}
		}
	}
	return best
}

// rolloutKind is "restart (revision 6)" when only the restartedAt stamp
// differs from the revision before, "rollout to revision 5" otherwise.
func rolloutKind(rev int64, rs, prev *appsv1.ReplicaSet) string {
	if prev != nil && onlyRestarted(&prev.Spec.Template, &rs.Spec.Template) {
		return fmt.Sprintf("restart (revision %d)", rev)
	}
	return fmt.Sprintf("rollout to revision %d", rev)
}

// onlyRestarted reports whether two templates differ in nothing but the
// restartedAt annotation kubectl rollout restart sets.
func onlyRestarted(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	if a.Annotations[RestartedAtAnnotation] == b.Annotations[RestartedAtAnnotation] {
		return false
	}
	delete(a.Annotations, RestartedAtAnnotation)
	delete(b.Annotations, RestartedAtAnnotation)
	return equalIgnoreHash(a, b)
}

// rolloutDetails is "shop/checkout:1.4.1 → shop/checkout:1.4.2; deploy
// 1.4.2: faster cart merge".
func rolloutDetails(rs, prev *appsv1.ReplicaSet) string {
	img := images(&rs.Spec.Template)
	var parts []string
	switch {
	case prev == nil:
		parts = append(parts, img)
	case images(&prev.Spec.Template) != img:
		parts = append(parts, images(&prev.Spec.Template)+" → "+img)
	case onlyRestarted(&prev.Spec.Template, &rs.Spec.Template):
		parts = append(parts, "same image "+img)
	default:
		parts = append(parts, "pod template changed, image "+img)
	}
	// A change cause copied unchanged from the revision before (a restart
	// keeps the deployment's) says nothing about this one.
	if cause := rs.Annotations[ChangeCauseAnnotation]; cause != "" && (prev == nil || cause != prev.Annotations[ChangeCauseAnnotation]) {
		parts = append(parts, "change cause: "+cause)
	}
	return strings.Join(parts, "; ")
}

// rollbackDetails is "back to revision 3 (now 6): shop/checkout:1.4.1".
func rollbackDetails(rs *appsv1.ReplicaSet) string {
	s := "to " + images(&rs.Spec.Template)
	history := strings.Split(rs.Annotations[RevisionHistoryAnnotation], ",")
	if old := history[len(history)-1]; old != "" {
		s = fmt.Sprintf("back to revision %s (now %d), %s", old, revision(rs), images(&rs.Spec.Template))
	}
	if cause := rs.Annotations[ChangeCauseAnnotation]; cause != "" {
		s += "; change cause: " + cause
	}
	return s
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
