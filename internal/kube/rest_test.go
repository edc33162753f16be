package kube

// These tests run the REST client against httptest servers on 127.0.0.1
// that answer as kube-apiserver does on the wire (JSON objects, metav1.Status
// error bodies, Retry-After on 429/5xx) for what a real API server cannot
// be made to do on demand: throttle, fail, answer too much, hang. The
// requests the client sends are checked here byte for byte; what a real
// API server makes of them is checked in rest_integration_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// recorded is one request the test server received.
type recorded struct {
	Method, Path, Query, ContentType, Body string
	Header                                 http.Header
}

type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func (s *testServer) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// newServer starts an httptest server on 127.0.0.1 that records each
// request and answers with h.
func newServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request body: %v", err)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			ContentType: r.Header.Get("Content-Type"), Body: string(b), Header: r.Header.Clone()})
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// newClient is a client of s without a client-side rate limit, whose
// retry waits are recorded instead of slept.
func newClient(t *testing.T, cfg *rest.Config) (Interface, *[]time.Duration) {
	t.Helper()
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	c, err := NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var waits []time.Duration
	c.(clientset).rc.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, &waits
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client under test reports what it got
}

func status(code int32, reason metav1.StatusReason, msg string) metav1.Status {
	return metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

// TestWire checks the method, path, query, content type and body of each
// kind of call, as client-go's typed clients send them.
func TestWire(t *testing.T) {
	answer := map[string]any{}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, answer)
	})
	c, _ := newClient(t, &rest.Config{Host: srv.URL + "/prefix/", Timeout: 7 * time.Second, BearerToken: "tok" + "en-part"})
	ctx := ctxT(t)
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

	cases := []struct {
		name string
		call func() error
		want recorded
	}{{
		name: "list pods in all namespaces with selectors and paging",
		call: func() error {
			_, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app=web,tier in (a,b)",
				FieldSelector: "status.phase=Running", Limit: 50, Continue: "tok", ResourceVersion: "0"})
			return err
		},
		want: recorded{Method: "GET", Path: "/prefix/api/v1/pods",
			Query: "continue=tok&fieldSelector=status.phase%3DRunning&labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=50&resourceVersion=0&timeout=7s"},
	}, {
		name: "list deployments in all namespaces",
		call: func() error { _, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); return err },
		want: recorded{Method: "GET", Path: "/prefix/apis/apps/v1/deployments", Query: "timeout=7s"},
	}, {
		name: "get a deployment",
		call: func() error {
			_, err := c.AppsV1().Deployments("prod").Get(ctx, "web", metav1.GetOptions{ResourceVersion: "42"})
			return err
		},
		want: recorded{Method: "GET", Path: "/prefix/apis/apps/v1/namespaces/prod/deployments/web", Query: "resourceVersion=42&timeout=7s"},
	}, {
		name: "get a scale",
		call: func() error {
			_, err := c.AppsV1().Deployments("prod").GetScale(ctx, "web", metav1.GetOptions{})
			return err
		},
		want: recorded{Method: "GET", Path: "/prefix/apis/apps/v1/namespaces/prod/deployments/web/scale", Query: "timeout=7s"},
	}, {
		name: "update a scale, dry run",
		call: func() error {
			_, err := c.AppsV1().Deployments("prod").UpdateScale(ctx, "web",
				&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}},
				metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "parley"})
			return err
		},
		want: recorded{Method: "PUT", Path: "/prefix/apis/apps/v1/namespaces/prod/deployments/web/scale",
			Query: "dryRun=All&fieldManager=parley&timeout=7s", ContentType: "application/json",
			Body: `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"prod"},"spec":{"replicas":3},"status":{"replicas":0}}`},
	}, {
		name: "strategic merge patch",
		call: func() error {
			_, err := c.AppsV1().Deployments("prod").Patch(ctx, "web", types.StrategicMergePatchType,
				[]byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{FieldManager: "parley"})
			return err
		},
		want: recorded{Method: "PATCH", Path: "/prefix/apis/apps/v1/namespaces/prod/deployments/web",
			Query: "fieldManager=parley&timeout=7s", ContentType: "application/strategic-merge-patch+json", Body: `{"spec":{"paused":true}}`},
	}, {
		name: "server-side apply",
		call: func() error {
			_, err := c.AppsV1().Deployments("prod").Patch(ctx, "web", types.ApplyPatchType,
				[]byte(`{}`), metav1.PatchOptions{FieldManager: "parley", Force: ptr(true)})
			return err
		},
		want: recorded{Method: "PATCH", Path: "/prefix/apis/apps/v1/namespaces/prod/deployments/web",
			Query: "fieldManager=parley&force=true&timeout=7s", ContentType: "application/apply-patch+yaml", Body: `{}`},
	}, {
		name: "create a config map",
		call: func() error {
			_, err := c.CoreV1().ConfigMaps("ops").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"},
				Data: map[string]string{"k": "v"}}, metav1.CreateOptions{FieldValidation: "Strict"})
			return err
		},
		want: recorded{Method: "POST", Path: "/prefix/api/v1/namespaces/ops/configmaps", Query: "fieldValidation=Strict&timeout=7s",
			ContentType: "application/json", Body: `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm"},"data":{"k":"v"}}`},
	}, {
		name: "delete a job in the foreground",
		call: func() error {
			return c.BatchV1().Jobs("ops").Delete(ctx, "j", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)})
		},
		want: recorded{Method: "DELETE", Path: "/prefix/apis/batch/v1/namespaces/ops/jobs/j", Query: "timeout=7s", ContentType: "application/json",
			Body: `{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1","propagationPolicy":"Foreground"}`},
	}, {
		name: "pod logs with every option",
		call: func() error {
			rc, err := c.CoreV1().Pods("prod").Logs(ctx, "web-1", &corev1.PodLogOptions{Container: "app", Follow: true, Previous: true,
				SinceSeconds: ptr[int64](60), Timestamps: true, TailLines: ptr[int64](10), LimitBytes: ptr[int64](4096)})
			if err == nil {
				err = rc.Close()
			}
			return err
		},
		want: recorded{Method: "GET", Path: "/prefix/api/v1/namespaces/prod/pods/web-1/log",
			Query: "container=app&follow=true&limitBytes=4096&previous=true&sinceSeconds=60&tailLines=10&timeout=7s&timestamps=true"},
	}, {
		name: "pod logs since a time",
		call: func() error {
			rc, err := c.CoreV1().Pods("prod").Logs(ctx, "web-1", &corev1.PodLogOptions{SinceTime: &since})
			if err == nil {
				err = rc.Close()
			}
			return err
		},
		want: recorded{Method: "GET", Path: "/prefix/api/v1/namespaces/prod/pods/web-1/log", Query: "sinceTime=2026-01-02T03%3A04%3A05Z&timeout=7s"},
	}, {
		name: "events, HPAs, replica sets, leases in a namespace",
		call: func() error {
			_, err1 := c.CoreV1().Events("ops").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web"})
			_, err2 := c.AutoscalingV2().HorizontalPodAutoscalers("ops").List(ctx, metav1.ListOptions{})
			_, err3 := c.AppsV1().ReplicaSets("ops").List(ctx, metav1.ListOptions{})
			_, err4 := c.CoordinationV1().Leases("ops").Get(ctx, "leader", metav1.GetOptions{})
			return errors.Join(err1, err2, err3, err4)
		},
		want: recorded{Method: "GET", Path: "/prefix/apis/coordination.k8s.io/v1/namespaces/ops/leases/leader", Query: "timeout=7s"},
	}, {
		name: "self subject access review",
		call: func() error {
			_, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, nil, metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), "no object") {
				return fmt.Errorf("a nil review: got %v, want a no-object error", err)
			}
			_, err = c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: "prod", Verb: "patch", Group: "apps", Resource: "deployments", Subresource: "scale"}}}, metav1.CreateOptions{})
			return err
		},
		want: recorded{Method: "POST", Path: "/prefix/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", Query: "timeout=7s",
			ContentType: "application/json", Body: `{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{"resourceAttributes":{"namespace":"prod","verb":"patch","group":"apps","resource":"deployments","subresource":"scale"}},"status":{"allowed":false}}`},
	}, {
		name: "update a lease",
		call: func() error {
			_, err := c.CoordinationV1().Leases("ops").Update(ctx, &coordinationv1Lease, metav1.UpdateOptions{})
			return err
		},
		want: recorded{Method: "PUT", Path: "/prefix/apis/coordination.k8s.io/v1/namespaces/ops/leases/leader", Query: "timeout=7s",
			ContentType: "application/json", Body: `{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"leader","resourceVersion":"7"},"spec":{}}`},
	}, {
		name: "server version",
		call: func() error { _, err := c.ServerVersion(ctx); return err },
		want: recorded{Method: "GET", Path: "/prefix/version", Query: "timeout=7s"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.requests())
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) == before {
				t.Fatal("no request")
			}
			got := reqs[len(reqs)-1]
			if got.Body == "" {
				got.ContentType = "" // no body, no content type to compare
			}
			got.Body = strings.TrimSpace(got.Body)
			hdr := got.Header
			got.Header = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("request\n got %+v\nwant %+v", got, tc.want)
			}
			if a := hdr.Get("Authorization"); a != "Bearer token-part" {
				t.Errorf("Authorization %q", a)
			}
			if a := hdr.Get("Accept"); a != "application/json, */*" {
				t.Errorf("Accept %q", a)
			}
			if ua := hdr.Get("User-Agent"); !strings.Contains(ua, "kubernetes/") {
				t.Errorf("User-Agent %q, want client-go's default", ua)
			}
		})
	}
	if coordinationv1Lease.Kind != "" {
		t.Errorf("the caller's object was changed: kind %q", coordinationv1Lease.Kind)
	}
}

