// Package webhook is Parley's outgoing webhook sink, for teams without
// Slack or Discord: every reply addressed to a channel "webhook:NAME"
// (incident messages, routed there by incidents.routes or
// incidents.default_channel) is POSTed as one JSON object to one URL,
// signed with an HMAC so the receiver can tell it came from Parley and was
// not altered or replayed. docs/webhook-sink.md documents the body, the
// headers and how to verify the signature; Verify does it in Go.
//
// A message has an id; an update of it is a new POST with event "update"
// and the same id, carrying the whole new content (receivers replace what
// they show); a note in its thread is event "reply" with thread set to the
// message's id. A new message with an idempotency key takes the key as its
// id, so a post repeated after a crash carries the same id and a receiver
// that upserts by id shows it once.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-Parley-Signature" // "v1=" + hex HMAC-SHA256 of "v1:TIMESTAMP:BODY"
	HeaderTimestamp = "X-Parley-Timestamp" // Unix seconds when the request was signed
	HeaderEvent     = "X-Parley-Event"     // message, update or reply
	HeaderID        = "X-Parley-Message-Id"
)

// Version is the version of the JSON body.
const Version = "1"

// DefaultTimeout bounds one POST.
const DefaultTimeout = 10 * time.Second

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock before Verify refuses it as a replay.
const DefaultTolerance = 5 * time.Minute

// MinSecretLen is the shortest signing secret accepted.
const MinSecretLen = 16

// Options configure a Sink.
type Options struct {
	URL    string // http(s) URL the messages are POSTed to
	Secret string // HMAC key, at least MinSecretLen bytes
	// Timeout bounds each POST (DefaultTimeout).
	Timeout time.Duration
	// Client sends the requests (default: a client that follows no
	// redirects).
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// UserAgent names the sender ("parley/VERSION").
	UserAgent string
}

// Sink POSTs replies to the webhook. It implements chat.Adapter: Run only
// waits, as nothing arrives from a webhook.
type Sink struct {
	o      Options
	target string // the URL without credentials, for messages
	log    *slog.Logger
}

var _ chat.Adapter = (*Sink)(nil)

// New checks the options; it makes no request.
func New(o Options) (*Sink, error) {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return nil, fmt.Errorf("webhook sink: a url is required: %w", action.ErrNotConfigured)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("webhook sink: url must be an absolute http(s) URL: %w", action.ErrNotConfigured)
	case len(o.Secret) < MinSecretLen:
		return nil, fmt.Errorf("webhook sink: the signing secret must be at least %d characters: %w", MinSecretLen, action.ErrNotConfigured)
	case o.Timeout < 0:
		return nil, fmt.Errorf("webhook sink: negative timeout: %w", action.ErrNotConfigured)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserAgent == "" {
		o.UserAgent = "parley"
	}
	return &Sink{o: o, target: u.Redacted(), log: o.Logger.With("adapter", chat.Webhook)}, nil
}

// Platform describes the webhook sink: channel ids are names the receiver
// tells apart (webhook:oncall, webhook:payments); nothing arrives from it,
// so it has no users, groups or events.
func Platform() chat.Platform {
	return chat.Platform{Name: chat.Webhook, Title: "webhook sink", CheckID: checkID, IDExample: "oncall", Served: true}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkID(id string) error {
	if !nameRE.MatchString(id) {
		return errors.New("webhook channel names are letters, digits, '.', '_' and '-', at most 64")
	}
	return nil
}

// Name implements chat.Adapter.
func (s *Sink) Name() string { return chat.Webhook }

// HoldsConnection is false: the sink holds no connection, so it runs on
// every replica.
func (s *Sink) HoldsConnection() bool { return false }

// Run waits until ctx ends: nothing arrives from a webhook.
func (s *Sink) Run(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}

// Message is the JSON body of a delivery (version 1).
type Message struct {
	Version string `json:"version"`
	// Event is "message" (a new message), "update" (the message ID
	// replaced by this content) or "reply" (a note in the thread of the
	// message Thread).
	Event   string `json:"event"`
	ID      string `json:"id"`
	Channel string `json:"channel"` // NAME of webhook:NAME
	Thread  string `json:"thread,omitempty"`
	// Kind styles it: info, success, error, attention, ...
	Kind    string   `json:"kind,omitempty"`
	Text    string   `json:"text"`
	Fields  []Field  `json:"fields,omitempty"`
	Table   *Table   `json:"table,omitempty"`
	Code    string   `json:"code,omitempty"`
	Context []string `json:"context,omitempty"`
	// Actions are the next steps the message suggests (the labels of
	// chat buttons); a webhook cannot click them: ask Parley in chat.
	Actions []string  `json:"actions,omitempty"`
	Images  []Image   `json:"images,omitempty"`
	SentAt  time.Time `json:"sent_at"`
}

// Field is a label and a value.
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Table is a header and rows of text cells.
type Table struct {
	Header []string   `json:"header,omitempty"`
	Rows   [][]string `json:"rows"`
}

// Image is an attachment, its bytes in base64.
type Image struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	AltText     string `json:"alt_text,omitempty"`
	Data        string `json:"data"`
}

