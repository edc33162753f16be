package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// Genesis is the prev_hash of the first event: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// encodingVersion is part of every hashed record, so that a future change
// of the encoding can be told apart from tampering.
const encodingVersion = 1

// row is an event in its stored form: exactly the values the hash covers.
// Params and Details are kept as their stored JSON text, so verification
// never depends on decoding and re-encoding them.
type row struct {
	seq            int64
	timeMS         int64
	typ            string
	requestID      string
	platform       string
	channel        string
	thread         string
	subject        string
	action         string
	params         string
	decision       string
	rule           string
	confirmationID string
	outcome        string
	errText        string
	durationMS     int64
	router         string
	confidence     float64
	text           string
	details        string
	prevHash       string
	hash           string
}

// canonicalRecord is the hashed encoding: a JSON object whose fields are
// declared in sorted key order (encoding/json keeps declaration order), all
// present even when empty. Do not reorder or rename: existing logs were
// hashed with it. Changing it needs a new encodingVersion.
type canonicalRecord struct {
	Action         string  `json:"action"`
	Channel        string  `json:"channel"`
	Confidence     float64 `json:"confidence"`
	ConfirmationID string  `json:"confirmation_id"`
	Decision       string  `json:"decision"`
	Details        string  `json:"details"`
	DurationMS     int64   `json:"duration_ms"`
	Error          string  `json:"error"`
	Outcome        string  `json:"outcome"`
	Params         string  `json:"params"`
	Platform       string  `json:"platform"`
	RequestID      string  `json:"request_id"`
	Router         string  `json:"router"`
	Rule           string  `json:"rule"`
	Seq            int64   `json:"seq"`
	Subject        string  `json:"subject"`
	Text           string  `json:"text"`
	Thread         string  `json:"thread"`
	TimeMS         int64   `json:"time_ms"`
	Type           string  `json:"type"`
	V              int     `json:"v"`
}

// appendCanonical appends the stable encoding of r (links excluded) to b:
// exactly the bytes encoding/json writes for its canonicalRecord
// (marshalCanonical), without reflection. The common values (printable
// ASCII text, a confidence of 0 or from 1e-6 up, as confidences are) are
// written here; any other string or number is written by encoding/json
// itself, so the two cannot differ (FuzzCanonical).
func (r row) appendCanonical(b []byte) []byte {
	c := r.confidence
	if c != 0 && (c < 1e-6 || c >= 1e21) || c != c {
		return append(b, r.marshalCanonical()...)
	}
	str := func(key, v string) { b = action.AppendJSONString(append(b, key...), v) }
	num := func(key string, n int64) { b = strconv.AppendInt(append(b, key...), n, 10) }
	str(`{"action":`, r.action)
	str(`,"channel":`, r.channel)
	b = strconv.AppendFloat(append(b, `,"confidence":`...), c, 'f', -1, 64)
	str(`,"confirmation_id":`, r.confirmationID)
	str(`,"decision":`, r.decision)
	str(`,"details":`, r.details)
	num(`,"duration_ms":`, r.durationMS)
	str(`,"error":`, r.errText)
	str(`,"outcome":`, r.outcome)
	str(`,"params":`, r.params)
	str(`,"platform":`, r.platform)
	str(`,"request_id":`, r.requestID)
	str(`,"router":`, r.router)
	str(`,"rule":`, r.rule)
	num(`,"seq":`, r.seq)
	str(`,"subject":`, r.subject)
	str(`,"text":`, r.text)
	str(`,"thread":`, r.thread)
	num(`,"time_ms":`, r.timeMS)
	str(`,"type":`, r.typ)
	num(`,"v":`, encodingVersion)
	return append(b, '}')
}

// marshalCanonical is the canonical encoding by encoding/json.
func (r row) marshalCanonical() []byte {
	b, err := json.Marshal(canonicalRecord{
		Action: r.action, Channel: r.channel, Confidence: r.confidence,
		ConfirmationID: r.confirmationID, Decision: r.decision, Details: r.details,
		DurationMS: r.durationMS, Error: r.errText, Outcome: r.outcome, Params: r.params,
		Platform: r.platform, RequestID: r.requestID, Router: r.router, Rule: r.rule,
		Seq: r.seq, Subject: r.subject, Text: r.text, Thread: r.thread, TimeMS: r.timeMS,
		Type: r.typ, V: encodingVersion,
	})
	if err != nil {
		// Only a NaN or infinite confidence can fail, and a stored REAL
		// cannot hold one; an impossible value must still not verify.
		return []byte("unencodable")
	}
	return b
}

// computeHash is hex(SHA-256(prevHash "\n" canonical)).
func (r row) computeHash() string {
	var buf [2048]byte
	b := append(buf[:0], r.prevHash...)
	b = append(b, '\n')
	sum := sha256.Sum256(r.appendCanonical(b))
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// toRow converts a normalised event to its stored form.
func toRow(e Event) row {
	return row{
		seq:            e.Seq,
		timeMS:         e.Time.UnixMilli(),
		typ:            string(e.Type),
		requestID:      e.RequestID,
		platform:       e.Platform,
		channel:        e.Channel,
		thread:         e.Thread,
		subject:        e.Subject,
		action:         e.Action,
		params:         encodeParams(e.Params),
		decision:       e.Decision,
		rule:           e.Rule,
		confirmationID: e.ConfirmationID,
		outcome:        e.Outcome,
		errText:        e.Error,
		durationMS:     e.Duration.Milliseconds(),
		router:         e.Router,
		confidence:     e.Confidence,
		text:           e.Text,
		details:        encodeDetails(e.Details),
		prevHash:       e.PrevHash,
		hash:           e.Hash,
	}
}

// event converts a stored row back to an Event.
func (r row) event() (Event, error) {
	params, err := decodeParams(r.params)
	if err != nil {
		return Event{}, err
	}
	details, err := decodeDetails(r.details)
	if err != nil {
		return Event{}, err
	}
	return Event{
		Seq:            r.seq,
		Time:           time.UnixMilli(r.timeMS).UTC(),
		Type:           Type(r.typ),
		RequestID:      r.requestID,
		Platform:       r.platform,
		Channel:        r.channel,
		Thread:         r.thread,
		Subject:        r.subject,
		Action:         r.action,
		Params:         params,
		Decision:       r.decision,
		Rule:           r.rule,
		Router:         r.router,
		Confidence:     r.confidence,
		ConfirmationID: r.confirmationID,
		Outcome:        r.outcome,
		Error:          r.errText,
		Duration:       time.Duration(r.durationMS) * time.Millisecond,
		Text:           r.text,
		Details:        details,
		PrevHash:       r.prevHash,
		Hash:           r.hash,
	}, nil
}

// columns lists audit_events columns in the order scanRow reads them.
const columns = `seq, time_ms, type, request_id, platform, channel, thread, subject, action, params,
	decision, rule, confirmation_id, outcome, error, duration_ms, router, confidence, text, details,
	prev_hash, hash`

type scanner interface{ Scan(dest ...any) error }

func scanRow(s scanner) (row, error) {
	var r row
	err := s.Scan(&r.seq, &r.timeMS, &r.typ, &r.requestID, &r.platform, &r.channel, &r.thread,
		&r.subject, &r.action, &r.params, &r.decision, &r.rule, &r.confirmationID, &r.outcome,
		&r.errText, &r.durationMS, &r.router, &r.confidence, &r.text, &r.details, &r.prevHash, &r.hash)
	return r, err
}
