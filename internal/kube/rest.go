package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion/queryparams"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// MaxResponseBytes bounds the body of an API answer that this client reads
// into memory: one object or one page of a list. 64 MiB is far above any
// object the API server stores (etcd's default request limit is 1.5 MiB)
// and leaves room for a large unpaged list; a longer answer is refused
// with an error that says so, instead of growing the process without
// bound. Log streams (Pods.Logs) are not read here and have no bound.
const MaxResponseBytes = 64 << 20

// MaxRetries is how many times one call is retried when the API server
// answers 429 or 5xx with a Retry-After header (waiting the seconds it
// asks for), or a GET fails on a reset connection (after a second): ten,
// as client-go's REST client does. A retry waits for the rate limiter
// like a first attempt, and never outlives the call's context: when the
// server asks for a wait longer than the context has left, the call
// returns the server's answer at once.
const MaxRetries = 10

// Defaults of client-go's REST client, used when the config's QPS and
// Burst are zero.
const (
	DefaultQPS   float32 = 5
	DefaultBurst int     = 10
)

// drainBytes is how much of an unneeded body is read so that its
// connection can be reused.
const drainBytes = 1 << 20

// maxErrorTextBytes caps the text of a non-Status error answer kept in
// the error, as client-go does.
const maxErrorTextBytes = 2048

// restClient speaks JSON to one API server as one identity. It is safe
// for concurrent use.
type restClient struct {
	base    url.URL // scheme, host and any path prefix of cfg.Host
	http    *http.Client
	limiter flowcontrol.RateLimiter // nil: no client-side limit
	timeout time.Duration           // cfg.Timeout: bounds each call, and sent as ?timeout=
	maxBody int64                   // MaxResponseBytes; tests lower it
	warn    rest.WarningHandlerWithContext
	// sleep waits d or until ctx ends; tests shorten it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewForConfig returns a client of the API server cfg describes. TLS,
// bearer tokens and token files, client certificates, exec credential
// plugins (and auth-provider plugins the program registers),
// impersonation, the user agent (client-go's default when empty), the
// proxy and cfg.Timeout work as in client-go: the HTTP client is
// client-go's own (rest.HTTPClientFor), whose transport cache clients of
// one cluster (one per impersonated identity) share. Requests are
// throttled by cfg.RateLimiter, or by a token bucket of cfg.QPS and
// cfg.Burst (5 and 10 when zero, no limit when QPS is negative) shared by
// every group of the client, as client-go's clientset shares one when
// QPS is set.
//
// Bodies are always JSON: cfg.ContentType, cfg.NegotiatedSerializer,
// cfg.GroupVersion and cfg.APIPath are not used (the core group is at
// /api/v1 and named groups at /apis/GROUP/VERSION under cfg.Host, as
// client-go's typed clients do). Warning headers go to
// cfg.WarningHandlerWithContext or cfg.WarningHandler when set, and are
// logged through klog otherwise, as client-go does (Parley routes klog
// into its own logger).
func NewForConfig(cfg *rest.Config) (Interface, error) {
	if cfg == nil {
		return nil, errors.New("kubernetes client: no config")
	}
	cp := *cfg
	if cp.UserAgent == "" {
		cp.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	base, _, err := rest.DefaultServerUrlFor(&cp)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	httpClient, err := rest.HTTPClientFor(&cp)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	limiter := cp.RateLimiter
	if limiter == nil {
		qps, burst := cp.QPS, cp.Burst
		if qps == 0 {
			qps = DefaultQPS
		}
		if burst == 0 {
			burst = DefaultBurst
		}
		if qps > 0 {
			if burst < 0 {
				return nil, fmt.Errorf("kubernetes client: burst %d: it must be positive when QPS is set and RateLimiter is not", burst)
			}
			limiter = flowcontrol.NewTokenBucketRateLimiter(qps, burst)
		}
	}
	c := &restClient{
		base:    *base,
		http:    httpClient,
		limiter: limiter,
		timeout: cp.Timeout,
		maxBody: MaxResponseBytes,
		sleep:   sleepCtx,
	}
	switch {
	case cp.WarningHandlerWithContext != nil:
		c.warn = cp.WarningHandlerWithContext
	case cp.WarningHandler != nil:
		c.warn = warningAdapter{cp.WarningHandler}
	default:
		c.warn = rest.WarningLogger{} // klog, as client-go's default
	}
	return clientset{c}, nil
}

type warningAdapter struct{ h rest.WarningHandler }

func (w warningAdapter) HandleWarningHeaderWithContext(_ context.Context, code int, agent, text string) {
	w.h.HandleWarningHeader(code, agent, text)
}

// call is one API request.
type call struct {
	method string
	// gr and name are the group, resource and object name the request is
	// about, for the generic error of a non-Status answer, as client-go
	// builds it. gr is empty for /version.
	gr   schema.GroupResource
	name string

	path        string // absolute path under the server's base (/api/v1/...)
	query       url.Values
	body        []byte
	contentType string // of body
}

// do sends c and decodes a 2xx answer's body into out (nil: the body is
// read and dropped).
func (rc *restClient) do(ctx context.Context, c call, out any) error {
	// client-go throttles the first attempt before the timeout starts, so
	// a throttled call does not time out before it has been sent.
	if err := rc.throttle(ctx); err != nil {
		return err
	}
	if rc.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rc.timeout)
		defer cancel()
	}
	resp, err := rc.send(ctx, c)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		// The status line is the answer: a delete's body (the object, or
		// a Status) is not needed, and a delete that was done must not be
		// reported as failed over it. Reading it lets the connection be
		// reused; failing to read it only closes the connection.
		io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		return nil
	}
	body, err := readBounded(resp.Body, rc.maxBody)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.method, c.path, err)
	}
	return decodeInto(c, resp, body, out)
}

