package incident

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Auth is how Alertmanager authenticates: a bearer token (its http_config
// authorization) or basic auth. Exactly one must be set.
type Auth struct {
	BearerToken string
	Username    string
	Password    string
}

func (a Auth) check() error {
	switch {
	case a.BearerToken != "" && (a.Username != "" || a.Password != ""):
		return errors.New("set a bearer token or basic auth, not both")
	case a.BearerToken != "":
		return nil
	case a.Username == "" || a.Password == "":
		return errors.New("a bearer token or a basic auth user and password is required")
	}
	return nil
}

// allowed checks the request's credentials in constant time (over
// digests, so the length of the secret does not show either).
func (a Auth) allowed(r *http.Request) bool {
	eq := func(got, want string) bool {
		g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
		return subtle.ConstantTimeCompare(g[:], w[:]) == 1
	}
	if a.BearerToken != "" {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		return ok && strings.EqualFold(scheme, "Bearer") && eq(strings.TrimSpace(token), a.BearerToken)
	}
	user, pass, ok := r.BasicAuth()
	// Both compared every time: no early exit on a wrong user.
	userOK, passOK := eq(user, a.Username), eq(pass, a.Password)
	return ok && userOK && passOK
}

// Handler is the Alertmanager webhook, for POST /webhooks/alertmanager,
// on every replica. It authenticates, bounds and validates the
// notification, redacts it and stores it in the inbox, answering only
// once it is stored, before any chat call is made:
//
//	200 stored (a re-send of a notification already seen adds nothing later)
//	400 not a valid version 4 notification (the reason in the body)
//	401 missing or wrong credentials: refused before the body is read,
//	    without taking one of the MaxWebhooks slots
//	405 not a POST
//	413 body larger than Options.MaxBody
//	415 not JSON
//	503 with Retry-After: QueueSize notifications wait to be merged (the
//	    posting replica is behind), MaxWebhooks requests are in progress,
//	    or the store did not answer; Alertmanager retries
func (m *Manager) Handler() http.Handler { return http.HandlerFunc(m.serveWebhook) }

// slotWait is how long an authenticated request waits for one of the
// MaxWebhooks slots before it is answered 503.
const slotWait = 2 * time.Second

func (m *Manager) serveWebhook(w http.ResponseWriter, r *http.Request) {
	received := m.o.Now()
	fail := func(status int, outcome, msg string) {
		m.o.Metrics.Webhook(outcome)
		switch status {
		case http.StatusUnauthorized:
			if m.o.Auth.BearerToken != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Basic realm="parley"`)
			}
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "5")
		}
		http.Error(w, msg, status)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "bad_method", "use POST")
		return
	}
	if !m.o.Auth.allowed(r) {
		m.log.Warn("alertmanager webhook refused: bad credentials", "remote", r.RemoteAddr)
		// The body is never read: close the connection rather than let
		// the server wait for it.
		w.Header().Set("Connection", "close")
		fail(http.StatusUnauthorized, "unauthorized", "unauthorized")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		fail(http.StatusUnsupportedMediaType, "invalid", "Content-Type must be application/json")
		return
	}
	if r.ContentLength > m.o.MaxBody {
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", m.o.MaxBody))
		return
	}
	slot := time.NewTimer(slotWait)
	select {
	case m.hooks <- struct{}{}:
		slot.Stop()
		defer func() { <-m.hooks }()
	case <-slot.C:
		m.log.Warn("alertmanager webhook refused: too many requests in progress; Alertmanager will retry", "limit", cap(m.hooks))
		fail(http.StatusServiceUnavailable, "busy", "busy, retry later")
		return
	case <-r.Context().Done():
		slot.Stop()
		return
	}
	p, err := decodePayload(http.MaxBytesReader(w, r.Body, m.o.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", m.o.MaxBody))
			return
		}
		m.log.Warn("alertmanager webhook refused: invalid notification", "err", err)
		fail(http.StatusBadRequest, "invalid", err.Error())
		return
	}
	p = p.redacted(m.redact)
	if err := m.st.addInbox(r.Context(), p, received, m.o.QueueSize); err != nil {
		if errors.Is(err, errInboxFull) {
			m.log.Warn("alertmanager webhook refused: the inbox is full (the posting replica is behind); Alertmanager will retry",
				"group_key", clip(p.GroupKey, 200), "alerts", len(p.Alerts), "limit", m.o.QueueSize)
			fail(http.StatusServiceUnavailable, "queue_full", "busy, retry later")
			return
		}
		m.log.Error("alertmanager webhook refused: notification not stored; Alertmanager will retry",
			"group_key", clip(p.GroupKey, 200), "err", err)
		fail(http.StatusServiceUnavailable, "store_failed", "not stored, retry later")
		return
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	m.o.Metrics.Webhook("accepted")
	m.o.Metrics.AlertsReceived(len(p.Alerts))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}
