package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

func TestStatusDemoCheckout(t *testing.T) {
	k := newKit(t)
	res, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := firstLine(res.Text), "checkout (prod): 3/3 ready, image shop/checkout:1.4.2, revision 4"; got != want {
		t.Errorf("first line %q, want %q", got, want)
	}
	golden(t, "status-prod-checkout.golden", render(res))
}

func TestStatusPaymentsWarningsAndRestarts(t *testing.T) {
	k := newKit(t)
	res, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "payments"}))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "status-prod-payments.golden", render(res))
	lines := strings.Split(res.Text, "\n")
	if len(lines) != 4 || lines[1] != "Recent warnings:" {
		t.Fatalf("want summary, heading and two warnings, got:\n%s", res.Text)
	}
	if !strings.Contains(lines[2], "BackOff: Back-off restarting failed container (x7)") || !strings.Contains(lines[3], "Unhealthy") {
		t.Errorf("warnings not newest first:\n%s", res.Text)
	}
	if strings.Contains(res.Text, "Pulled") {
		t.Errorf("Normal events must not be listed:\n%s", res.Text)
	}
	var restarts string
	for _, f := range res.Fields {
		if f.Label == "Pod restarts" {
			restarts = f.Value
		}
	}
	if !strings.HasPrefix(restarts, "7 across 2 pods; most: payments-") || !strings.HasSuffix(restarts, "-x2k9q (7)") {
		t.Errorf("restarts %q", restarts)
	}
}

// An unknown name is "not found", with the close matches, never a
// listing of something else.
func TestStatusUnknownDeployment(t *testing.T) {
	k := newKit(t)
	cases := []struct {
		params action.Params
		want   string
	}{
		{action.Params{"namespace": "prod", "deployment": "chekout"}, `no deployment "chekout" in prod (did you mean "checkout"?)`},
		{action.Params{"namespace": "prod", "deployment": "pay"}, `no deployment "pay" in prod (did you mean "payments"?)`},
		{action.Params{"namespace": "prod", "deployment": "foo"}, `no deployment "foo" in prod; nothing with a similar name (there: auth, cart, checkout, frontend, payments, search)`},
		{action.Params{"namespace": "staging", "deployment": "search"}, `no deployment "search" in staging; it exists in prod`},
		{action.Params{"namespace": "qa", "deployment": "checkout"}, `no deployment "checkout" in qa; it exists in prod, staging`},
		{action.Params{"deployment": "serach"}, `no deployment "serach" in any namespace Parley reads (did you mean "search"?)`},
		{action.Params{"namespace": "qa"}, "namespace qa has no deployments (or does not exist)"},
	}
	for _, tc := range cases {
		_, err := k.status.Run(context.Background(), req(action.KubernetesStatus, tc.params))
		if !errors.Is(err, action.ErrNotFound) || err.Error() != tc.want {
			t.Errorf("%v: got %v, want not found %q", tc.params, err, tc.want)
		}
	}
}

func TestCloseMatches(t *testing.T) {
	names := []string{"checkout", "checkout-worker", "payments", "cart", "auth", "search"}
	for name, want := range map[string]string{
		"checkout":  "checkout checkout-worker",
		"chekcout":  "checkout",
		"chckout":   "checkout",
		"payment":   "payments",
		"cat":       "cart",
		"ath":       "auth",
		"zzz":       "",
		"Checkout":  "checkout checkout-worker",
		"worker":    "checkout-worker",
		"searching": "search",
	} {
		if got := strings.Join(closeMatches(name, names), " "); got != want {
			t.Errorf("closeMatches(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestStatusWithoutNamespace(t *testing.T) {
	k := newKit(t)
	res, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"deployment": "search"}))
	if err != nil {
		t.Fatal(err)
	}
	if firstLine(res.Text) != "search (prod): 2/2 ready, image shop/search:1.9.0, revision 1" ||
		!strings.Contains(res.Text, "exists only in prod") {
		t.Errorf("unique match not shown with its namespace:\n%s", res.Text)
	}
	_, err = k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"deployment": "checkout"}))
	mustErrIs(t, err, action.ErrInvalid, "prod, staging")
	_, err = k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"deployment": "nope"}))
	mustErrIs(t, err, action.ErrNotFound)
}