// stream sends c and returns a 2xx answer's body unread.
func (rc *restClient) stream(ctx context.Context, c call) (io.ReadCloser, error) {
	if err := rc.throttle(ctx); err != nil {
		return nil, err
	}
	// cfg.Timeout bounds the whole stream through the HTTP client's
	// Timeout, as in client-go.
	resp, err := rc.send(ctx, c)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (rc *restClient) throttle(ctx context.Context) error {
	if rc.limiter == nil {
		return nil
	}
	if err := rc.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("client-side rate limit: %w", err)
	}
	return nil
}

// send makes the request, retrying as MaxRetries says, and returns a 2xx
// response (the caller closes its body) or the error the answer means.
// The caller has throttled the first attempt; each retry waits for the
// rate limiter again, as in client-go.
func (rc *restClient) send(ctx context.Context, c call) (*http.Response, error) {
	u := rc.base
	u.Path = strings.TrimSuffix(u.Path, "/") + c.path
	u.RawPath = ""
	q := url.Values{}
	for k, vs := range c.query {
		q[k] = append([]string(nil), vs...)
	}
	if rc.timeout > 0 {
		q.Set("timeout", rc.timeout.String())
	}
	u.RawQuery = q.Encode()
	target := u.String()

	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := rc.throttle(ctx); err != nil {
				return nil, err
			}
		}
		var body io.Reader
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		req, err := http.NewRequestWithContext(ctx, c.method, target, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json, */*")
		if c.body != nil {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := rc.http.Do(req)
		if err != nil {
			// A reset connection or a server shutting down: client-go
			// retries a GET (idempotent) after a second.
			if c.method == http.MethodGet && attempt < MaxRetries && ctx.Err() == nil &&
				(utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err)) {
				if werr := rc.wait(ctx, time.Second, err); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, err
		}
		rc.warnings(ctx, resp)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := responseError(c, resp, rc.maxBody)
		resp.Body.Close()
		if secs, ok := retryAfter(resp); ok && attempt < MaxRetries {
			wait := time.Duration(secs) * time.Second
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
				// Waiting would only end in a deadline error; the
				// server's answer says more.
				return nil, apiErr
			}
			if werr := rc.wait(ctx, wait, apiErr); werr != nil {
				return nil, werr
			}
			continue
		}
		return nil, apiErr
	}
}

// wait sleeps d before a retry; when ctx ends first, the error wraps both
// the context's error and last, the answer that asked for the retry.
func (rc *restClient) wait(ctx context.Context, d time.Duration, last error) error {
	if err := rc.sleep(ctx, d); err != nil {
		return fmt.Errorf("%w while waiting %s to retry after: %w", err, d, last)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryAfter is the answer's Retry-After seconds when it asks for a retry:
// a 429 or a 5xx with an integer Retry-After, as client-go retries.
func retryAfter(resp *http.Response) (int, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return 0, false
	}
	return retryAfterSeconds(resp)
}

func retryAfterSeconds(resp *http.Response) (int, bool) {
	if h := resp.Header.Get("Retry-After"); h != "" {
		if i, err := strconv.Atoi(h); err == nil && i >= 0 {
			return i, true
		}
	}
	return 0, false
}

func (rc *restClient) warnings(ctx context.Context, resp *http.Response) {
	if rc.warn == nil {
		return
	}
	ws, _ := utilnet.ParseWarningHeaders(resp.Header["Warning"]) // malformed ones are skipped, as in client-go
	for _, w := range ws {
		rc.warn.HandleWarningHeaderWithContext(ctx, w.Code, w.Agent, w.Text)
	}
}

// readBounded reads a body of at most limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the response is larger than %d MiB, the most this client reads; ask for less (a label or field selector, or limit and continue)", limit>>20)
	}
	return b, nil
}

// responseError is the error a non-2xx answer means, as client-go makes
// it: a JSON metav1.Status body with status Failure becomes its
// *apierrors.StatusError; any other body a generic error for the status
// code (apierrors.NewGenericServerResponse), whose message is the body
// when it is text.
func responseError(c call, resp *http.Response, limit int64) error {
	body, err := readBounded(resp.Body, limit)
	if err != nil {
		return fmt.Errorf("%s %s: %d %s, and %w", c.method, c.path, resp.StatusCode, http.StatusText(resp.StatusCode), err)
	}
	ct := resp.Header.Get("Content-Type")
	isJSON := ct == "" // client-go assumes its own content type, JSON here
	if ct != "" {
		media, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		isJSON = media == "application/json"
	}
	if isJSON && len(body) > 0 {
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
			st.TypeMeta = metav1.TypeMeta{}
			return &apierrors.StatusError{ErrStatus: st}
		}
	}
	message := "unknown"
	if isTextResponse(ct) {
		if len(body) > maxErrorTextBytes {
			body = body[:maxErrorTextBytes]
		}
		message = strings.TrimSpace(string(body))
	}
	secs, _ := retryAfterSeconds(resp)
	return apierrors.NewGenericServerResponse(resp.StatusCode, c.method, c.gr, c.name, message, secs, true)
}

func isTextResponse(contentType string) bool {
	if contentType == "" {
		return true
	}
	media, _, err := mime.ParseMediaType(contentType)
	return err == nil && strings.HasPrefix(media, "text/")
}

type objectKind interface{ GetObjectKind() schema.ObjectKind }

// decodeInto decodes a 2xx JSON answer into out. A Status answer that is
// not Success is its error (as client-go's Result.Into); an object of
// another kind than out's is an error. Decoded objects have an empty
// TypeMeta, as client-go's typed clients return them.
func decodeInto(c call, resp *http.Response, body []byte, out any) error {
	if len(body) == 0 {
		return fmt.Errorf("%s %s: 0-length response with status code %d and content type %q",
			c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	obj, isObj := out.(objectKind)
	if err := json.Unmarshal(body, out); err != nil {
		if isObj {
			if kindErr := wrongKind(c, body, out); kindErr != nil {
				return kindErr
			}
		}
		return fmt.Errorf("%s %s: decoding the answer: %w", c.method, c.path, err)
	}
	if !isObj {
		return nil
	}
	if kind := obj.GetObjectKind().GroupVersionKind().Kind; kind != "" && kind != kindOf(out) {
		return wrongKind(c, body, out)
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return nil
}

// kindOf is the kind of *T: its type's name (Deployment, PodList, Scale).
func kindOf(out any) string { return reflect.TypeOf(out).Elem().Name() }

// wrongKind is the error of a 2xx answer of another kind than out's (nil
// when it has out's kind or none): the Status's own error when it is a
// Status that is not Success, else an error naming both kinds.
func wrongKind(c call, body []byte, out any) error {
	var tm metav1.TypeMeta
	if json.Unmarshal(body, &tm) != nil || tm.Kind == "" || tm.Kind == kindOf(out) {
		return nil
	}
	if tm.Kind == "Status" {
		var st metav1.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("%s %s: decoding the Status answer: %w", c.method, c.path, err)
		}
		if st.Status != metav1.StatusSuccess {
			st.TypeMeta = metav1.TypeMeta{}
			return &apierrors.StatusError{ErrStatus: st}
		}
	}
	return fmt.Errorf("%s %s: the server answered a %s where a %s was expected", c.method, c.path, tm.Kind, kindOf(out))
}

// encodeObject is obj as JSON with its apiVersion and kind set (callers'
// objects usually have an empty TypeMeta); obj itself is not changed.
func encodeObject[T any](obj *T, gv schema.GroupVersion) ([]byte, error) {
	if obj == nil {
		return nil, errors.New("no object given")
	}
	cp := *obj
	o, ok := any(&cp).(objectKind)
	if !ok {
		return nil, fmt.Errorf("%T is not a Kubernetes object", obj)
	}
	o.GetObjectKind().SetGroupVersionKind(gv.WithKind(reflect.TypeOf(cp).Name()))
	b, err := json.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	return b, nil
}

// params are options as query parameters, as client-go's parameter codec
// writes them (json field names, omitempty fields left out when empty).
func params(opts any) (url.Values, error) {
	v, err := queryparams.Convert(opts)
	if err != nil {
		return nil, fmt.Errorf("options %T: %w", opts, err)
	}
	return v, nil
}

// checkName refuses a name or namespace that cannot be a path segment,
// as client-go's request builder does.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s may not be empty", what)
	case s == "." || s == "..":
		return fmt.Errorf("%s may not be %q", what, s)
	case strings.ContainsAny(s, "/%"):
		return fmt.Errorf("%s may not contain '/' or '%%': %q", what, s)
	}
	return nil
}

// resource is one resource of one group version, in one namespace (or
// all namespaces, or cluster-scoped).
type resource struct {
	rc         *restClient
	gv         schema.GroupVersion
	resource   string
	namespaced bool
	namespace  string // "" with namespaced: all namespaces (lists only)
}

func (r resource) gr() schema.GroupResource {
	return schema.GroupResource{Group: r.gv.Group, Resource: r.resource}
}

// path is the resource's URL path, with name and subresource when given.
func (r resource) path(name, subresource string) string {
	var p string
	if r.gv.Group == "" {
		p = "/api/" + r.gv.Version
	} else {
		p = "/apis/" + r.gv.Group + "/" + r.gv.Version
	}
	if r.namespaced && r.namespace != "" {
		p += "/namespaces/" + r.namespace
	}
	return path.Join(p, r.resource, name, subresource)
}

// named checks what a call on one named object needs.
func (r resource) named(name string) error {
	if r.namespaced {
		if err := checkName("namespace", r.namespace); err != nil {
			return fmt.Errorf("%s %q: %w", r.resource, name, err)
		}
	}
	if err := checkName("resource name", name); err != nil {
		return fmt.Errorf("%s: %w", r.resource, err)
	}
	return nil
}

// objects are the verbs on a resource whose objects are T and lists L.
type objects[T, L any] struct{ resource }

func (o objects[T, L]) Get(ctx context.Context, name string, opts metav1.GetOptions) (*T, error) {
	return getSub[T](ctx, o.resource, name, "", opts)
}

func getSub[T any](ctx context.Context, r resource, name, subresource string, opts metav1.GetOptions) (*T, error) {
	if err := r.named(name); err != nil {
		return nil, err
	}
	q, err := params(&opts)
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := r.rc.do(ctx, call{method: http.MethodGet, gr: r.gr(), name: name, path: r.path(name, subresource), query: q}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (o objects[T, L]) List(ctx context.Context, opts metav1.ListOptions) (*L, error) {
	if r := o.resource; r.namespaced && r.namespace != "" {
		if err := checkName("namespace", r.namespace); err != nil {
			return nil, fmt.Errorf("%s: %w", r.resource, err)
		}
	}
	q, err := params(&opts)
	if err != nil {
		return nil, err
	}
	out := new(L)
	if err := o.rc.do(ctx, call{method: http.MethodGet, gr: o.gr(), path: o.path("", ""), query: q}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (o objects[T, L]) Create(ctx context.Context, obj *T, opts metav1.CreateOptions) (*T, error) {
	r := o.resource
	if r.namespaced {
		if err := checkName("namespace", r.namespace); err != nil {
			return nil, fmt.Errorf("create %s: %w", r.resource, err)
		}
	}
	return write[T](ctx, r, http.MethodPost, "", "", obj, &opts)
}

func (o objects[T, L]) Update(ctx context.Context, obj *T, opts metav1.UpdateOptions) (*T, error) {
	name, err := nameOf(obj)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", o.resource.resource, err)
	}
	if err := o.named(name); err != nil {
		return nil, err
	}
	return write[T](ctx, o.resource, http.MethodPut, name, "", obj, &opts)
}

func nameOf(obj any) (string, error) {
	m, ok := obj.(metav1.Object)
	if !ok || reflect.ValueOf(obj).IsNil() {
		return "", errors.New("no object given")
	}
	return m.GetName(), nil
}

// write POSTs or PUTs obj (as JSON with its TypeMeta set) and decodes
// the answer as an O.
func write[O, I any](ctx context.Context, r resource, method, name, subresource string, obj *I, opts any) (*O, error) {
	body, err := encodeObject(obj, r.bodyGroupVersion(subresource))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", strings.ToLower(method), r.resource, err)
	}
	q, err := params(opts)
	if err != nil {
		return nil, err
	}
	out := new(O)
	c := call{method: method, gr: r.gr(), name: name, path: r.path(name, subresource), query: q, body: body, contentType: "application/json"}
	if err := r.rc.do(ctx, c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// bodyGroupVersion is the apiVersion of the objects a request sends: the
// resource's, except for the scale subresource (autoscaling/v1 Scale).
func (r resource) bodyGroupVersion(subresource string) schema.GroupVersion {
	if subresource == "scale" {
		return schema.GroupVersion{Group: "autoscaling", Version: "v1"}
	}
	return r.gv
}

func (o objects[T, L]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if err := o.named(name); err != nil {
		return err
	}
	// client-go sends DeleteOptions as the body (propagationPolicy,
	// preconditions, gracePeriodSeconds, dryRun).
	opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}
	body, err := json.Marshal(&opts)
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", o.resource.resource, name, err)
	}
	c := call{method: http.MethodDelete, gr: o.gr(), name: name, path: o.path(name, ""), body: body, contentType: "application/json"}
	return o.rc.do(ctx, c, nil)
}

func (o objects[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) (*T, error) {
	if err := o.named(name); err != nil {
		return nil, err
	}
	if pt == "" {
		return nil, fmt.Errorf("patch %s %q: no patch type", o.resource.resource, name)
	}
	if data == nil {
		data = []byte{} // an empty body, not none, as client-go sends it
	}
	q, err := params(&opts)
	if err != nil {
		return nil, err
	}
	out := new(T)
	c := call{method: http.MethodPatch, gr: o.gr(), name: name, path: o.path(name, ""), query: q, body: data, contentType: string(pt)}
	if err := o.rc.do(ctx, c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// serverVersion is GET /version.
func (rc *restClient) serverVersion(ctx context.Context) (*version.Info, error) {
	out := new(version.Info)
	if err := rc.do(ctx, call{method: http.MethodGet, path: "/version"}, out); err != nil {
		return nil, err
	}
	return out, nil
}
