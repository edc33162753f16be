// Package lokisink is an audit.Sink that pushes Parley's audit events to
// Loki, one JSON line per event, so they can be searched next to the logs
// of the systems Parley acts on:
//
//	{app="parley"} | json | action="kubernetes.scale"
//
// Streams carry only low-cardinality labels: app="parley", type="<event
// type>" and the static Labels of the Options. Subjects, actions and
// channels stay in the line, where `| json` finds them, and out of Loki's
// index.
//
// Events are queued (bounded), batched, and pushed by one goroutine on a
// flush interval or when a batch is full, with retries and backoff on 429,
// 5xx and network errors. Write never blocks: when the queue is full the
// event is dropped for Loki (it stays in the durable audit log) and Write
// says so. Close flushes what is queued, within its context's deadline.
//
// The push uses Loki's documented JSON push API (POST /loki/api/v1/push,
// {"streams":[{"stream":{labels},"values":[["<unix ns>","<line>"]]}]})
// written here in about a hundred lines, rather than
// github.com/grafana/loki-client-go. That client builds with Go 1.26, but
// it pulls in github.com/prometheus/prometheus v0.35, gRPC, gogo/protobuf
// and go-kit (about 200 packages and 660 modules in the graph) for a
// snappy-protobuf encoding Parley does not need; its Handle sends on an
// unbuffered channel and so blocks the caller while a batch is retried,
// takes no context, and its Stop waits for retries without a deadline —
// the opposite of what an audit sink must do. The JSON API is accepted by
// Loki, Grafana Cloud, and Loki-compatible receivers such as VictoriaLogs
// (/insert/loki/api/v1/push), which the integration test uses.
//
// Free text (request text, outcome, error, parameter and detail values) is
// passed through internal/redact: the recorder already stores it redacted,
// and redaction is idempotent, so this only guards events that reach the
// sink another way.
package lokisink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/redact"
)

// PushPath is Loki's push endpoint, appended to Options.URL.
const PushPath = "/loki/api/v1/push"

// Defaults.
const (
	DefaultQueueSize     = 1024
	DefaultBatchSize     = 100
	DefaultFlushInterval = time.Second
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRetries    = 5
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
)

// Errors of Write.
var (
	ErrQueueFull = errors.New("loki audit sink: queue full, event dropped")
	ErrClosed    = errors.New("loki audit sink: closed")
)

// Options configure a Sink.
type Options struct {
	// URL is Loki's base URL (http://loki:3100); PushPath is appended. A
	// URL whose path already ends in /api/v1/push is used as it is, which
	// suits Loki-compatible receivers such as VictoriaLogs
	// (http://vl:9428/insert/loki/api/v1/push). Required. User info in the
	// URL is used as basic auth and never logged.
	URL string
	// TenantID is sent as X-Scope-OrgID when set.
	TenantID string
	// BearerToken, or Username and Password, authenticate the push.
	BearerToken string
	Username    string
	Password    string
	// Labels are added to every stream, e.g. {"env": "prod"}. Keep them
	// few and static; "app" defaults to "parley", "type" is reserved.
	Labels map[string]string
	// Client is the HTTP client (default: a new http.Client).
	Client *http.Client
	// QueueSize bounds the events waiting to be pushed (default 1024).
	QueueSize int
	// BatchSize is the most events in one push (default 100).
	BatchSize int
	// FlushInterval is how long an event may wait for its batch to fill
	// (default 1s).
	FlushInterval time.Duration
	// Timeout bounds each push request (default 10s).
	Timeout time.Duration
	// MaxRetries is how often a failed push is retried before its batch is
	// dropped (default 5; negative: no retries).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait between retries, doubled
	// after each failure with jitter (defaults 500ms and 30s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Logger receives dropped batches and push failures (default:
	// discarded). Credentials are never logged.
	Logger *slog.Logger
}

// Sink pushes audit events to Loki. Create it with New and stop it with
// Close.
type Sink struct {
	o      Options
	push   string // push URL, without user info
	labels map[string]string

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan audit.Event

	quit    chan struct{} // closed by Close: flush and stop
	done    chan struct{} // closed when run returns
	runCtx  context.Context
	stopRun context.CancelFunc // aborts an in-flight push when Close gives up

	dropped atomic.Int64 // events dropped because the queue was full
	logged  int64        // dropped as last logged; used by run only
}