var coordinationv1Lease = coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "leader", ResourceVersion: "7"}}

// TestConfig checks what the client takes from rest.Config: user agent,
// impersonation, the rate limiter.
func TestConfig(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	ctx := ctxT(t)
	lim := &countingLimiter{}
	c, _ := newClient(t, &rest.Config{Host: srv.URL, UserAgent: "parley/test", RateLimiter: lim,
		Impersonate: rest.ImpersonationConfig{UserName: "alice", Groups: []string{"devs", "ops"}}})
	if _, err := c.CoreV1().ConfigMaps("a").Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	h := srv.requests()[0].Header
	if h.Get("User-Agent") != "parley/test" || h.Get("Impersonate-User") != "alice" ||
		strings.Join(h.Values("Impersonate-Group"), ",") != "devs,ops" {
		t.Errorf("headers %v", h)
	}
	if lim.waits.Load() != 1 {
		t.Errorf("rate limiter waited %d times, want 1", lim.waits.Load())
	}

	for _, tc := range []struct {
		qps   float32
		burst int
		want  float32 // 0: no limiter
	}{{0, 0, DefaultQPS}, {20, 40, 20}, {-1, 0, 0}} {
		c, err := NewForConfig(&rest.Config{Host: srv.URL, QPS: tc.qps, Burst: tc.burst})
		if err != nil {
			t.Fatal(err)
		}
		l := c.(clientset).rc.limiter
		switch {
		case tc.want == 0 && l != nil:
			t.Errorf("QPS %v: a limiter of %v QPS, want none", tc.qps, l.QPS())
		case tc.want != 0 && (l == nil || l.QPS() != tc.want):
			t.Errorf("QPS %v: limiter %v, want %v QPS", tc.qps, l, tc.want)
		}
	}
	if _, err := NewForConfig(&rest.Config{Host: srv.URL, QPS: 5, Burst: -1}); err == nil {
		t.Error("a negative burst was accepted")
	}
	if _, err := NewForConfig(nil); err == nil {
		t.Error("a nil config was accepted")
	}
}

