// Package audit is Parley's durable, tamper-evident record of every step of
// every chat request: the message, the routing, the policy decision, the
// confirmation, the action and its outcome.
//
// Events are appended to a hash chain in the database (internal/store: the
// embedded SQLite file, or PostgreSQL shared by several replicas, which
// append to the one chain in turn): each row stores the previous row's hash and its own hash,
// SHA-256 over that previous hash and a canonical encoding of the event.
// Verify recomputes the chain and reports the first row that was altered,
// deleted, inserted or reordered. The chain proves the log is internally
// consistent; to notice a wholesale rewrite or a cut-off tail, publish the
// head hash that Verify prints (post it to a channel, a ticket, Loki) and
// check it later with an Anchor.
//
// What is stored is redacted (internal/redact): a token pasted into a chat
// message or carried in an alert is replaced by a marker in the text,
// outcome, error, parameter and detail values before the event is hashed,
// so neither the database, the trail rendered from it nor the Loki copy
// holds it, and Verify checks exactly what is stored.
//
// Recording is the primary write: the caller relies on its error, and a
// mutating action whose audit event cannot be written is not run. Secondary
// destinations (the chat thread, Loki) are Sinks fed asynchronously; they
// never block or fail the primary write.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/redact"
)

// Type is the kind of an audit event.
type Type string

// Event types. One request produces several, sharing a RequestID.
const (
	MessageReceived       Type = "message.received"
	IntentRouted          Type = "intent.routed"
	PolicyDecided         Type = "policy.decided"
	ConfirmationRequested Type = "confirmation.requested"
	ConfirmationGranted   Type = "confirmation.granted"
	ConfirmationDenied    Type = "confirmation.denied"
	ConfirmationExpired   Type = "confirmation.expired"
	ConfirmationCancelled Type = "confirmation.cancelled"
	ActionStarted         Type = "action.started"
	ActionSucceeded       Type = "action.succeeded"
	ActionFailed          Type = "action.failed"
	ActionInterrupted     Type = "action.interrupted" // started, then the process stopped; never re-run
	ReplyFailed           Type = "reply.failed"       // a reply could not be delivered
	InputRejected         Type = "input.rejected"     // bad input: invalid parameters, oversized text
	IncidentReceived      Type = "incident.received"  // an Alertmanager notification that changed an alert group
	IncidentPosted        Type = "incident.posted"    // a group's summary message was posted
	IncidentUpdated       Type = "incident.updated"   // a group's summary message was edited (alerts, resolution, evidence)
	IncidentSuggested     Type = "incident.suggested" // a next step offered as a button on a group's message
	IncidentUnrouted      Type = "incident.unrouted"  // a group matched no route and there is no default channel
	// IncidentExpired: an incident message (a group's first message or
	// an update) could not be delivered within incidents.expire_after
	// and was given up; Details say what was not shown and why.
	IncidentExpired Type = "incident.expired"
	// RequestInterrupted: Parley stopped (a crash, a restart) before it
	// answered a request; nothing was run for it. Recorded at the next
	// start, once the channel was told.
	RequestInterrupted Type = "request.interrupted"
	// IntegrityOverridden: Parley started although the store or the audit
	// chain failed the start-up check, because an operator said so
	// (--allow-damaged-audit). Details say what was wrong.
	IntegrityOverridden Type = "integrity.overridden"
)

// Types returns every event type, in pipeline order.
func Types() []Type {
	return []Type{
		MessageReceived, IntentRouted, PolicyDecided,
		ConfirmationRequested, ConfirmationGranted, ConfirmationDenied, ConfirmationExpired, ConfirmationCancelled,
		ActionStarted, ActionSucceeded, ActionFailed, ActionInterrupted,
		ReplyFailed, InputRejected,
		IncidentReceived, IncidentPosted, IncidentUpdated, IncidentSuggested, IncidentUnrouted, IncidentExpired,
		RequestInterrupted, IntegrityOverridden,
	}
}

// Valid reports whether t is a known event type.
func (t Type) Valid() bool { return slices.Contains(Types(), t) }

// Policy decisions as recorded in Event.Decision.
const (
	Allow   = "allow"
	Deny    = "deny"
	Confirm = "confirm"
)

// Event is one audit record. The zero value of a field means "not
// applicable"; only Type is required.
type Event struct {
	Seq  int64     // assigned by the recorder: 1, 2, 3, ... without gaps
	Time time.Time // UTC, millisecond precision; set by the recorder when zero
	Type Type

	RequestID string // ties the events of one request together
	Platform  string // slack | discord | console
	Channel   string // "platform:id"
	Thread    string
	Subject   string // "platform:user", a stable id, never a display name

	Action     string
	Params     action.Params
	Decision   string // allow | deny | confirm
	Rule       string // the policy rule that decided
	Router     string // which router read the message: rules, llm, ...
	Confidence float64

	ConfirmationID string
	Outcome        string        // short result text
	Error          string        // what went wrong
	Duration       time.Duration // stored with millisecond precision

	// Text is the request text as typed (message.received, input.rejected),
	// secrets redacted.
	Text string
	// Details holds small extras: prompt variant, router note, plan summary.
	Details map[string]string

	// Set by the recorder: the chain links of this event.
	PrevHash string
	Hash     string
}

