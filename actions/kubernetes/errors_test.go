package kubernetes

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

func TestForbiddenKeepsTheReason(t *testing.T) {
	k := newKit(t)
	ctx := context.Background()
	const reason = `User "slack:U024BE7LH" cannot update resource "deployments/scale" in API group "apps" in the namespace "prod"`
	k.sb.Fake().PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "checkout", errors.New(reason))
	})
	_, err := k.scale.Run(ctx, scaleReq("prod", "checkout", 5))
	mustErrIs(t, err, action.ErrForbidden, "scale prod/checkout", reason)
	if !apierrors.IsForbidden(err) {
		t.Error("the API error is no longer reachable with errors.As")
	}
	// The plan's server-side dry run meets the same refusal, so nobody is
	// asked to confirm a scale that cannot run.
	_, err = k.scale.Plan(ctx, scaleReq("prod", "checkout", 5))
	mustErrIs(t, err, action.ErrForbidden, "scale prod/checkout: dry run", reason)

	k.sb.Fake().PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "checkout", errors.New("no reading"))
	})
	_, err = k.status.Run(ctx, req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	mustErrIs(t, err, action.ErrForbidden, "status prod/checkout", "no reading")
}

func TestErrorKinds(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for _, tc := range []struct {
		name string
		err  error
		kind error
	}{
		{"not found", apierrors.NewNotFound(gr, "x"), action.ErrNotFound},
		{"unauthorized", apierrors.NewUnauthorized("token expired"), action.ErrForbidden},
		{"conflict", apierrors.NewConflict(gr, "x", errors.New("modified")), action.ErrConflict},
		{"server timeout", apierrors.NewServerTimeout(gr, "get", 1), action.ErrUnavailable},
		{"timeout", apierrors.NewTimeoutError("slow", 1), action.ErrUnavailable},
		{"throttled", apierrors.NewTooManyRequests("busy", 1), action.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, action.ErrUnavailable},
		{"transport", errors.New("dial tcp 10.0.0.1:6443: connect: connection refused"), action.ErrUnavailable},
		{"invalid", apierrors.NewBadRequest("bad"), action.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := apiError(tc.err); !errors.Is(err, tc.kind) {
				t.Errorf("apiError(%v) = %v, want kind %v", tc.err, err, tc.kind)
			}
		})
	}
	if err := apiError(context.Canceled); !errors.Is(err, context.Canceled) || errors.Is(err, action.ErrUnavailable) {
		t.Errorf("cancellation mapped to %v", err)
	}
}

func TestUnavailableAPI(t *testing.T) {
	k := newKit(t)
	k.sb.Fake().PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewTimeoutError("request did not complete within 10s", 0)
	})
	_, err := k.status.Run(context.Background(), req(action.KubernetesStatus, action.Params{"namespace": "prod", "deployment": "checkout"}))
	mustErrIs(t, err, action.ErrUnavailable)
}

func TestClientsErrorAndOptions(t *testing.T) {
	if _, err := Actions(Options{}); !errors.Is(err, action.ErrNotConfigured) {
		t.Errorf("no clients: %v", err)
	}
	if _, err := NewScale(Options{Clients: StaticClient(nil), Timeout: -1}); err == nil {
		t.Error("negative timeout accepted")
	}
	boom := errors.New("no mapping for slack:U1")
	acts, err := Actions(Options{Clients: func(string) (kube.Interface, error) { return nil, boom }})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if _, err := a.Run(context.Background(), req(a.Spec().Name, action.Params{"namespace": "prod", "deployment": "checkout", "replicas": 1})); !errors.Is(err, boom) {
			t.Errorf("%s: %v", a.Spec().Name, err)
		}
	}
	var names []string
	for _, a := range acts {
		names = append(names, a.Spec().Name)
		if _, mutating := a.(action.Planner); mutating != (a.Spec().Kind == action.Mutating) {
			t.Errorf("%s: Planner %v, kind %s", a.Spec().Name, mutating, a.Spec().Kind)
		}
	}
	if _, err := action.NewRegistry(acts...); err != nil {
		t.Errorf("registry: %v (%v)", err, names)
	}
}
