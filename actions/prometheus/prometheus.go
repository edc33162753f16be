// Package prometheus implements Parley's prometheus.query action against a
// real Prometheus HTTP API (client_golang's api/prometheus/v1).
//
// A named metric ("error rate of checkout over the last hour") becomes
// PromQL through a text/template kept in configuration (Templates; see
// DefaultTemplates), so operators adapt the queries to their own labels.
// The reply gives the value now with units, the value one window ago, the
// PromQL used and a PNG chart of the window. A raw PromQL expression
// ("`sum(rate(http_requests_total[5m]))`") is run as written and answered by
// result type: a value, a table of series, or a chart.
//
// Every call to Prometheus runs under one deadline (Options.Timeout), and
// every failure maps to an action error kind with a message a person can
// act on; credentials never appear in errors or logs.
package prometheus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/parley-chatops/parley/internal/action"
)

// Defaults.
const (
	DefaultTimeout = 10 * time.Second
	DefaultWindow  = time.Hour
	// RateRange is the longest range of rate() and increase() for the
	// value "now": long enough to smooth scrapes, short enough to be now.
	RateRange = 5 * time.Minute
	// ChartPoints is about how many points a chart has.
	ChartPoints = 60
	// MaxRows is the most series a raw query's table shows.
	MaxRows = 20
)

// howToConfigure is the answer while no URL is set.
const howToConfigure = "Prometheus is not configured. Point Parley at it with prometheus.url in the config file (see README, \"Configuration\")."

// Options configure the action.
type Options struct {
	// URL of the Prometheus server (or a compatible API such as Thanos
	// Query or Mimir's Prometheus path), e.g. http://prometheus:9090.
	// Empty: the action is registered but answers action.ErrNotConfigured.
	URL string
	// Timeout bounds each run, all of its queries together. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Transport carries the requests; nil means a default transport.
	// Use it for TLS settings or proxies.
	Transport http.RoundTripper
	// BearerToken, when set, is sent as "Authorization: Bearer …".
	BearerToken string
	// Username and Password, when set, are sent as basic auth. A URL with
	// userinfo (http://user:pass@host) is read the same way.
	Username, Password string
	// Templates override DefaultTemplates per metric name (error_rate,
	// latency_p99, …). Each is a text/template over TemplateData.
	Templates map[string]string
	// DefaultWindow is the window when a request names none (default 1h).
	DefaultWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per query; nil discards.
	Logger *slog.Logger
}

// TemplateData is what a metric template sees.
type TemplateData struct {
	Service string // validated: letters, digits and _ . : - only
	Window  string // a Prometheus duration for rate()/increase(): "5m"
}

// Query is the prometheus.query action.
type Query struct {
	spec      action.Spec
	api       v1.API
	client    api.Client
	host      string // for messages: host[:port], never userinfo
	timeout   time.Duration
	window    time.Duration
	templates map[string]*template.Template
	sources   map[string]string // template text, for errors
	now       func() time.Time
	log       *slog.Logger
	secrets   []string // scrubbed from every error text
}

var _ action.Action = (*Query)(nil)

// serviceName is what a service may be called: it goes into PromQL label
// matchers, so nothing that could end or escape a string is allowed.
var serviceName = regexp.MustCompile(`^[a-zA-Z0-9_.:-]+$`)