// TestRateLimitWaitHonoursContext: a call throttled past its context's
// end fails with the context's error, without a request.
func TestRateLimitWaitHonoursContext(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	c, err := NewForConfig(&rest.Config{Host: srv.URL, QPS: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := c.CoreV1().Pods("a").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.CoreV1().Pods("a").List(short, metav1.ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("got %v, want a rate-limit error", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

type countingLimiter struct{ waits atomic.Int32 }

func (l *countingLimiter) TryAccept() bool { return true }
func (l *countingLimiter) Accept()         {}
func (l *countingLimiter) Stop()           {}
func (l *countingLimiter) QPS() float32    { return 1000 }
func (l *countingLimiter) Wait(ctx context.Context) error {
	l.waits.Add(1)
	return ctx.Err()
}

var _ flowcontrol.RateLimiter = (*countingLimiter)(nil)

// TestErrors checks that error answers become the errors client-go makes
// of them.
func TestErrors(t *testing.T) {
	type check func(error) bool
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		is     check
		msg    string // the error's text contains it
	}{{
		name: "Status NotFound",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 404, status(404, metav1.StatusReasonNotFound, `deployments.apps "web" not found`))
		},
		is: apierrors.IsNotFound, msg: `deployments.apps "web" not found`,
	}, {
		name: "Status Conflict",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 409, status(409, metav1.StatusReasonConflict, "the object has been modified"))
		},
		is: apierrors.IsConflict, msg: "the object has been modified",
	}, {
		name: "Status Forbidden",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 403, status(403, metav1.StatusReasonForbidden, `deployments.apps "web" is forbidden: User "bob" cannot get resource`))
		},
		is: apierrors.IsForbidden, msg: `User "bob" cannot get`,
	}, {
		name: "Status Timeout",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 504, status(504, metav1.StatusReasonTimeout, "request timed out"))
		},
		is: apierrors.IsTimeout, msg: "request timed out",
	}, {
		name: "Status without apiVersion",
		answer: func(w http.ResponseWriter) {
			st := status(422, metav1.StatusReasonInvalid, "spec.replicas: Invalid value: -1")
			st.APIVersion = ""
			writeJSON(w, 422, st)
		},
		is: apierrors.IsInvalid, msg: "spec.replicas: Invalid value",
	}, {
		name: "Status with too many requests, no Retry-After: not retried",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 429, status(429, metav1.StatusReasonTooManyRequests, "slow down"))
		},
		is: apierrors.IsTooManyRequests, msg: "slow down",
	}, {
		name: "JSON that is not a Status",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 500, map[string]string{"error": "boom"})
		},
		is: apierrors.IsInternalError, msg: "an error on the server (\"unknown\")",
	}, {
		name: "text body",
		answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "upstream connect error\n")
		},
		is: apierrors.IsInternalError, msg: `an error on the server ("upstream connect error")`,
	}, {
		name: "HTML body (a proxy's page) is not quoted",
		answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(401)
			_, _ = io.WriteString(w, "<html>login</html>")
		},
		is:  func(err error) bool { return apierrors.IsUnauthorized(err) && !strings.Contains(err.Error(), "html") },
		msg: "the server has asked for the client to provide credentials",
	}, {
		name:   "empty body",
		answer: func(w http.ResponseWriter) { w.WriteHeader(404) },
		is:     apierrors.IsNotFound, msg: "the server could not find the requested resource (get deployments.apps web)",
	}, {
		name: "a Status with status Failure in a 200",
		answer: func(w http.ResponseWriter) {
			writeJSON(w, 200, status(500, metav1.StatusReasonInternalError, "odd"))
		},
		is: apierrors.IsInternalError, msg: "odd",
	}, {
		name:   "another kind than asked for",
		answer: func(w http.ResponseWriter) { writeJSON(w, 200, map[string]string{"kind": "Pod", "apiVersion": "v1"}) },
		is:     func(err error) bool { return !apierrors.IsInternalError(err) }, msg: "the server answered a Pod where a Deployment was expected",
	}, {
		name:   "an empty 200",
		answer: func(w http.ResponseWriter) { w.WriteHeader(200) },
		is:     func(err error) bool { return err != nil }, msg: "0-length response with status code 200",
	}, {
		name: "malformed JSON",
		answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"kind": "Deployment", "spec": {`)
		},
		is: func(err error) bool { return err != nil }, msg: "decoding the answer",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { tc.answer(w) })
			c, waits := newClient(t, &rest.Config{Host: srv.URL})
			_, err := c.AppsV1().Deployments("prod").Get(ctxT(t), "web", metav1.GetOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if !tc.is(err) {
				t.Errorf("wrong kind of error: %#v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if n := len(srv.requests()); n != 1 || len(*waits) != 0 {
				t.Errorf("%d requests and %d waits, want 1 and none", n, len(*waits))
			}
		})
	}
}

// TestLogsError: a log request the server refuses is a StatusError, not
// a stream of the error's JSON.
func TestLogsError(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, status(400, metav1.StatusReasonBadRequest, `previous terminated container "app" in pod "web-1" not found`))
	})
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	rc, err := c.CoreV1().Pods("prod").Logs(ctxT(t), "web-1", &corev1.PodLogOptions{Previous: true})
	if err == nil {
		rc.Close()
		t.Fatal("no error")
	}
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "previous terminated container") {
		t.Errorf("got %#v", err)
	}
}

// TestLogsStream: the body comes as the server writes it, before the
// answer ends, and closing it ends the request.
func TestLogsStream(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "line 1\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	rc, err := c.CoreV1().Pods("prod").Logs(ctxT(t), "web-1", &corev1.PodLogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "line 1\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
}

// TestRetryAfter: 429 and 503 with Retry-After are retried after the
// seconds asked, then the answer is used.
func TestRetryAfter(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, status(429, metav1.StatusReasonTooManyRequests, "too many requests"))
		case 2:
			w.Header().Set("Retry-After", "3")
			writeJSON(w, 503, status(503, metav1.StatusReasonServiceUnavailable, "shutting down"))
		default:
			writeJSON(w, 201, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ops", UID: "u1"}})
		}
	})
	lim := &countingLimiter{}
	c, waits := newClient(t, &rest.Config{Host: srv.URL, RateLimiter: lim})
	got, err := c.CoreV1().ConfigMaps("ops").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != "u1" || got.Kind != "" {
		t.Errorf("got %+v, want uid u1 and an empty TypeMeta", got)
	}
	reqs := srv.requests()
	if len(reqs) != 3 || fmt.Sprint(*waits) != "[1s 3s]" {
		t.Errorf("%d requests, waits %v; want 3 and [1s 3s]", len(reqs), *waits)
	}
	for i, r := range reqs {
		if r.Body != reqs[0].Body || r.Body == "" {
			t.Errorf("attempt %d sent body %q, the first %q", i+1, r.Body, reqs[0].Body)
		}
	}
	if lim.waits.Load() != 3 {
		t.Errorf("rate limiter waited %d times, want once an attempt (3)", lim.waits.Load())
	}
}

// TestRetriesBounded: a server that always asks to retry gets
// 1+MaxRetries requests, then its error.
func TestRetriesBounded(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		writeJSON(w, 429, status(429, metav1.StatusReasonTooManyRequests, "too many requests, please try again later"))
	})
	c, waits := newClient(t, &rest.Config{Host: srv.URL})
	_, err := c.CoreV1().Pods("a").List(ctxT(t), metav1.ListOptions{})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("got %v, want TooManyRequests", err)
	}
	if n := len(srv.requests()); n != 1+MaxRetries || len(*waits) != MaxRetries {
		t.Errorf("%d requests and %d waits, want %d and %d", n, len(*waits), 1+MaxRetries, MaxRetries)
	}
}

// TestRetryAfterPastDeadline: when the server asks for a longer wait than
// the call has left, its answer comes back at once, not a deadline error
// later.
func TestRetryAfterPastDeadline(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		st := status(429, metav1.StatusReasonTooManyRequests, "too many requests")
		st.Details = &metav1.StatusDetails{RetryAfterSeconds: 30}
		writeJSON(w, 429, st)
	})
	c, waits := newClient(t, &rest.Config{Host: srv.URL})
	ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	_, err := c.CoreV1().Pods("a").List(ctx, metav1.ListOptions{})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("got %v, want TooManyRequests", err)
	}
	if sec, ok := apierrors.SuggestsClientDelay(err); !ok || sec != 30 {
		t.Errorf("suggested delay %d %v, want 30", sec, ok)
	}
	if n := len(srv.requests()); n != 1 || len(*waits) != 0 {
		t.Errorf("%d requests, %d waits; want 1 and none", n, len(*waits))
	}
}

// TestRetryWaitCancelled: a call cancelled while it waits to retry says
// both why it stopped and what the server had answered.
func TestRetryWaitCancelled(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, status(503, metav1.StatusReasonServiceUnavailable, "etcd leader changed"))
	})
	c, err := NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	c.(clientset).rc.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, d)
	}
	_, err = c.CoreV1().Pods("a").List(ctx, metav1.ListOptions{})
	if !errors.Is(err, context.Canceled) || !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "etcd leader changed") {
		t.Errorf("got %v, want the cancel and the 503", err)
	}
}

// TestGetRetriedOnReset: a GET whose connection dies before an answer is
// retried (as client-go does); a POST is not, it may have been applied.
func TestGetRetriedOnReset(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 || r.Method == http.MethodPost {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close() // the client reads EOF
			return
		}
		writeJSON(w, 200, &corev1.PodList{})
	})
	c, waits := newClient(t, &rest.Config{Host: srv.URL})
	if _, err := c.CoreV1().Pods("a").List(ctxT(t), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(srv.requests()) != 2 || fmt.Sprint(*waits) != "[1s]" {
		t.Errorf("%d requests, waits %v; want 2 and [1s]", len(srv.requests()), *waits)
	}
	before := len(srv.requests())
	_, err := c.CoreV1().ConfigMaps("a").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a POST on a dead connection succeeded")
	}
	if got := len(srv.requests()) - before; got != 1 {
		t.Errorf("the POST was sent %d times, want once", got)
	}
}

// TestOversizeBody: an answer longer than the bound is refused with an
// error that says so (the bound is lowered for the test; the real one is
// MaxResponseBytes).
func TestOversizeBody(t *testing.T) {
	const limit = 1 << 20
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"PodList","apiVersion":"v1","items":[`)
		pod := `{"metadata":{"name":"` + strings.Repeat("p", 200) + `"}}`
		for i := 0; i < limit/len(pod)+1; i++ {
			if i > 0 {
				_, _ = io.WriteString(w, ",")
			}
			_, _ = io.WriteString(w, pod)
		}
		_, _ = io.WriteString(w, `]}`)
	})
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	c.(clientset).rc.maxBody = limit
	_, err := c.CoreV1().Pods("").List(ctxT(t), metav1.ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") || !strings.Contains(err.Error(), "GET /api/v1/pods") {
		t.Fatalf("got %v, want a too-large error naming the request and the bound", err)
	}
	// A delete that was done is not failed over the size of its answer.
	if err := c.BatchV1().Jobs("a").Delete(ctxT(t), "j", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete with a large answer: %v", err)
	}
	if MaxResponseBytes != 64<<20 {
		t.Errorf("MaxResponseBytes %d, documented as 64 MiB", MaxResponseBytes)
	}
}

