package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// timeLayout renders event times: UTC, always three fractional digits.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// jsonEvent is the JSON shape of an Event (JSONL export, sinks).
type jsonEvent struct {
	Seq            int64             `json:"seq"`
	Time           string            `json:"time"`
	Type           Type              `json:"type"`
	RequestID      string            `json:"request_id,omitempty"`
	Platform       string            `json:"platform,omitempty"`
	Channel        string            `json:"channel,omitempty"`
	Thread         string            `json:"thread,omitempty"`
	Subject        string            `json:"subject,omitempty"`
	Action         string            `json:"action,omitempty"`
	Params         json.RawMessage   `json:"params,omitempty"`
	Decision       string            `json:"decision,omitempty"`
	Rule           string            `json:"rule,omitempty"`
	Router         string            `json:"router,omitempty"`
	Confidence     float64           `json:"confidence,omitempty"`
	ConfirmationID string            `json:"confirmation_id,omitempty"`
	Outcome        string            `json:"outcome,omitempty"`
	Error          string            `json:"error,omitempty"`
	DurationMS     int64             `json:"duration_ms,omitempty"`
	Text           string            `json:"text,omitempty"`
	Details        map[string]string `json:"details,omitempty"`
	PrevHash       string            `json:"prev_hash,omitempty"`
	Hash           string            `json:"hash,omitempty"`
}

// MarshalJSON encodes the event with snake_case keys, the time as
// RFC 3339 UTC with milliseconds, and the duration in milliseconds.
func (e Event) MarshalJSON() ([]byte, error) {
	j := jsonEvent{
		Seq: e.Seq, Time: e.Time.UTC().Format(timeLayout), Type: e.Type,
		RequestID: e.RequestID, Platform: e.Platform, Channel: e.Channel, Thread: e.Thread,
		Subject: e.Subject, Action: e.Action, Decision: e.Decision, Rule: e.Rule,
		Router: e.Router, Confidence: e.Confidence, ConfirmationID: e.ConfirmationID,
		Outcome: e.Outcome, Error: e.Error, DurationMS: e.Duration.Milliseconds(),
		Text: e.Text, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash,
	}
	if len(e.Params) > 0 {
		j.Params = json.RawMessage(e.Params.Canonical())
	}
	// Without HTML escaping: an archive is read by people and tools, and
	// "replicas 3 -> 5" reads better than "replicas 3 -\u003e 5".
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j jsonEvent
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var t time.Time
	if j.Time != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, j.Time); err != nil {
			return fmt.Errorf("audit event time: %w", err)
		}
	}
	var params action.Params
	if len(j.Params) > 0 && string(j.Params) != "null" {
		var err error
		if params, err = decodeParams(string(j.Params)); err != nil {
			return err
		}
	}
	*e = Event{
		Seq: j.Seq, Time: t.UTC(), Type: j.Type,
		RequestID: j.RequestID, Platform: j.Platform, Channel: j.Channel, Thread: j.Thread,
		Subject: j.Subject, Action: j.Action, Params: params, Decision: j.Decision, Rule: j.Rule,
		Router: j.Router, Confidence: j.Confidence, ConfirmationID: j.ConfirmationID,
		Outcome: j.Outcome, Error: j.Error, Duration: time.Duration(j.DurationMS) * time.Millisecond,
		Text: j.Text, Details: j.Details, PrevHash: j.PrevHash, Hash: j.Hash,
	}
	return nil
}

// ExportJSONL writes one JSON object per line per event.
func ExportJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("export jsonl #%d: %w", e.Seq, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export jsonl: %w", err)
	}
	return nil
}

// CSVHeader is the stable column set of ExportCSV. Columns are only ever
// appended.
func CSVHeader() []string {
	return []string{
		"seq", "time", "type", "request_id", "platform", "channel", "thread", "subject",
		"action", "params", "decision", "rule", "router", "confidence", "confirmation_id",
		"outcome", "error", "duration_ms", "text", "details", "prev_hash", "hash",
	}
}

// ExportCSV writes a header row and one row per event. Params and details
// are JSON objects. Text cells that a spreadsheet would run as a formula
// (starting with = + - @ tab or CR) are prefixed with a single quote, as
// OWASP advises for CSV meant to be opened by people.
func ExportCSV(w io.Writer, events []Event) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	for _, e := range events {
		conf := ""
		if e.Confidence != 0 {
			conf = strconv.FormatFloat(e.Confidence, 'f', -1, 64)
		}
		rec := []string{
			strconv.FormatInt(e.Seq, 10),
			e.Time.UTC().Format(timeLayout),
			cell(string(e.Type)), cell(e.RequestID), cell(e.Platform), cell(e.Channel),
			cell(e.Thread), cell(e.Subject), cell(e.Action), encodeParams(e.Params),
			cell(e.Decision), cell(e.Rule), cell(e.Router), conf, cell(e.ConfirmationID),
			cell(e.Outcome), cell(e.Error), strconv.FormatInt(e.Duration.Milliseconds(), 10),
			cell(e.Text), encodeDetails(e.Details), e.PrevHash, e.Hash,
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("export csv #%d: %w", e.Seq, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	return nil
}

// cell neutralises spreadsheet formulas in a text cell.
func cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
