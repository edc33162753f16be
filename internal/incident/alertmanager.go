package incident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Payload is Alertmanager's webhook notification, version 4, as its
// documentation describes it (prometheus.io/docs/alerting/latest/configuration/#webhook_config).
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert and group statuses.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Bounds on what one notification may hold; Alertmanager's own payloads
// stay far below them.
const (
	maxAlerts      = 5000
	maxLabels      = 64
	maxLabelBytes  = 4 << 10 // one label or annotation value
	maxGroupKeyLen = 4 << 10
)

// errInvalid marks a payload that is not a valid version 4 notification.
var errInvalid = errors.New("invalid Alertmanager notification")

// decodePayload reads and validates one notification. Unknown fields are
// accepted, as Alertmanager adds fields without changing the version;
// everything Parley relies on is checked.
func decodePayload(r io.Reader) (Payload, error) {
	var p Payload
	dec := json.NewDecoder(r)
	if err := dec.Decode(&p); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Payload{}, err
		}
		return Payload{}, fmt.Errorf("%w: body is not JSON: %s", errInvalid, jsonProblem(err))
	}
	if dec.More() {
		return Payload{}, fmt.Errorf("%w: body holds more than one JSON value", errInvalid)
	}
	if err := p.validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type (want %s)", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated body"
	}
	return "malformed body"
}

func (p *Payload) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
	}
	switch {
	case p.Version != "4":
		return bad("version %q is not supported (want \"4\")", clip(p.Version, 20))
	case p.GroupKey == "":
		return bad("groupKey is required")
	case len(p.GroupKey) > maxGroupKeyLen:
		return bad("groupKey is longer than %d bytes", maxGroupKeyLen)
	case p.Status != Firing && p.Status != Resolved:
		return bad("status %q is not firing or resolved", clip(p.Status, 20))
	case p.Receiver == "":
		return bad("receiver is required")
	case len(p.Alerts) == 0:
		return bad("alerts is empty")
	case len(p.Alerts) > maxAlerts:
		return bad("%d alerts in one notification (at most %d)", len(p.Alerts), maxAlerts)
	case p.TruncatedAlerts < 0:
		return bad("truncatedAlerts is negative")
	}
	if p.ExternalURL != "" {
		if u, err := url.Parse(p.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return bad("externalURL is not an http(s) URL")
		}
	}
	for _, m := range []map[string]string{p.GroupLabels, p.CommonLabels, p.CommonAnnotations} {
		if err := checkLabels(m); err != nil {
			return bad("%v", err)
		}
	}
	seen := make(map[string]bool, len(p.Alerts))
	for i, a := range p.Alerts {
		switch {
		case a.Status != Firing && a.Status != Resolved:
			return bad("alerts[%d].status %q is not firing or resolved", i, clip(a.Status, 20))
		case a.Fingerprint == "" || len(a.Fingerprint) > 128:
			return bad("alerts[%d].fingerprint is required (at most 128 bytes)", i)
		case seen[a.Fingerprint]:
			return bad("alerts[%d].fingerprint %s appears twice", i, a.Fingerprint)
		case a.StartsAt.IsZero():
			return bad("alerts[%d].startsAt is required", i)
		case len(a.Labels) == 0:
			return bad("alerts[%d].labels is empty", i)
		case a.Status == Resolved && a.EndsAt.IsZero():
			return bad("alerts[%d] is resolved without endsAt", i)
		}
		seen[a.Fingerprint] = true
		if err := checkLabels(a.Labels); err != nil {
			return bad("alerts[%d].labels: %v", i, err)
		}
		if err := checkLabels(a.Annotations); err != nil {
			return bad("alerts[%d].annotations: %v", i, err)
		}
	}
	return nil
}

// redacted returns p with red applied to every label and annotation value
// and to its URLs, so that a token an alert carries (a failing request's
// Authorization header quoted in a description, a password in a
// generator URL) reaches neither the incidents table, the chat message,
// the audit log nor a model. The group key and fingerprints are ids and
// are kept: a group must stay one group.
func (p Payload) redacted(red func(string) string) Payload {
	values := func(m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = red(v)
		}
		return out
	}
	p.GroupLabels, p.CommonLabels, p.CommonAnnotations = values(p.GroupLabels), values(p.CommonLabels), values(p.CommonAnnotations)
	p.ExternalURL = red(p.ExternalURL)
	alerts := make([]Alert, len(p.Alerts))
	for i, a := range p.Alerts {
		a.Labels, a.Annotations = values(a.Labels), values(a.Annotations)
		a.GeneratorURL = red(a.GeneratorURL)
		alerts[i] = a
	}
	p.Alerts = alerts
	return p
}

func checkLabels(m map[string]string) error {
	if len(m) > maxLabels {
		return fmt.Errorf("%d labels (at most %d)", len(m), maxLabels)
	}
	for k, v := range m {
		if k == "" || len(k) > 256 {
			return errors.New("a label name is empty or too long")
		}
		if len(v) > maxLabelBytes {
			return fmt.Errorf("the value of %s is longer than %d bytes", clip(k, 64), maxLabelBytes)
		}
	}
	return nil
}

// alertname is the alert's name, or "alert" when it has none.
func (a Alert) alertname() string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return "alert"
}

// clip cuts s to n bytes at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	b := []byte(s[:n])
	for len(b) > 0 && b[len(b)-1]&0xC0 == 0x80 {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && b[len(b)-1] >= 0xC0 {
		b = b[:len(b)-1]
	}
	return string(bytes.TrimSpace(b)) + "…"
}
