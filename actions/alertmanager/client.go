package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// Client speaks Alertmanager's API v2: alerts, silences. Every call has
// the client's deadline (Options.Timeout) on top of the caller's context,
// reads at most maxResponse bytes, and turns HTTP failures into the
// action error kinds with Alertmanager's own message.
type Client struct {
	base         *url.URL // nil when not configured
	external     string
	timeout      time.Duration
	http         *http.Client
	authorize    func(*http.Request)
	serviceLabel string
	now          func() time.Time
}

// maxResponse bounds what one answer may hold. A very large Alertmanager
// answers "all alerts" with a few MiB; beyond this the request is refused
// with advice to narrow it.
const maxResponse = 8 << 20

// Matcher is one label matcher of a silence or an alert filter.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual,omitempty"` // nil means true (older Alertmanagers omit it)
}

// equal reports whether m matches equality (= or =~) rather than
// inequality.
func (m Matcher) equal() bool { return m.IsEqual == nil || *m.IsEqual }

// String is Alertmanager's text form: name="value", name!~"re".
func (m Matcher) String() string {
	op := "="
	switch {
	case m.IsRegex && m.equal():
		op = "=~"
	case m.IsRegex:
		op = "!~"
	case !m.equal():
		op = "!="
	}
	return m.Name + op + quote(m.Value)
}

// quote writes a matcher value the way Alertmanager's matcher parser reads
// it back: double quotes, with backslash, quote and newline escaped.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

// Matchers is a set of matchers, written {a="x", b="y"}.
type Matchers []Matcher

func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Alert is one alert as GET /api/v2/alerts returns it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	Fingerprint  string            `json:"fingerprint"`
	GeneratorURL string            `json:"generatorURL"`
	Status       AlertStatus       `json:"status"`
}

// AlertStatus says whether an alert notifies: state "active", or
// "suppressed" by the silences and inhibiting alerts listed, or
// "unprocessed" (just received).
type AlertStatus struct {
	State       string   `json:"state"`
	SilencedBy  []string `json:"silencedBy"`
	InhibitedBy []string `json:"inhibitedBy"`
}

// Silence is one silence as Alertmanager stores it.
type Silence struct {
	ID        string        `json:"id,omitempty"`
	Matchers  Matchers      `json:"matchers"`
	StartsAt  time.Time     `json:"startsAt"`
	EndsAt    time.Time     `json:"endsAt"`
	UpdatedAt time.Time     `json:"updatedAt,omitzero"`
	CreatedBy string        `json:"createdBy"`
	Comment   string        `json:"comment"`
	Status    SilenceStatus `json:"status,omitzero"`
}

// SilenceStatus is "active", "pending" (starts later) or "expired".
type SilenceStatus struct {
	State string `json:"state"`
}

// Silence states.
const (
	SilenceActive  = "active"
	SilencePending = "pending"
	SilenceExpired = "expired"
)

// Configured reports whether the client has an Alertmanager to talk to.
func (c *Client) Configured() bool { return c.base != nil }

// ServiceLabel is the alert label a service parameter matches.
func (c *Client) ServiceLabel() string { return c.serviceLabel }