// Error kinds.
var (
	ErrInvalidEvent = errors.New("invalid audit event")
	ErrNotFound     = errors.New("audit event not found")
	// ErrTampered is wrapped by VerifyResult.Err when the chain is broken.
	ErrTampered = errors.New("audit log failed verification")
)

// Bounds on stored text, in bytes. Longer values are cut at a rune
// boundary and end in truncMarker, so the log stays small and a pasted
// novel cannot crowd out the rest of a row.
const (
	maxText        = 2000
	maxLong        = 1000 // Outcome, Error
	maxShort       = 256  // ids, names, rule
	maxValue       = 500  // each Params and Details value
	maxKey         = 64
	maxMapEntries  = 32
	truncMarker    = "…[truncated]"
	paramsOverflow = "_truncated"
)

// truncate cuts s to at most n bytes of valid UTF-8, marking a cut. A NUL
// byte becomes U+FFFD too: PostgreSQL's TEXT cannot hold it, and an event
// must store alike on every database.
func truncate(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len(truncMarker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncMarker
}

// normalise validates e and bounds its text, ready to be stored.
func normalise(e Event) (Event, error) {
	if !e.Type.Valid() {
		return Event{}, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, e.Type)
	}
	switch e.Decision {
	case "", Allow, Deny, Confirm:
	default:
		return Event{}, fmt.Errorf("%w: unknown decision %q", ErrInvalidEvent, e.Decision)
	}
	if e.Duration < 0 {
		return Event{}, fmt.Errorf("%w: negative duration", ErrInvalidEvent)
	}
	// A router's odd confidence is not worth refusing an action over.
	switch {
	case e.Confidence != e.Confidence: // NaN
		e.Confidence = 0
	case e.Confidence < 0:
		e.Confidence = 0
	case e.Confidence > 1:
		e.Confidence = 1
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	e.Duration = e.Duration.Truncate(time.Millisecond)
	for _, f := range []*string{&e.RequestID, &e.Platform, &e.Channel, &e.Thread, &e.Subject,
		&e.Action, &e.Rule, &e.Router, &e.ConfirmationID} {
		*f = truncate(*f, maxShort)
	}
	// Free text is redacted before it is cut (a cut could hide a secret's
	// shape) and before it is hashed: the chain covers what is stored, and
	// what is stored never holds a token someone pasted.
	e.Outcome = truncate(redact.Redact(e.Outcome), maxLong)
	e.Error = truncate(redact.Redact(e.Error), maxLong)
	e.Text = truncate(redact.Redact(e.Text), maxText)
	e.Params = boundParams(e.Params)
	e.Details = boundDetails(e.Details)
	e.PrevHash, e.Hash = "", ""
	return e, nil
}

// boundParams returns a copy of p whose values are JSON-safe and bounded.
// Validated parameters are strings and ints; anything else (raw input in an
// input.rejected event) is recorded as text.
func boundParams(p action.Params) action.Params {
	if len(p) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(p))
	out := make(action.Params, min(len(keys), maxMapEntries+1))
	for i, k := range keys {
		if i == maxMapEntries {
			out[paramsOverflow] = fmt.Sprintf("%d more", len(keys)-i)
			break
		}
		var v any
		switch x := p[k].(type) {
		case string:
			v = truncate(redact.Redact(x), maxValue)
		case int, int64, bool:
			v = x
		case nil:
			v = nil
		default:
			v = truncate(redact.Redact(fmt.Sprint(x)), maxValue)
		}
		out[truncate(k, maxKey)] = v
	}
	return out
}

func boundDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(d))
	out := make(map[string]string, min(len(keys), maxMapEntries+1))
	for i, k := range keys {
		if i == maxMapEntries {
			out[paramsOverflow] = fmt.Sprintf("%d more", len(keys)-i)
			break
		}
		out[truncate(k, maxKey)] = truncate(redact.Redact(d[k]), maxValue)
	}
	return out
}

// encodeParams is the stored form of Params: the canonical JSON of
// action.Params, or "" when there are none.
func encodeParams(p action.Params) string {
	if len(p) == 0 {
		return ""
	}
	return p.Canonical()
}

// decodeParams reads the stored form back; whole numbers become int, as
// validated parameters are.
func decodeParams(s string) (action.Params, error) {
	if s == "" {
		return nil, nil
	}
	p, err := action.ParseParams(s)
	if err != nil {
		return nil, fmt.Errorf("decode %w", err)
	}
	return p, nil
}

// encodeDetails is the stored form of Details: JSON with sorted keys, or "".
func encodeDetails(d map[string]string) string {
	if len(d) == 0 {
		return ""
	}
	// As encoding/json writes a map[string]string: keys sorted.
	var spare [8]string
	keys := spare[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf [256]byte
	b := append(buf[:0], '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = action.AppendJSONString(append(action.AppendJSONString(b, k), ':'), d[k])
	}
	return string(append(b, '}'))
}

func decodeDetails(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, fmt.Errorf("decode details: %w", err)
	}
	return d, nil
}