// New validates o and starts the sink's goroutine.
func New(o Options) (*Sink, error) {
	if strings.TrimSpace(o.URL) == "" {
		return nil, errors.New("loki audit sink: no URL")
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("loki audit sink: the URL must be an http(s) URL such as http://loki:3100")
	}
	if u.User != nil {
		if o.Username == "" && o.BearerToken == "" {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
		}
		u.User = nil
	}
	if o.BearerToken != "" && (o.Username != "" || o.Password != "") {
		return nil, errors.New("loki audit sink: set either a bearer token or a username and password, not both")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api/v1/push") {
		u.Path += PushPath
	}
	labels := map[string]string{"app": "parley"}
	for k, v := range o.Labels {
		if k == "type" || !validLabelName(k) || v == "" {
			return nil, fmt.Errorf("loki audit sink: label %q: want a label name other than \"type\" and a value", k)
		}
		labels[k] = v
	}
	for _, d := range []*time.Duration{&o.FlushInterval, &o.Timeout, &o.MinBackoff, &o.MaxBackoff} {
		if *d < 0 {
			return nil, errors.New("loki audit sink: durations must not be negative")
		}
	}
	if o.QueueSize < 0 || o.BatchSize < 0 {
		return nil, errors.New("loki audit sink: queue and batch sizes must not be negative")
	}
	o.QueueSize = orDefault(o.QueueSize, DefaultQueueSize)
	o.BatchSize = orDefault(o.BatchSize, DefaultBatchSize)
	o.FlushInterval = orDefault(o.FlushInterval, DefaultFlushInterval)
	o.Timeout = orDefault(o.Timeout, DefaultTimeout)
	o.MinBackoff = orDefault(o.MinBackoff, DefaultMinBackoff)
	o.MaxBackoff = max(orDefault(o.MaxBackoff, DefaultMaxBackoff), o.MinBackoff)
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("sink", "loki", "host", u.Host)

	s := &Sink{
		o: o, push: u.String(), labels: labels,
		queue: make(chan audit.Event, o.QueueSize),
		quit:  make(chan struct{}), done: make(chan struct{}),
	}
	s.runCtx, s.stopRun = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Write queues e for Loki without waiting. It fails with ErrQueueFull when
// Loki is too far behind and ErrClosed after Close; the event is then not
// pushed (it is still in the durable audit log).
func (s *Sink) Write(_ context.Context, e audit.Event) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- e:
		return nil
	default:
		s.dropped.Add(1)
		return ErrQueueFull
	}
}

// Close stops accepting events, pushes what is queued and waits for that
// until ctx ends; then it abandons the rest and returns an error saying how
// many events were not pushed.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		close(s.quit)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stopRun()
		<-s.done // run returns promptly once its pushes are cancelled
		return fmt.Errorf("loki audit sink: close: %w; %d queued events not pushed", ctx.Err(), len(s.queue))
	}
}