// TestDeadline: a server that does not answer fails the call at the
// context's deadline, and at cfg.Timeout.
func TestDeadline(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	if _, err := c.AppsV1().Deployments("a").Get(ctx, "b", metav1.GetOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
	rc, err := c.CoreV1().Pods("a").Logs(ctx, "b", nil)
	if err == nil {
		rc.Close()
		t.Error("logs from a dead server")
	}

	c, _ = newClient(t, &rest.Config{Host: srv.URL, Timeout: 100 * time.Millisecond})
	_, err = c.ServerVersion(ctxT(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cfg.Timeout: got %v, want a deadline error", err)
	}
}

// TestBadNames: names that cannot be a path segment, and namespaced
// calls without a namespace, are refused before any request.
func TestBadNames(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	ctx := ctxT(t)
	for name, call := range map[string]func() error{
		"empty name": func() error { _, err := c.AppsV1().Deployments("a").Get(ctx, "", metav1.GetOptions{}); return err },
		"slash": func() error {
			_, err := c.AppsV1().Deployments("a").Get(ctx, "x/../y", metav1.GetOptions{})
			return err
		},
		"dot dot":      func() error { return c.BatchV1().Jobs("a").Delete(ctx, "..", metav1.DeleteOptions{}) },
		"percent":      func() error { _, err := c.CoreV1().Pods("a").Logs(ctx, "%2e", nil); return err },
		"no namespace": func() error { _, err := c.CoreV1().ConfigMaps("").Get(ctx, "x", metav1.GetOptions{}); return err },
		"create all ns": func() error {
			_, err := c.CoreV1().ConfigMaps("").Create(ctx, &corev1.ConfigMap{}, metav1.CreateOptions{})
			return err
		},
		"bad namespace": func() error { _, err := c.CoreV1().Pods("a/b").List(ctx, metav1.ListOptions{}); return err },
		"nil deployment": func() error {
			_, err := c.AppsV1().Deployments("a").Update(ctx, nil, metav1.UpdateOptions{})
			return err
		},
		"no patch type": func() error {
			_, err := c.AppsV1().Deployments("a").Patch(ctx, "x", "", nil, metav1.PatchOptions{})
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestWarnings: Warning headers reach cfg.WarningHandler.
func TestWarnings(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "autoscaling/v2beta2 HorizontalPodAutoscaler is deprecated"`)
		writeJSON(w, 200, map[string]any{})
	})
	var h warningRecorder
	c, _ := newClient(t, &rest.Config{Host: srv.URL, WarningHandler: &h})
	if _, err := c.AutoscalingV2().HorizontalPodAutoscalers("a").List(ctxT(t), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(h.got) != "[299 autoscaling/v2beta2 HorizontalPodAutoscaler is deprecated]" {
		t.Errorf("warnings %q", h.got)
	}
}

// TestWarningsLoggedByDefault: without a handler, warnings go to klog,
// as client-go's do, which Parley routes into its log.
func TestWarningsLoggedByDefault(t *testing.T) {
	c, err := NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if w := c.(clientset).rc.warn; w != (rest.WarningLogger{}) {
		t.Errorf("default warning handler %T, want rest.WarningLogger", w)
	}
}

type warningRecorder struct{ got []string }

func (w *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	w.got = append(w.got, fmt.Sprint(code, " ", text))
}

// TestDecode: answers decode into the typed objects, with client-go's
// empty TypeMeta.
func TestDecode(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			writeJSON(w, 200, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.2"})
		default:
			writeJSON(w, 200, &appsv1.DeploymentList{TypeMeta: metav1.TypeMeta{Kind: "DeploymentList", APIVersion: "apps/v1"},
				ListMeta: metav1.ListMeta{Continue: "next"},
				Items:    []appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: ptr[int32](3)}}}})
		}
	})
	c, _ := newClient(t, &rest.Config{Host: srv.URL})
	l, err := c.AppsV1().Deployments("").List(ctxT(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Kind != "" || l.Continue != "next" || len(l.Items) != 1 || *l.Items[0].Spec.Replicas != 3 {
		t.Errorf("got %+v", l)
	}
	v, err := c.ServerVersion(ctxT(t))
	if err != nil || v.GitVersion != "v1.37.2" || v.Minor != "37" {
		t.Errorf("version %+v, %v", v, err)
	}
}

// TestNoClientset guards the point of this package: it must not link
// client-go's clientset, whose scheme registers every API group at init.
func TestNoClientset(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to list dependencies: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "k8s.io/client-go/kubernetes") {
			t.Errorf("internal/kube depends on %s", p)
		}
	}
	if !strings.Contains(string(out), "k8s.io/client-go/rest\n") {
		t.Errorf("the dependency list does not hold k8s.io/client-go/rest; is it right?\n%s", out)
	}
}
