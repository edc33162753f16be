package useraction

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// HTTP runner limits.
const (
	DefaultHTTPTimeout = 10 * time.Second
	MaxHTTPTimeout     = 2 * time.Minute
	// MaxResponse is the most of a response body read; a longer body is
	// cut there (the reply says so) and not parsed as JSON.
	MaxResponse = 1 << 20
	// maxRedirects same-host redirects are followed; another host never.
	maxRedirects = 3
	// excerptLen is how much of an unexpected answer's body a failure shows.
	excerptLen = 300
)

var httpKeys = []string{"method", "url", "headers", "json", "timeout", "expect"}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// headerNameRE is an HTTP header field name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")

// managedHeaders are set by the HTTP client or by Parley, never by a file.
var managedHeaders = []string{"host", "content-length", "transfer-encoding", "connection", "te", "trailer", "upgrade", "x-parley-request-id"}

// credentialHeaderRE names headers whose value is a credential: they take
// a secret reference, never a literal.
var credentialHeaderRE = regexp.MustCompile(`(?i)(authorization|cookie|token|secret|password|passwd|api[-_]?key|access[-_]?key|credential|session|signature|auth)`)

// RequestIDHeader carries the Parley request id on every request a user-
// defined HTTP action sends, so the receiving service can log it and drop
// a repeat.
const RequestIDHeader = "X-Parley-Request-Id"

type httpRunner struct {
	method  string
	url     *urlTemplate
	headers []header
	body    jsonValue // nil: no body
	timeout time.Duration
	expect  []int
	client  *http.Client
}

type header struct {
	name    string
	literal string
	secret  *secretRef
}

func (l *loader) parseHTTP(n *yaml.Node, kind action.Kind, params []string, o *Options) (*httpRunner, bool) {
	h := &httpRunner{method: http.MethodGet, timeout: DefaultHTTPTimeout}
	ok := true
	var urlNode, methodNode, bodyNode *yaml.Node
	var rawURL string
	if !l.mapping(n, "run.http", httpKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "method":
			methodNode = v
			m, good := l.text(v, "run.http.method")
			if !good {
				ok = false
				return
			}
			h.method = strings.ToUpper(strings.TrimSpace(m))
			if !slices.Contains(methods, h.method) {
				l.errorf(v, "run.http.method: %q is not one of %s", m, strings.Join(methods, ", "))
				ok = false
			}
		case "url":
			urlNode = v
			rawURL, _ = l.text(v, "run.http.url")
		case "headers":
			hs, good := l.parseHeaders(v, o)
			ok = ok && good
			h.headers = hs
		case "json":
			bodyNode = v
		case "timeout":
			d, good := l.duration(v, "run.http.timeout")
			switch {
			case !good:
				ok = false
			case d > MaxHTTPTimeout:
				l.errorf(v, "run.http.timeout: %s is longer than the %s allowed", action.FormatDuration(d), action.FormatDuration(MaxHTTPTimeout))
				ok = false
			case d < time.Second:
				l.errorf(v, "run.http.timeout: %s is too short (at least 1s)", d)
				ok = false
			default:
				h.timeout = d
			}
		case "expect":
			items, good := l.list(v, "run.http.expect")
			if good && len(items) == 0 {
				l.errorf(v, "run.http.expect: empty list (omit it to accept any 2xx)")
				good = false
			}
			for _, it := range items {
				code, g := l.integer(it, "run.http.expect")
				if g && (code < 100 || code > 599) {
					l.errorf(it, "run.http.expect: %d is not an HTTP status", code)
					g = false
				}
				if g && slices.Contains(h.expect, code) {
					l.errorf(it, "run.http.expect: %d listed twice", code)
					g = false
				}
				good = good && g
				h.expect = append(h.expect, code)
			}
			ok = ok && good
		}
	}) {
		return nil, false
	}
	if urlNode == nil {
		l.errorf(n, "run.http: missing url")
		return nil, false
	}
	if rawURL != "" {
		u, err := parseURLTemplate(rawURL, params)
		if err != nil {
			l.errorf(urlNode, "run.http.%v", err)
			ok = false
		}
		h.url = u
	} else {
		ok = false
	}
	if bodyNode != nil {
		if h.method == http.MethodGet || h.method == http.MethodHead {
			l.errorf(bodyNode, "run.http.json: a %s request carries no body; use POST, PUT or PATCH, or send the values in the URL", h.method)
			ok = false
		} else if b, good := l.parseBody(bodyNode, params, 0); good {
			h.body = b
		} else {
			ok = false
		}
	}
	if kind == action.Read && slices.Contains([]string{http.MethodPut, http.MethodPatch, http.MethodDelete}, h.method) {
		l.errorf(methodNode, "run.http.method: a %s changes something, and a read action runs without confirmation: make the action kind: mutating", h.method)
		ok = false
	}
	if ok && h.url != nil && h.url.base.Scheme == "http" && !isLoopback(h.url.base.Hostname()) {
		for _, hd := range h.headers {
			if hd.secret != nil {
				l.errorf(urlNode, "run.http.url: the %s header carries a secret, which plain http would send in clear text to %s: use https", hd.name, h.url.base.Host)
				ok = false
				break
			}
		}
	}
	h.client = o.httpClient(h.timeout)
	return h, ok
}

