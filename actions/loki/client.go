package loki

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// queryRangePath is Loki's range query endpoint.
const queryRangePath = "/loki/api/v1/query_range"

// response is Loki's query answer:
// {"status":"success","data":{"resultType":"streams","result":[...],"stats":{...}},"warnings":[...]}.
type response struct {
	Status    string   `json:"status"`
	Error     string   `json:"error"`
	ErrorType string   `json:"errorType"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
		Warnings   []string        `json:"warnings"`
	} `json:"data"`
}

// stream is one entry of a "streams" result. A value is
// ["<unix ns>", "<line>"] or, with structured metadata,
// ["<unix ns>", "<line>", {...}].
type stream struct {
	Stream map[string]string   `json:"stream"`
	Values [][]json.RawMessage `json:"values"`
}

// series is one entry of a "matrix" (values) or "vector" (value) result; a
// sample is [<unix seconds>, "<value>"].
type series struct {
	Metric map[string]string    `json:"metric"`
	Values [][2]json.RawMessage `json:"values"`
	Value  [2]json.RawMessage   `json:"value"`
}

// queryRange runs pl against Loki.
func (q *Query) queryRange(ctx context.Context, pl plan) (*response, error) {
	u := *q.base
	u.Path += queryRangePath
	v := url.Values{}
	v.Set("query", pl.LogQL)
	v.Set("limit", strconv.Itoa(pl.Limit))
	v.Set("start", strconv.FormatInt(pl.Start.UnixNano(), 10))
	v.Set("end", strconv.FormatInt(pl.End.UnixNano(), 10))
	v.Set("direction", "backward")
	u.RawQuery = v.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: loki request: %v", action.ErrNotConfigured, err)
	}
	req.Header.Set("Accept", "application/json")
	if q.o.TenantID != "" {
		req.Header.Set("X-Scope-OrgID", q.o.TenantID)
	}
	switch {
	case q.o.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+q.o.BearerToken)
	case q.o.Username != "" || q.o.Password != "":
		req.SetBasicAuth(q.o.Username, q.o.Password)
	}

	res, err := q.o.Client.Do(req)
	if err != nil {
		return nil, q.transportError(ctx, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, q.transportError(ctx, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: Loki's answer is larger than %d MiB; narrow the query, the window or the limit",
			action.ErrUnavailable, MaxResponseBytes>>20)
	}
	if res.StatusCode != http.StatusOK {
		return nil, statusError(res.StatusCode, body)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: Loki answered something that is not a query result (%v)", action.ErrUnavailable, err)
	}
	if r.Status != "success" {
		msg := r.Error
		if msg == "" {
			msg = "status " + strconv.Quote(r.Status)
		}
		return nil, fmt.Errorf("%w: Loki: %s", action.ErrUnavailable, snippet(msg))
	}
	return &r, nil
}

// transportError words a failed HTTP exchange. It never includes the URL:
// url.Error would add the whole query string.
func (q *Query) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: Loki did not answer within %s", action.ErrUnavailable, q.o.Timeout)
		}
		return fmt.Errorf("%w: loki query: %v", action.ErrUnavailable, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: cannot reach Loki at %s: %v", action.ErrUnavailable, q.base.Host, err)
}

// statusError maps a non-200 answer to an action error kind. Loki answers
// a bad query with 400 and the parser's message as plain text.
func statusError(code int, body []byte) error {
	msg := snippet(string(body))
	switch {
	case code == http.StatusBadRequest:
		if msg == "" {
			msg = "bad request"
		}
		return fmt.Errorf("%w: Loki rejected the query: %s", action.ErrInvalid, msg)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: Loki refused Parley's credentials (HTTP %d); check loki.url, the tenant and the token", action.ErrForbidden, code)
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: Loki has no %s here (HTTP 404); check loki.url", action.ErrUnavailable, queryRangePath)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%w: Loki is rate limiting queries (HTTP 429)%s", action.ErrUnavailable, colon(msg))
	default:
		return fmt.Errorf("%w: Loki answered HTTP %d%s", action.ErrUnavailable, code, colon(msg))
	}
}

func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// snippet bounds text from Loki for an error message: one line, redacted,
// at most 300 bytes.
func snippet(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	return cut(redact.Redact(s), 300)
}

// cut shortens s to at most n bytes at a rune boundary, ending in "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
