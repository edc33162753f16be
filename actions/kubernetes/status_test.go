package kubernetes

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
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

func TestStatusMissingDeploymentListsWhatExists(t *testing.T) {
	k := newKit(t)
	_, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "chekout"}))
	mustErrIs(t, err, action.ErrNotFound, `"chekout"`, "auth, cart, checkout, frontend, payments, search")

	_, err = k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "qa", "deployment": "checkout"}))
	mustErrIs(t, err, action.ErrNotFound, "qa has no deployments")
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
