package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/parley-chatops/parley/internal/action"
)

// apiError maps an error from a Prometheus call to an action error kind,
// with a message that names the host (never the URL with its query or
// credentials) and says what to do.
//
//	deadline, connection refused, DNS, TLS, 5xx, bad JSON -> ErrUnavailable
//	bad_data, execution errors (422)                       -> ErrInvalid, with Prometheus's message
//	401, 403                                               -> ErrForbidden
//	404                                                    -> ErrNotConfigured (wrong URL path)
func (q *Query) apiError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var apiErr *v1.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%w: Prometheus at %s did not answer within %s", action.ErrUnavailable, q.host, q.timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("query to Prometheus at %s cancelled: %w", q.host, context.Canceled)
	case errors.As(err, &apiErr):
		return q.fromAPIError(apiErr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: Prometheus at %s refused the connection: is it running, and is prometheus.url right?", action.ErrUnavailable, q.host)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("%w: cannot resolve Prometheus host %s: %s", action.ErrUnavailable, q.host, dnsErr.Err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("%w: Prometheus at %s did not answer within %s", action.ErrUnavailable, q.host, q.timeout)
	}
	return fmt.Errorf("%w: cannot reach Prometheus at %s: %s", action.ErrUnavailable, q.host, rootCause(err))
}

func (q *Query) fromAPIError(e *v1.Error) error {
	msg := strings.TrimSpace(e.Msg)
	switch e.Type {
	case v1.ErrBadData, v1.ErrExec:
		return fmt.Errorf("%w: Prometheus rejected the query: %s", action.ErrInvalid, msg)
	case v1.ErrTimeout, v1.ErrCanceled:
		return fmt.Errorf("%w: Prometheus at %s gave up on the query (%s): try a shorter window", action.ErrUnavailable, q.host, msg)
	case v1.ErrClient:
		switch code := statusIn(msg); code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: Prometheus at %s refused Parley's credentials (%d %s): check prometheus.bearer_token or basic auth",
				action.ErrForbidden, q.host, code, http.StatusText(code))
		case http.StatusNotFound:
			return fmt.Errorf("%w: no Prometheus API at %s (404): check prometheus.url", action.ErrNotConfigured, q.host)
		}
		return fmt.Errorf("%w: Prometheus at %s answered %s", action.ErrInvalid, q.host, msg)
	case v1.ErrServer:
		return fmt.Errorf("%w: Prometheus at %s answered %s", action.ErrUnavailable, q.host, msg)
	case v1.ErrBadResponse:
		return fmt.Errorf("%w: Prometheus at %s sent a response that is not the Prometheus API (%s)", action.ErrUnavailable, q.host, msg)
	default:
		return fmt.Errorf("%w: Prometheus at %s: %s: %s", action.ErrUnavailable, q.host, e.Type, msg)
	}
}

// statusIn finds the status code in client_golang's "client error: 403".
func statusIn(msg string) int {
	var code int
	if _, err := fmt.Sscanf(msg[strings.LastIndex(msg, " ")+1:], "%d", &code); err != nil {
		return 0
	}
	return code
}

// rootCause returns the innermost error's text, without the *url.Error
// prefix that quotes the request URL.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
