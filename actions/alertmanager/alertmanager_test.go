package alertmanager

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

func TestSpecs(t *testing.T) {
	for _, s := range []action.Spec{AlertsSpec(), SilenceSpec(), ExpireSpec()} {
		t.Run(s.Name, func(t *testing.T) {
			if err := s.Check(); err != nil {
				t.Fatal(err)
			}
			if len(s.Examples) < 4 || len(s.Examples) > 8 {
				t.Errorf("%d examples, want 4 to 8", len(s.Examples))
			}
			for _, e := range s.Examples {
				if _, err := s.Validate(e.Params); err != nil {
					t.Errorf("example %q: %v", e.Text, err)
				}
			}
			if s.Kind == action.Mutating && len(s.Vocabulary.Verbs) == 0 {
				t.Error("a mutating action without verbs can never be chosen")
			}
			if s.Kind == action.Read && len(s.Vocabulary.Cues) == 0 {
				t.Error("a read action without cues")
			}
		})
	}
	// The silence's duration has a default, so policy sees it.
	p, err := SilenceSpec().Validate(map[string]any{"service": "checkout"})
	if err != nil || p["duration"] != "1h" {
		t.Errorf("default duration: %v, %v", p, err)
	}
	for _, bad := range []map[string]any{
		{"alertname": `High"Error`}, {"service": "check out"}, {"severity": "urgent"},
	} {
		spec := AlertsSpec()
		if _, err := spec.Validate(bad); !errors.Is(err, action.ErrInvalid) {
			t.Errorf("Validate(%v) = %v, want invalid", bad, err)
		}
	}
	for _, bad := range []string{"4b03", "not-an-id", "4b031b3b-1067"} {
		if _, err := ExpireSpec().Validate(map[string]any{"silence": bad}); !errors.Is(err, action.ErrInvalid) {
			t.Errorf("silence id %q accepted", bad)
		}
	}
}

func TestSilenceNeverMatchesEverything(t *testing.T) {
	// No server: the request is refused before any call.
	c := newTestClient(t, Options{URL: "http://127.0.0.1:1"})
	s := NewSilencer(c)
	for _, tt := range []struct {
		params action.Params
		want   string
	}{
		{action.Params{"duration": "1h"}, "say which alerts to silence"},
		{action.Params{"service": "checkout", "duration": "8d"}, "a silence lasts between 1m and 1w, not 1w1d"},
		{action.Params{"service": "checkout", "duration": "30s"}, "not 30s"},
		{action.Params{"service": "checkout", "comment": strings.Repeat("x", 501)}, "comment is longer than 500"},
	} {
		for _, call := range []func() error{
			func() error { _, err := s.Plan(context.Background(), request(SilenceName, tt.params)); return err },
			func() error { _, err := s.Run(context.Background(), request(SilenceName, tt.params)); return err },
		} {
			if err := call(); !errors.Is(err, action.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: %v, want %q", tt.params, err, tt.want)
			}
		}
	}
	// Without a requester there is no creator to record.
	r := request(SilenceName, action.Params{"service": "checkout"})
	r.Subject = ""
	if _, err := s.Run(context.Background(), r); !errors.Is(err, action.ErrInvalid) {
		t.Errorf("silence without a requester: %v", err)
	}
}

func TestNotConfigured(t *testing.T) {
	c := newTestClient(t, Options{})
	ctx := context.Background()
	_, e1 := NewAlerts(c).Run(ctx, request(AlertsName, nil))
	_, e2 := NewSilencer(c).Plan(ctx, request(SilenceName, action.Params{"service": "checkout"}))
	_, e3 := NewExpirer(c).Plan(ctx, request(ExpireName, action.Params{"silence": "4b031b3b"}))
	_, e4 := NewSilencer(c).Run(ctx, request(SilenceName, action.Params{"service": "checkout"}))
	_, e5 := NewExpirer(c).Run(ctx, request(ExpireName, action.Params{"silence": "4b031b3b"}))
	for _, err := range []error{e1, e2, e3, e4, e5} {
		// said as it is, not inside what the action was doing
		if !errors.Is(err, action.ErrNotConfigured) || !strings.HasPrefix(err.Error(), "not configured: Alertmanager is not configured") ||
			!strings.Contains(err.Error(), "alertmanager.url") {
			t.Errorf("not configured: %v", err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := newTestClient(t, Options{URL: "http://" + addr, Timeout: 2 * time.Second})
	_, err = NewAlerts(c).Run(context.Background(), request(AlertsName, nil))
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "Alertmanager at http://"+addr+" is unreachable") {
		t.Errorf("unreachable: %v", err)
	}
}

// TestTimeout: a server that accepts the call and never answers (as a
// hung Alertmanager does) is given up after the configured timeout, and
// a silence that may have been created says so.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, Options{URL: srv.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := NewAlerts(c).Run(context.Background(), request(AlertsName, nil))
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("timeout: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the call took %s", time.Since(start))
	}
	_, err = NewSilencer(c).Run(context.Background(), request(SilenceName, action.Params{"service": "checkout", "duration": "1h"}))
	if !errors.Is(err, action.ErrUnavailable) || !strings.Contains(err.Error(), "may or may not exist") {
		t.Errorf("silence timeout: %v", err)
	}
}

func TestStatusErrors(t *testing.T) {
	for _, tt := range []struct {
		code int
		body string
		kind error
		want string
	}{
		{404, ``, action.ErrNotFound, "Alertmanager answered 404: Not Found"},
		{500, `"silence not found"`, action.ErrNotFound, "silence not found"},
		{422, `{"code":601,"message":"silenceID in path must be of type uuid: \"x\""}`, action.ErrInvalid, `must be of type uuid`},
		{400, `"bad matcher format: a=="`, action.ErrInvalid, "bad matcher format"},
		{401, `Unauthorized`, action.ErrForbidden, "credentials were refused"},
		{503, `<html>` + strings.Repeat("busy ", 100) + `</html>`, action.ErrUnavailable, "busy busy"},
		{500, `"db password=hunter2hunter2 leaked"`, action.ErrUnavailable, "password=[REDACTED]"},
	} {
		err := statusError(tt.code, []byte(tt.body))
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 300 || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("statusError(%d, %q) = %v", tt.code, tt.body, err)
		}
	}
}

func TestMatcherText(t *testing.T) {
	ms := Matchers{
		equalMatcher("alertname", `Odd"Name\x`),
		{Name: "env", Value: "prod|staging", IsRegex: true},
		{Name: "team", Value: "ml", IsEqual: ptr(false)},
		{Name: "pod", Value: "a.*", IsRegex: true, IsEqual: ptr(false)},
	}
	if got := ms.String(); got != `{alertname="Odd\"Name\\x", env=~"prod|staging", team!="ml", pod!~"a.*"}` {
		t.Errorf("matchers = %s", got)
	}
}