// New builds the action. An empty URL gives an action that answers how to
// configure it, so the app can always register it; a malformed URL,
// conflicting credentials or a template that does not parse are errors.
func New(o Options) (*Query, error) {
	q := &Query{spec: querySpec(), timeout: o.Timeout, window: o.DefaultWindow, now: o.Now, log: o.Logger}
	if q.timeout < 0 || q.window < 0 {
		return nil, fmt.Errorf("prometheus: negative timeout or default window")
	}
	if q.timeout == 0 {
		q.timeout = DefaultTimeout
	}
	if q.window == 0 {
		q.window = DefaultWindow
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.log = q.log.With("action", action.PrometheusQuery)

	if err := q.parseTemplates(o.Templates); err != nil {
		return nil, err
	}
	if strings.TrimSpace(o.URL) == "" {
		return q, nil
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse's error quotes the URL, which may hold a password.
		return nil, fmt.Errorf("prometheus: url must be http(s)://host[:port][/path], got %q", redactURL(o.URL))
	}
	user, pass := o.Username, o.Password
	if u.User != nil {
		if user != "" || pass != "" {
			return nil, errors.New("prometheus: credentials given both in the url and as username/password")
		}
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	if o.BearerToken != "" && (user != "" || pass != "") {
		return nil, errors.New("prometheus: set either a bearer token or basic auth, not both")
	}
	for _, s := range []string{o.BearerToken, pass} {
		if s != "" {
			q.secrets = append(q.secrets, s)
		}
	}
	if pass != "" { // as it travels in the Authorization header
		q.secrets = append(q.secrets, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	rt := o.Transport
	if rt == nil {
		rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	if o.BearerToken != "" || user != "" || pass != "" {
		rt = &authTransport{next: rt, bearer: o.BearerToken, user: user, pass: pass}
	}
	client, err := api.NewClient(api.Config{Address: u.String(), RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus: client for %s: %v", u.Host, err)
	}
	q.client = client
	q.api = v1.NewAPI(client)
	q.host = u.Host
	return q, nil
}

// Spec implements action.Action.
func (q *Query) Spec() action.Spec { return q.spec }

// Configured reports whether a Prometheus URL was given.
func (q *Query) Configured() bool { return q.api != nil }

// CloseIdleConnections closes the kept-alive connections to Prometheus
// and the goroutines that serve them; call it when shutting down.
func (q *Query) CloseIdleConnections() {
	if c, ok := q.client.(api.CloseIdler); ok {
		c.CloseIdleConnections()
	}
}

// Run implements action.Action.
func (q *Query) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if q.api == nil {
		return action.Result{}, fmt.Errorf("%w: %s", action.ErrNotConfigured, howToConfigure)
	}
	window, windowGiven, err := q.windowOf(req.Params)
	if err != nil {
		return action.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	var res action.Result
	if raw := req.Params.String("query"); raw != "" {
		res, err = q.runRaw(ctx, raw, window, windowGiven)
	} else {
		res, err = q.runMetric(ctx, req.Params, window)
	}
	if err != nil {
		return action.Result{}, q.scrub(err)
	}
	return res, nil
}

func (q *Query) windowOf(p action.Params) (time.Duration, bool, error) {
	w := p.String("window")
	if w == "" {
		return q.window, false, nil
	}
	d, err := action.ParseDuration(w)
	if err != nil {
		return 0, false, fmt.Errorf("%w: window: %v", action.ErrInvalid, err)
	}
	return d, true, nil
}

// parallel runs fns at once and waits for all of them.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(fn)
	}
	wg.Wait()
}

// authTransport adds credentials to each request. It never logs them.
type authTransport struct {
	next       http.RoundTripper
	bearer     string
	user, pass string
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not modify the request it was given
	if a.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+a.bearer)
	} else {
		r.SetBasicAuth(a.user, a.pass)
	}
	return a.next.RoundTrip(r)
}

// scrub removes every secret from err's text, keeping its kind. It is the
// last line of defence: messages are built from the host only, but a
// library error could quote a request.
func (q *Query) scrub(err error) error {
	msg := err.Error()
	clean := msg
	for _, s := range q.secrets {
		clean = strings.ReplaceAll(clean, s, "<secret>")
	}
	if clean == msg {
		return err
	}
	for _, kind := range []error{action.ErrInvalid, action.ErrUnavailable, action.ErrForbidden, action.ErrNotConfigured, action.ErrNotFound, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, kind) {
			return &scrubbed{msg: clean, kind: kind}
		}
	}
	return errors.New(clean)
}

type scrubbed struct {
	msg  string
	kind error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.kind }

// redactURL hides the password of a URL-looking string.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return "…" + s[at:]
	}
	return s
}

// metricNames lists the named metrics.
func metricNames() string {
	return strings.Join(slices.Sorted(slices.Values(Metrics)), ", ")
}