// messageOf is the body of r.
func messageOf(r chat.Reply, now time.Time) Message {
	m := Message{Version: Version, Channel: r.Channel, Thread: r.Thread, Kind: string(r.Kind), Text: r.Text,
		Code: r.Code, Context: r.Context, SentAt: now.UTC().Truncate(time.Millisecond)}
	switch {
	case r.UpdateOf != "":
		m.Event, m.ID = "update", r.UpdateOf
		m.Thread = ""
	case r.Thread != "":
		m.Event, m.ID = "reply", newID()
	default:
		m.Event, m.ID = "message", r.IdempotencyKey
		if m.ID == "" {
			m.ID = newID()
		}
	}
	for _, f := range r.Fields {
		m.Fields = append(m.Fields, Field(f))
	}
	if r.Table != nil {
		m.Table = &Table{Header: r.Table.Header, Rows: r.Table.Rows}
	}
	for _, b := range r.Buttons {
		m.Actions = append(m.Actions, b.Label)
	}
	for _, img := range r.Images {
		m.Images = append(m.Images, Image{Name: img.Name, ContentType: img.ContentType, AltText: img.AltText,
			Data: base64.StdEncoding.EncodeToString(img.Data)})
	}
	return m
}

func newID() string { return "wh-" + strings.ToLower(rand.Text()[:20]) }

// Send POSTs r and returns the message's id. A 2xx answer is a delivery;
// anything else is an error that unwraps to an action error kind:
// ErrUnavailable for a network failure, a timeout, 408, 429 or 5xx (worth
// trying again), ErrForbidden for 401 and 403, ErrInvalid for other 4xx.
func (s *Sink) Send(ctx context.Context, r chat.Reply) (string, error) {
	if r.Channel == "" {
		return "", fmt.Errorf("webhook sink: reply without a channel: %w", action.ErrInvalid)
	}
	now := s.o.Now()
	m := messageOf(r, now)
	body, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("webhook sink: encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("webhook sink: %w: %w", action.ErrNotConfigured, err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.o.UserAgent)
	req.Header.Set(HeaderEvent, m.Event)
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(s.o.Secret, ts, body))
	resp, err := s.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold credentials: leave it out
		}
		return "", fmt.Errorf("webhook sink: POST %s: %w: %v", s.target, action.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	// Drained so the connection is reused. The status alone decides the
	// delivery: a body that cannot be read only costs the connection.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)); err != nil {
		s.log.Debug("webhook response body not read to the end; the connection is not reused", "event", m.Event, "id", m.ID, "err", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		s.log.Debug("webhook delivered", "event", m.Event, "id", m.ID, "channel", m.Channel, "status", resp.StatusCode)
		return m.ID, nil
	}
	kind := action.ErrInvalid
	switch {
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		kind = action.ErrUnavailable
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		kind = action.ErrForbidden
	}
	return "", fmt.Errorf("webhook sink: POST %s answered %s: %w", s.target, resp.Status, kind)
}

// Sign is the signature header's value for a body sent at timestamp ts
// (Unix seconds, as in the timestamp header): "v1=" and the hex HMAC-SHA256,
// keyed with the secret, of "v1:" + ts + ":" + body.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v1:" + ts + ":"))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp too far from now")
)

// Verify checks a delivery as a receiver gets it: the signature over the
// raw body (before any JSON decoding) with the shared secret, compared in
// constant time, and a timestamp within tolerance of now (0 means
// DefaultTolerance), so a captured request cannot be replayed later.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid %s header", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(want)) {
		return ErrBadSignature
	}
	return nil
}