// Alerts returns the alerts matching every matcher: firing ones, including
// silenced and inhibited ones (their Status says so).
func (c *Client) Alerts(ctx context.Context, ms Matchers) ([]Alert, error) {
	q := url.Values{"active": {"true"}, "silenced": {"true"}, "inhibited": {"true"}, "unprocessed": {"true"}}
	for _, m := range ms {
		q.Add("filter", m.String())
	}
	var out []Alert
	if err := c.do(ctx, http.MethodGet, "alerts", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// Silences returns the silences (of every state) whose matchers include
// each of ms; nil ms returns them all.
func (c *Client) Silences(ctx context.Context, ms Matchers) ([]Silence, error) {
	q := url.Values{}
	for _, m := range ms {
		q.Add("filter", m.String())
	}
	var out []Silence
	if err := c.do(ctx, http.MethodGet, "silences", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	return out, nil
}

// Silence returns the silence with the given id; ErrNotFound when there is
// none.
func (c *Client) Silence(ctx context.Context, id string) (Silence, error) {
	var out Silence
	if err := c.do(ctx, http.MethodGet, "silence/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return Silence{}, fmt.Errorf("silence %s: %w", id, err)
	}
	return out, nil
}

// CreateSilence stores a new silence and returns its id.
func (c *Client) CreateSilence(ctx context.Context, s Silence) (string, error) {
	s.ID, s.UpdatedAt, s.Status = "", time.Time{}, SilenceStatus{}
	body, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("create silence: %w", err)
	}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := c.do(ctx, http.MethodPost, "silences", nil, body, &out); err != nil {
		return "", fmt.Errorf("create silence: %w", err)
	}
	if out.SilenceID == "" {
		return "", fmt.Errorf("create silence: %w: Alertmanager answered without a silence id", action.ErrUnavailable)
	}
	return out.SilenceID, nil
}

// ExpireSilence ends the silence with the given id now.
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, "silence/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("expire silence %s: %w", id, err)
	}
	return nil
}

// SilenceLink is the Alertmanager UI page of a silence, for people.
func (c *Client) SilenceLink(id string) string {
	if c.external == "" {
		return ""
	}
	return strings.TrimRight(c.external, "/") + "/#/silences/" + url.PathEscape(id)
}

// configured says what to set when no Alertmanager URL is configured:
// the actions answer with it as it is, before any other wording.
func (c *Client) configured() error {
	if c.base == nil {
		return fmt.Errorf("%w: Alertmanager is not configured. Point Parley at its API with alertmanager.url in the config file (see README, \"Configuration\")", action.ErrNotConfigured)
	}
	return nil
}

// do sends one API call and decodes a 2xx JSON answer into out (nil: the
// body is discarded).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	if err := c.configured(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base.JoinPath("api", "v2", path)
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%w: %v", action.ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return c.transportError(ctx, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("%w: Alertmanager answered more than %d MiB; narrow the request (service, alertname, severity)", action.ErrUnavailable, maxResponse>>20)
	}
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: Alertmanager's answer is not the API v2 JSON expected (%s): %s", action.ErrUnavailable, u.Path, excerpt(data))
	}
	return nil
}

// transportError words a failure to reach Alertmanager or to read its
// answer.
func (c *Client) transportError(ctx context.Context, err error) error {
	where := c.base.Redacted()
	var nerr net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != context.DeadlineExceeded:
		return err
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		return fmt.Errorf("%w: Alertmanager at %s did not answer within %s", action.ErrUnavailable, where, c.timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("%w: Alertmanager at %s is unreachable: %v", action.ErrUnavailable, where, op.Err)
	}
	return fmt.Errorf("%w: Alertmanager at %s: %v", action.ErrUnavailable, where, err)
}

// statusError maps an HTTP error answer to an action error kind, with
// Alertmanager's message (a JSON string or {"message": ...}) cut short
// and redacted.
func statusError(code int, body []byte) error {
	msg := excerpt(body)
	var kind error
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		kind = action.ErrForbidden
		msg = "the credentials were refused (check alertmanager.auth)"
	case code == http.StatusNotFound:
		kind = action.ErrNotFound
	case code == http.StatusBadRequest || code == http.StatusUnprocessableEntity:
		kind = action.ErrInvalid
	case code == http.StatusInternalServerError && strings.Contains(msg, "not found"):
		// Alertmanager answers DELETE of an unknown silence with 500
		// "silence not found".
		kind = action.ErrNotFound
	default:
		kind = action.ErrUnavailable
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	return fmt.Errorf("%w: Alertmanager answered %d: %s", kind, code, msg)
}

// excerpt is a short, redacted, one-line form of an answer body:
// Alertmanager's error message when it is one.
func excerpt(body []byte) string {
	var s string
	var obj struct {
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(body, &s) == nil:
	case json.Unmarshal(body, &obj) == nil && obj.Message != "":
		s = obj.Message
	default:
		s = string(body)
	}
	return redact.Redact(clip(strings.Join(strings.Fields(s), " "), 200))
}

// clip cuts s to at most n bytes at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
