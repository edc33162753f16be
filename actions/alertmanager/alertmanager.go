// Package alertmanager implements Parley's on-call actions on Prometheus
// Alertmanager, through its API v2:
//
//   - alertmanager.alerts (read): what is firing, grouped by alert name and
//     service, with how long each group has fired and whether it is
//     silenced or inhibited;
//   - alertmanager.silence (mutating): a silence on an alert name and/or a
//     service for a bounded time, created with the requester's platform id
//     as its creator; never a silence that matches everything;
//   - alertmanager.expire (mutating): ends a silence.
//
// The mutating actions implement action.Planner: the plan shows exactly
// what will change (the matchers and end of the silence and the alerts it
// silences now; the silence that will end) and fingerprints the state it
// depends on, so a silence someone else created or changed meanwhile
// stops the confirmed request instead of being duplicated or ended
// blindly.
//
// Each action declares its Spec (typed parameters, examples, vocabulary)
// next to its implementation; internal/app registers them explicitly.
package alertmanager

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// Action names.
const (
	AlertsName  = "alertmanager.alerts"
	SilenceName = "alertmanager.silence"
	ExpireName  = "alertmanager.expire"
)

// Defaults and bounds.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultServiceLabel = "service"
	// DefaultSilence is how long a silence lasts when the request does not
	// say.
	DefaultSilence = time.Hour
	// MinSilence and MaxSilence bound a silence: long enough to matter,
	// never so long that it outlives the incident by days.
	MinSilence = time.Minute
	MaxSilence = 7 * 24 * time.Hour
)

// Options configure the client the three actions share.
type Options struct {
	// URL is Alertmanager's base URL (http://alertmanager:9093). Empty
	// means not configured: the actions answer so.
	URL string
	// ExternalURL is Alertmanager's address for people, for links; empty
	// means URL.
	ExternalURL string
	// Timeout bounds each API call; zero means DefaultTimeout.
	Timeout time.Duration
	// BearerToken or BasicUser/BasicPassword authenticate every call;
	// at most one.
	BearerToken              string
	BasicUser, BasicPassword string
	// ServiceLabel is the label a service parameter matches; empty means
	// "service".
	ServiceLabel string
	// HTTPClient sends the calls; nil means a client that follows no
	// redirects (an API answer never redirects, and a redirect must not
	// carry the credentials elsewhere).
	HTTPClient *http.Client
	// Now is the clock (silence start and end, how long alerts fired); nil
	// means time.Now.
	Now func() time.Time
}

// labelNameRE is a Prometheus label name.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// NewClient checks the options and returns the client. It does no I/O.
func NewClient(o Options) (*Client, error) {
	c := &Client{timeout: o.Timeout, http: o.HTTPClient, serviceLabel: o.ServiceLabel, now: o.Now,
		authorize: func(*http.Request) {}}
	if c.timeout < 0 {
		return nil, fmt.Errorf("alertmanager: negative timeout %s", c.timeout)
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.serviceLabel == "" {
		c.serviceLabel = DefaultServiceLabel
	}
	if !labelNameRE.MatchString(c.serviceLabel) {
		return nil, fmt.Errorf("alertmanager: service label %q is not a label name", c.serviceLabel)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		c.http = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.URL == "" {
		return c, nil
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager: %q is not an http(s) URL", o.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("alertmanager: credentials in the URL are not allowed; use the auth options")
	}
	c.base = u
	c.external = o.ExternalURL
	if c.external == "" {
		c.external = o.URL
	}
	switch {
	case o.BearerToken != "" && o.BasicUser != "":
		return nil, fmt.Errorf("alertmanager: give a bearer token or basic auth, not both")
	case o.BearerToken != "":
		c.authorize = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+o.BearerToken) }
	case o.BasicUser != "":
		cred := base64.StdEncoding.EncodeToString([]byte(o.BasicUser + ":" + o.BasicPassword))
		c.authorize = func(r *http.Request) { r.Header.Set("Authorization", "Basic "+cred) }
	}
	return c, nil
}

// Parameters the actions share.

// namePattern is what an alert name or a service may look like in a
// request: label-value characters people type, no quotes or spaces, so a
// matcher built from it is exactly what was asked.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_:.\-/]{1,200}$`)

func alertnameParam(desc string) action.Param {
	return action.Param{Name: "alertname", Type: action.String, Pattern: namePattern, Description: desc,
		Words: []string{"alert", "alertname", "alert name"}}
}

func serviceParam(desc string) action.Param {
	return action.Param{Name: "service", Type: action.String, Source: action.Services, Pattern: namePattern, Description: desc,
		Words: []string{"service", "svc", "app"}}
}

// equalMatcher is name="value".
func equalMatcher(name, value string) Matcher {
	return Matcher{Name: name, Value: value, IsEqual: ptr(true)}
}

func ptr[T any](v T) *T { return &v }

// Specs are the Alertmanager actions' public contracts, in help order.
func Specs() []action.Spec { return []action.Spec{AlertsSpec(), SilenceSpec(), ExpireSpec()} }