func (l *loader) parseHeaders(n *yaml.Node, o *Options) ([]header, bool) {
	var out []header
	ok := true
	seen := map[string]bool{}
	l.mapping(n, "run.http.headers", nil, func(name string, k, v *yaml.Node) {
		what := "run.http.headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !headerNameRE.MatchString(name):
			l.errorf(k, "run.http.headers: %q is not a header name", name)
			ok = false
			return
		case slices.Contains(managedHeaders, strings.ToLower(name)):
			l.errorf(k, "run.http.headers: %s is set by Parley, not by the action file", canon)
			ok = false
			return
		case seen[canon]:
			l.errorf(k, "run.http.headers: %s given twice", canon)
			ok = false
			return
		}
		seen[canon] = true
		if v.Kind == yaml.MappingNode {
			s, good := l.parseSecret(v, what, o)
			ok = ok && good
			out = append(out, header{name: canon, secret: s})
			return
		}
		val, good := l.text(v, what)
		if !good {
			ok = false
			return
		}
		switch {
		case credentialHeaderRE.MatchString(name):
			l.errorf(v, "%s: a credential header takes a secret reference, never a literal value: {secret: {env: VAR}, format: \"Bearer %%s\"}", what)
			ok = false
		case redact.Redact(name+": "+val) != name+": "+val || redact.Redact(val) != val:
			l.errorf(v, "%s: the value looks like a credential; give it as {secret: {env: VAR}} instead of writing it in the file", what)
			ok = false
		case strings.Contains(val, "{{"):
			l.errorf(v, "%s: header values are written out; parameters go in the url or the json body", what)
			ok = false
		case strings.ContainsAny(val, "\r\n\x00"):
			l.errorf(v, "%s: a header value cannot hold a line break", what)
			ok = false
		default:
			out = append(out, header{name: canon, literal: val})
		}
	})
	return out, ok
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient returns a client that verifies TLS, follows at most
// maxRedirects redirects on the same scheme and host, and never another.
func (o *Options) httpClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
				return fmt.Errorf("%w: redirected to %s://%s, another host; not followed", errRedirect, req.URL.Scheme, req.URL.Host)
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
			}
			return nil
		},
	}
}

var errRedirect = errors.New("redirect refused")

// httpRequest is one rendered request: exactly what is sent, and what the
// confirmation prompt shows.
type httpRequest struct {
	method  string
	url     string
	headers []header
	body    []byte
}

func (h *httpRunner) render(p action.Params, data map[string]any) (httpRequest, error) {
	u, err := h.url.render(data)
	if err != nil {
		return httpRequest{}, err
	}
	r := httpRequest{method: h.method, url: u.String(), headers: h.headers}
	if h.body != nil {
		if r.body, err = renderJSON(h.body, p, data); err != nil {
			return httpRequest{}, err
		}
	}
	return r, nil
}

// String shows the request as people confirm it: method, URL, headers
// (secrets as <secret>) and body.
func (r httpRequest) String() string {
	var b strings.Builder
	b.WriteString(r.method + " " + r.url)
	for _, h := range r.headers {
		v := h.literal
		if h.secret != nil {
			v = h.secret.display()
		}
		fmt.Fprintf(&b, ", %s: %s", h.name, v)
	}
	if r.body != nil {
		b.WriteString(", body ")
		b.Write(r.body)
	}
	return b.String()
}

