// Package loki implements the loki.query action: it turns a service, a log
// level, a text filter and a window into LogQL (or takes raw LogQL as
// typed), runs it against Loki's HTTP API (GET /loki/api/v1/query_range)
// and answers with the newest matching lines, counts by level, the LogQL
// used and a Grafana Explore link.
//
// Every log line passes through internal/redact before it reaches the
// reply: logs carry tokens and passwords more often than anyone intends.
// Filter text is written into LogQL as a quoted string literal with Go
// escaping, which is how Loki's lexer reads it, so a filter can never
// break out of its string.
package loki

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// Defaults and bounds.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultWindow   = time.Hour
	DefaultLimit    = 20
	MaxLimit        = 5000
	DefaultSelector = `{app="{{.Service}}"}`
	// MaxResponseBytes bounds how much of a Loki answer is read.
	MaxResponseBytes = 8 << 20
	// maxChatLines is how many lines one reply shows; the rest are counted.
	maxChatLines = 30
	// maxLineLen is where a shown line is cut, in bytes.
	maxLineLen = 200
)

// howToConfigure ends the not-configured answer.
const howToConfigure = `Loki is not configured. Point Parley at it with loki.url in the config file (see README, "Configuration").`

// Options configure the loki.query action.
type Options struct {
	// URL is Loki's base URL, e.g. http://loki.monitoring:3100 (a path
	// prefix is kept: https://gw.example.com/loki). Empty: the action
	// answers that Loki is not configured. User info in the URL is used as
	// basic auth and never shown.
	URL string
	// TenantID is sent as X-Scope-OrgID when set (multi-tenant Loki).
	TenantID string
	// BearerToken, or Username and Password, authenticate to Loki. They
	// never appear in a log line or an error.
	BearerToken string
	Username    string
	Password    string
	// Timeout bounds each Run, the HTTP call included (default 10s).
	Timeout time.Duration
	// Client is the HTTP client (default: a new http.Client).
	Client *http.Client
	// Selector is a text/template for the stream selector of a service;
	// {{.Service}} is the service name, escaped for a double-quoted LogQL
	// string. Default {app="{{.Service}}"}; for example
	// {namespace=~"prod|staging", app="{{.Service}}"}.
	Selector string
	// LevelLabel, when set (e.g. "level" or "detected_level"), selects by
	// level with a label filter on that label. When empty, a level is a
	// case-insensitive line filter matching level=error, "level":"error"
	// and the bare word, which works on unlabelled logs.
	LevelLabel string
	// DefaultWindow is the window when none is asked for (default 1h).
	DefaultWindow time.Duration
	// DefaultLimit is the line limit when none is asked for (default 20,
	// at most 5000).
	DefaultLimit int
	// GrafanaURL and GrafanaDatasource (the Loki data source's uid), when
	// both are set, add a Grafana Explore link to each answer.
	GrafanaURL        string
	GrafanaDatasource string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives query failures (default: discarded).
	Logger *slog.Logger
}

// Query is the loki.query action.
type Query struct {
	spec     action.Spec
	o        Options
	base     *url.URL // without user info
	selector *template.Template
	// err is a configuration problem found by New; Run answers it.
	err error
}

// New returns the loki.query action. It never fails: a missing URL or an
// invalid option makes every Run answer action.ErrNotConfigured with the
// reason, so the bot still starts. Call Validate first to stop on a bad
// configuration instead.
func New(o Options) *Query {
	q := &Query{spec: querySpec()}
	q.o, q.base, q.selector, q.err = o.check()
	if q.o.Logger != nil {
		q.o.Logger = q.o.Logger.With("action", action.LokiQuery)
	}
	return q
}

// Validate reports whether o is a usable configuration. An empty URL is
// valid (Loki is simply not configured).
func (o Options) Validate() error {
	if strings.TrimSpace(o.URL) == "" {
		return nil
	}
	_, _, _, err := o.check()
	return err
}

func (o Options) check() (Options, *url.URL, *template.Template, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DefaultWindow == 0 {
		o.DefaultWindow = DefaultWindow
	}
	if o.DefaultLimit == 0 {
		o.DefaultLimit = DefaultLimit
	}
	if o.Selector == "" {
		o.Selector = DefaultSelector
	}
	if strings.TrimSpace(o.URL) == "" {
		return o, nil, nil, fmt.Errorf("%w: %s", action.ErrNotConfigured, howToConfigure)
	}
	fail := func(format string, args ...any) (Options, *url.URL, *template.Template, error) {
		return o, nil, nil, fmt.Errorf("%w: loki: %s", action.ErrNotConfigured, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("loki.url must be an http(s) URL such as http://loki:3100")
	}
	if u.User != nil {
		if o.Username == "" && o.BearerToken == "" {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
		}
		u.User = nil
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	if o.BearerToken != "" && (o.Username != "" || o.Password != "") {
		return fail("set either a bearer token or a username and password, not both")
	}
	if o.Timeout < 0 || o.DefaultWindow < 0 {
		return fail("timeout and default window must be positive")
	}
	if o.DefaultLimit < 1 || o.DefaultLimit > MaxLimit {
		return fail("default limit must be between 1 and %d", MaxLimit)
	}
	if o.LevelLabel != "" && !validLabelName(o.LevelLabel) {
		return fail("level label %q is not a valid label name", o.LevelLabel)
	}
	if (o.GrafanaURL == "") != (o.GrafanaDatasource == "") {
		return fail("set both the Grafana URL and the Loki data source uid, or neither")
	}
	if o.GrafanaURL != "" {
		g, err := url.Parse(o.GrafanaURL)
		if err != nil || (g.Scheme != "http" && g.Scheme != "https") || g.Host == "" || g.User != nil {
			return fail("the Grafana URL must be an http(s) URL without user info")
		}
		o.GrafanaURL = strings.TrimRight(o.GrafanaURL, "/")
	}
	tmpl, err := template.New("selector").Option("missingkey=error").Parse(o.Selector)
	if err != nil {
		return fail("selector template: %v", err)
	}
	// Try the template once, so a broken one stops the program at start.
	var b bytes.Buffer
	if err := tmpl.Execute(&b, selectorData{Service: "x"}); err != nil {
		return fail("selector template: %v", err)
	}
	if s := strings.TrimSpace(b.String()); !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return fail("selector template must produce a stream selector such as {app=\"x\"}, got %s", s)
	}
	return o, u, tmpl, nil
}

// Spec returns the catalog spec of loki.query.
func (q *Query) Spec() action.Spec { return q.spec }

// Run queries Loki.
func (q *Query) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if q.err != nil {
		return action.Result{}, q.err
	}
	plan, err := q.build(req.Params)
	if err != nil {
		return action.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	resp, err := q.queryRange(ctx, plan)
	if err != nil {
		q.o.Logger.Warn("loki query failed", "request", req.RequestID, "err", err)
		return action.Result{}, err
	}
	return q.render(plan, resp), nil
}

func validLabelName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
