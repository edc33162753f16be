package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Events API limits.
const (
	maxEventBody   = 1 << 20         // bytes of one request body
	maxRequestSkew = 5 * time.Minute // oldest (or newest) signed timestamp taken
	handOverWait   = 2 * time.Second // how long a request waits for a handler slot
)

// EventsHandler returns the HTTP endpoint for the Events API, interactive
// payloads and the /parley slash command (the app manifest points the
// Events Request URL, the Interactivity Request URL and the command's URL
// all at it). Every request's signature is verified; url_verification is
// answered; retried deliveries are handled once. Mount it on the
// application's server, or set EventsListen to have Run serve it.
func (a *Adapter) EventsHandler() http.Handler { return http.HandlerFunc(a.serveEvents) }

func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := a.verifySignature(r.Header, body); err != nil {
		a.log.Warn("events request refused", "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if retry := r.Header.Get("X-Slack-Retry-Num"); retry != "" {
		a.log.Debug("slack retried a delivery", "retry", retry, "reason", r.Header.Get("X-Slack-Retry-Reason"))
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		a.serveInteractive(w, r, body)
		return
	}
	var cb eventCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	switch cb.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, cb.Challenge)
		return
	case "event_callback":
		in, ok, err := a.decodeEvent(cb)
		if err != nil {
			http.Error(w, "unreadable event", http.StatusBadRequest)
			return
		}
		if ok {
			if !a.handOverHTTP(r.Context(), in) {
				// Not taken: Slack retries, and the retry is not a duplicate.
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (a *Adapter) serveInteractive(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err == nil && form.Get("command") != "" {
		a.serveCommand(w, r, commandFromForm(form))
		return
	}
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "missing payload", http.StatusBadRequest)
		return
	}
	ins, err := a.decodeActions([]byte(form.Get("payload")))
	if err != nil {
		http.Error(w, "unreadable payload", http.StatusBadRequest)
		return
	}
	for _, in := range ins {
		if !a.handOverHTTP(r.Context(), in) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// serveCommand acknowledges a slash command with an empty 200 (Slack shows
// nothing more) and hands it over; the answers follow in the channel or,
// for the asker only, ephemeral.
func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request, c slashCommand) {
	in, ok := a.decodeCommand(c)
	if !ok {
		http.Error(w, "not a Parley command", http.StatusBadRequest)
		return
	}
	if !a.handOverHTTP(r.Context(), in) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *Adapter) handOverHTTP(ctx context.Context, in inbound) bool {
	ctx, cancel := context.WithTimeout(ctx, handOverWait)
	defer cancel()
	return a.deliver(ctx, in) == nil
}

// Signature verification failures. Their text never contains the secret.
var (
	errNoSignature  = errors.New("missing X-Slack-Signature or X-Slack-Request-Timestamp")
	errStale        = errors.New("request timestamp outside the 5 minute window")
	errBadSignature = errors.New("signature does not match")
)

// verifySignature checks Slack's v0 request signature: HMAC-SHA256 of
// "v0:timestamp:body" with the signing secret, compared in constant time,
// for a timestamp within five minutes of now.
func (a *Adapter) verifySignature(h http.Header, body []byte) error {
	sig, tsText := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || tsText == "" {
		return errNoSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errNoSignature
	}
	if skew := a.opts.Now().Sub(time.Unix(ts, 0)); skew > maxRequestSkew || skew < -maxRequestSkew {
		return errStale
	}
	mac := hmac.New(sha256.New, []byte(a.opts.SigningSecret))
	mac.Write([]byte("v0:" + tsText + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errBadSignature
	}
	return nil
}

// runEvents waits for ctx to end, serving the events endpoint on
// EventsListen when it is set.
func (a *Adapter) runEvents(ctx context.Context) error {
	if a.opts.EventsListen == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", a.opts.EventsListen)
	if err != nil {
		return a.wrap("events listener", err, errListen)
	}
	srv := &http.Server{
		Handler:           a.EventsHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("serving the events API", "addr", ln.Addr().String())
	select {
	case err := <-served:
		return a.wrap("events server", err, errListen)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	return nil
}

var errListen = errors.New("cannot serve the events endpoint")