// send performs the request. Every error says what was sent and never
// holds a secret.
func (h *httpRunner) send(ctx context.Context, r httpRequest, requestID, userAgent string) (*httpResponse, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", r.method, r.url, err)
	}
	var secrets []string
	for _, hd := range r.headers {
		v := hd.literal
		if hd.secret != nil {
			s, err := hd.secret.read()
			if err != nil {
				return nil, fmt.Errorf("%w: header %s: %v", action.ErrNotConfigured, hd.name, err)
			}
			secrets = append(secrets, s)
			v = strings.Replace(hd.secret.format, "%s", s, 1)
		}
		req.Header.Set(hd.name, v)
	}
	if r.body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if requestID != "" {
		req.Header.Set(RequestIDHeader, requestID)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, h.sendError(ctx, r, err, secrets)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, h.sendError(ctx, r, fmt.Errorf("reading the answer: %w", err), secrets)
	}
	out := &httpResponse{status: resp.StatusCode, statusText: resp.Status, contentType: resp.Header.Get("Content-Type"), secrets: secrets}
	if len(data) > MaxResponse {
		data, out.truncated = data[:MaxResponse], true
	}
	out.body = data
	return out, nil
}

// sendError words a failed exchange: a timeout says that the server may
// have acted; a refused redirect or a TLS failure says what happened.
func (h *httpRunner) sendError(ctx context.Context, r httpRequest, err error, secrets []string) error {
	msg := scrub(err.Error(), secrets)
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err) {
		return fmt.Errorf("%w: %s %s got no complete answer within %s (timed out); the server may or may not have acted on it",
			context.DeadlineExceeded, r.method, r.url, action.FormatDuration(h.timeout))
	}
	if errors.Is(err, errRedirect) {
		return fmt.Errorf("%s %s: %s", r.method, r.url, msg)
	}
	return fmt.Errorf("%w: %s %s: %s", action.ErrUnavailable, r.method, r.url, msg)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// httpResponse is what came back, capped at MaxResponse.
type httpResponse struct {
	status      int
	statusText  string
	contentType string
	body        []byte
	truncated   bool
	secrets     []string // values sent, scrubbed from anything shown
}

func (h *httpRunner) expected(status int) bool {
	if len(h.expect) == 0 {
		return status >= 200 && status < 300
	}
	return slices.Contains(h.expect, status)
}

func (h *httpRunner) expectText() string {
	if len(h.expect) == 0 {
		return "a 2xx status"
	}
	var s []string
	for _, c := range h.expect {
		s = append(s, strconv.Itoa(c))
	}
	return strings.Join(s, " or ")
}

// value is the response as the reply template sees it: the parsed JSON
// when the body is JSON (whole numbers as integers), else the text.
func (r *httpResponse) value() any {
	if !r.truncated && len(bytes.TrimSpace(r.body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil && !dec.More() {
			return numbers(v)
		}
	}
	return scrub(string(r.body), r.secrets)
}

// numbers turns json.Number into int64 when whole, float64 otherwise.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// excerpt is the start of the body on one line, redacted, for a failure.
func (r *httpResponse) excerpt() string {
	s := string(r.body)
	if len(s) > 4*excerptLen {
		s = s[:4*excerptLen]
	}
	s = strings.Join(strings.Fields(scrub(s, r.secrets)), " ")
	s = redact.Redact(s)
	if len(s) > excerptLen {
		cut := excerptLen
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// scrub replaces the secrets sent with <secret>, whatever shape they have:
// a server that echoes a header must not put it in the chat.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<secret>")
		}
	}
	return s
}

// failure is the error of an unexpected status: the status, what was
// expected and a short redacted excerpt of the body. 401 and 403 are the
// backend refusing, 404 a missing target.
func (h *httpRunner) failure(r httpRequest, resp *httpResponse) error {
	kind := errStatus
	switch resp.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		kind = action.ErrForbidden
	case http.StatusNotFound:
		kind = action.ErrNotFound
	}
	msg := fmt.Sprintf("%s %s answered %s (expected %s)", r.method, r.url, resp.statusText, h.expectText())
	if ex := resp.excerpt(); ex != "" {
		msg += ": " + ex
	}
	return fmt.Errorf("%w: %s", kind, msg)
}

var errStatus = errors.New("unexpected HTTP status")