func TestStatusListsNamespace(t *testing.T) {
	k := newKit(t)
	res, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "staging"}))
	if err != nil {
		t.Fatal(err)
	}
	want := "Deployments in staging:\n" +
		"• auth: 1/1 ready, image shop/auth:3.3.0-rc1, revision 1\n" +
		"• cart: 1/1 ready, image shop/cart:2.8.0-rc2, revision 1\n" +
		"• checkout: 1/1 ready, image shop/checkout:1.5.0-rc1, revision 2\n" +
		"• payments: 1/1 ready, image shop/payments:2.2.0-rc1, revision 1"
	if res.Text != want {
		t.Errorf("got\n%s\nwant\n%s", res.Text, want)
	}
	res, err = k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(res.Text, "\n• "); n != 10 || !strings.Contains(res.Text, "• prod/checkout: 3/3 ready") {
		t.Errorf("all namespaces: %d lines\n%s", n, res.Text)
	}
}

// TestHealth: the summary words and the reply style follow readiness and
// the rollout state; a deployment is a success only when all of it is.
func TestHealth(t *testing.T) {
	cond := func(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason string) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: reason + " message"}
	}
	dep := func(want, ready, updated, available, total int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: &want},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: total, ReadyReplicas: ready,
				UpdatedReplicas: updated, AvailableReplicas: available, Conditions: conds},
		}
	}
	available := cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable")
	unavailable := cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable")
	complete := cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable")
	updating := cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated")
	stuck := cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded")
	crashing := corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: "app", RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
	}}}}
	paused := dep(4, 4, 4, 4, 4, available)
	paused.Spec.Paused = true
	unobserved := dep(4, 4, 4, 4, 4, available, complete)
	unobserved.Generation = 4

	cases := []struct {
		name string
		d    *appsv1.Deployment
		pods []corev1.Pod
		kind chat.ReplyKind
		want string
	}{
		{"healthy", dep(4, 4, 4, 4, 4, available, complete), nil, chat.KindSuccess, "4/4 ready"},
		{"none ready", dep(4, 0, 4, 0, 4, unavailable, complete), nil, chat.KindAttention, "0/4 ready, below minimum availability"},
		{"one down, settled", dep(4, 3, 4, 3, 4, available, complete), nil, chat.KindAttention, "3/4 ready"},
		{"rolling out", dep(4, 3, 2, 3, 5, available, updating), nil, chat.KindProgress, "3/4 ready, rolling out (2/4 updated)"},
		{"rolling out with none ready", dep(4, 0, 1, 0, 4, unavailable, updating), nil, chat.KindAttention, "0/4 ready, rolling out (1/4 updated), below minimum availability"},
		{"stuck", dep(4, 4, 1, 4, 5, available, stuck), nil, chat.KindAttention, "4/4 ready, rollout stuck (ProgressDeadlineExceeded)"},
		{"crash loop", dep(4, 3, 4, 3, 4, available, complete), []corev1.Pod{crashing}, chat.KindAttention, "3/4 ready, 1 pod failing (CrashLoopBackOff)"},
		{"scaled to zero", dep(0, 0, 0, 0, 0, available, complete), nil, chat.KindInfo, "0/0 ready, scaled to 0"},
		{"paused", paused, nil, chat.KindInfo, "4/4 ready, paused"},
		{"not observed", unobserved, nil, chat.KindProgress, "4/4 ready, rolling out (change not yet observed)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := assess(tc.d, tc.pods)
			got, _, _ := strings.Cut(summary(tc.d, h), ", image")
			if got != tc.want || h.kind != tc.kind {
				t.Errorf("got %q (%s), want %q (%s)", got, h.kind, tc.want, tc.kind)
			}
			if h.kind != chat.KindSuccess && tc.d.Status.ReadyReplicas == replicasOf(tc.d) && len(h.issues) == 0 {
				t.Errorf("styled %s without saying why", h.kind)
			}
		})
	}
}

// A status reply and a listing are never a success while a deployment is
// unready: the sandbox with one pod of payments crash-looping.
func TestStatusStyleFollowsPods(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	res, err := k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if err != nil || res.Kind != chat.KindSuccess {
		t.Fatalf("healthy checkout: %v, %q", err, res.Kind)
	}
	p := k.pods(t, "prod", "checkout")[0]
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	p.Status.ContainerStatuses[0].Ready = false
	p.Status.ContainerStatuses[0].RestartCount = 3
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	if _, err := updateStatus(k.sb, podsGVR, "prod", &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := firstLine(res.Text), "checkout (prod): 2/3 ready, 1 pod failing (CrashLoopBackOff), below minimum availability, image shop/checkout:1.4.2, revision 4"; got != want || res.Kind != chat.KindAttention {
		t.Errorf("got %q (%s), want %q (attention)", got, res.Kind, want)
	}
	res, err = k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "Deployments in prod: 1 of 6 not healthy.\n") || res.Kind != chat.KindAttention ||
		!strings.Contains(res.Text, "• checkout: 2/3 ready, below minimum availability,") {
		t.Errorf("listing (%s):\n%s", res.Kind, res.Text)
	}
}