// run batches queued events and pushes them until Close.
func (s *Sink) run() {
	defer close(s.done)
	ticker := time.NewTicker(s.o.FlushInterval)
	defer ticker.Stop()
	var batch []audit.Event
	flush := func() {
		if d := s.dropped.Load(); d != s.logged {
			s.o.Logger.Warn("audit events dropped for Loki: queue full", "dropped", d-s.logged, "queue", s.o.QueueSize)
			s.logged = d
		}
		if len(batch) > 0 {
			s.send(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case e := <-s.queue:
			batch = append(batch, e)
			if len(batch) >= s.o.BatchSize {
				flush()
			}
		case <-ticker.C:
			flush()
		case <-s.quit:
			// Drain: nothing new arrives once closed is set.
			for s.runCtx.Err() == nil {
				select {
				case e := <-s.queue:
					batch = append(batch, e)
					if len(batch) >= s.o.BatchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
			return
		}
		if s.runCtx.Err() != nil {
			return
		}
	}
}

// send pushes one batch, retrying what may succeed later.
func (s *Sink) send(batch []audit.Event) {
	body, skipped := encode(batch, s.labels)
	if skipped > 0 { // only an odd parameter value can do this
		s.o.Logger.Error("audit events that cannot be encoded were not pushed", "events", skipped)
	}
	if body == nil {
		return
	}
	backoff := s.o.MinBackoff
	for attempt := 0; ; attempt++ {
		retry, err := s.post(body)
		if err == nil {
			return
		}
		if !retry || attempt >= s.o.MaxRetries || s.runCtx.Err() != nil {
			s.o.Logger.Warn("pushing audit events to Loki failed; batch dropped",
				"events", len(batch), "first_seq", batch[0].Seq, "attempts", attempt+1, "err", err)
			return
		}
		s.o.Logger.Debug("pushing audit events to Loki failed; retrying", "attempt", attempt+1, "err", err)
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(wait):
		case <-s.runCtx.Done():
		}
		backoff = min(backoff*2, s.o.MaxBackoff)
	}
}

// post sends one push request. retry says whether the same body may
// succeed later (network errors, 429, 5xx).
func (s *Sink) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(s.runCtx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.push, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("push request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.o.TenantID != "" {
		req.Header.Set("X-Scope-OrgID", s.o.TenantID)
	}
	switch {
	case s.o.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.o.BearerToken)
	case s.o.Username != "" || s.o.Password != "":
		req.SetBasicAuth(s.o.Username, s.o.Password)
	}
	res, err := s.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("push: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 == 2 {
		return false, nil
	}
	text := strings.Join(strings.Fields(redact.Redact(strings.ToValidUTF8(string(msg), "?"))), " ")
	err = fmt.Errorf("push: HTTP %d: %s", res.StatusCode, text)
	return res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500, err
}

// pushRequest is Loki's JSON push body.
type pushRequest struct {
	Streams []pushStream `json:"streams"`
}

type pushStream struct {
	Stream map[string]string `json:"stream"`
	Values [][2]string       `json:"values"` // ["<unix ns>", "<line>"]
}

// encode groups events by type into streams, keeping their order. Events
// that cannot be encoded are skipped and counted.
func encode(batch []audit.Event, labels map[string]string) (body []byte, skipped int) {
	var req pushRequest
	index := map[audit.Type]int{}
	for _, e := range batch {
		line, err := Line(e)
		if err != nil {
			skipped++
			continue
		}
		i, ok := index[e.Type]
		if !ok {
			ls := maps.Clone(labels)
			ls["type"] = string(e.Type)
			req.Streams = append(req.Streams, pushStream{Stream: ls})
			i = len(req.Streams) - 1
			index[e.Type] = i
		}
		req.Streams[i].Values = append(req.Streams[i].Values,
			[2]string{strconv.FormatInt(e.Time.UnixNano(), 10), line})
	}
	if len(req.Streams) == 0 {
		return nil, skipped
	}
	body, _ = json.Marshal(req) // strings and maps of strings always marshal
	return body, skipped
}

// line is the JSON form of one event in Loki. Field names are snake_case
// so that `| json` yields them as labels unchanged.
type line struct {
	Seq            int64             `json:"seq"`
	Time           string            `json:"time"`
	Type           string            `json:"type"`
	RequestID      string            `json:"request_id,omitempty"`
	Platform       string            `json:"platform,omitempty"`
	Channel        string            `json:"channel,omitempty"`
	Thread         string            `json:"thread,omitempty"`
	Subject        string            `json:"subject,omitempty"`
	Action         string            `json:"action,omitempty"`
	Params         map[string]any    `json:"params,omitempty"`
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

// Line returns the log line pushed for e: one JSON object with free text
// redacted.
func Line(e audit.Event) (string, error) {
	l := line{
		Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: string(e.Type),
		RequestID: e.RequestID, Platform: e.Platform, Channel: e.Channel, Thread: e.Thread,
		Subject: e.Subject, Action: e.Action, Decision: e.Decision, Rule: e.Rule, Router: e.Router,
		Confidence: e.Confidence, ConfirmationID: e.ConfirmationID,
		Outcome: redact.Redact(e.Outcome), Error: redact.Redact(e.Error),
		DurationMS: e.Duration.Milliseconds(), Text: redact.Redact(e.Text),
		PrevHash: e.PrevHash, Hash: e.Hash,
	}
	if len(e.Params) > 0 {
		l.Params = make(map[string]any, len(e.Params))
		for _, k := range slices.Sorted(maps.Keys(e.Params)) {
			if v, ok := e.Params[k].(string); ok {
				l.Params[k] = redact.Redact(v)
				continue
			}
			l.Params[k] = e.Params[k]
		}
	}
	if len(e.Details) > 0 {
		l.Details = make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			l.Details[k] = redact.Redact(v)
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encode audit event %d: %w", e.Seq, err)
	}
	return string(b), nil
}

func validLabelName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
