package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// Sink is a secondary destination for recorded events: the chat thread,
// Loki. Write gets each event after it is durably stored, in order, from
// one goroutine per sink. An error is logged and otherwise ignored.
type Sink interface {
	Write(ctx context.Context, e Event) error
}

// Options configure a Recorder. The zero value is usable.
type Options struct {
	// Now is the clock that stamps events (default time.Now).
	Now func() time.Time
	// Logger receives sink failures and drops (default: discarded).
	Logger *slog.Logger
	// Sinks receive every event after it is stored.
	Sinks []Sink
	// SinkQueue is how many events may wait for each sink (default 256).
	// When a sink falls that far behind, further events are dropped for it
	// and logged: a slow chat API must not stall the pipeline.
	SinkQueue int
	// SinkTimeout bounds each Sink.Write (default 10s).
	SinkTimeout time.Duration
}

// Recorder appends events to the audit chain and reads them back.
type Recorder struct {
	db          *store.DB
	now         func() time.Time
	log         *slog.Logger
	sinkTimeout time.Duration

	mu      sync.Mutex // guards closed and sends on the sink queues
	closed  bool
	workers []*sinkWorker
	wg      sync.WaitGroup
}

type sinkWorker struct {
	sink  Sink
	queue chan queued
}

// queued carries the recording request's context values (request id,
// trace) to the sink, without its cancellation.
type queued struct {
	ctx context.Context
	e   Event
}

// New returns a Recorder writing to db and starts one goroutine per sink;
// Close stops them.
func New(db *store.DB, opts Options) *Recorder {
	r := &Recorder{
		db:          db,
		now:         opts.Now,
		log:         opts.Logger,
		sinkTimeout: opts.SinkTimeout,
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.sinkTimeout <= 0 {
		r.sinkTimeout = 10 * time.Second
	}
	size := opts.SinkQueue
	if size <= 0 {
		size = 256
	}
	for _, s := range opts.Sinks {
		w := &sinkWorker{sink: s, queue: make(chan queued, size)}
		r.workers = append(r.workers, w)
		r.wg.Go(func() { r.runSink(w) })
	}
	return r
}

// Record validates e, bounds its text, stamps its time when zero, and
// appends it to the chain. It returns the stored event with Seq, Time,
// PrevHash and Hash set. An error means the event is not in the log: the
// caller must not run a mutating action it could not audit.
//
// Appends are serialised in one write transaction that locks and reads the
// chain head and inserts after it, so concurrent Record calls, other
// processes on the same SQLite file and other replicas on the same
// PostgreSQL database (SELECT ... FOR UPDATE on the head row) cannot fork
// the chain.
func (r *Recorder) Record(ctx context.Context, e Event) (Event, error) {
	stored, err := r.RecordWith(ctx, func(*store.Tx) ([]Event, error) { return []Event{e}, nil })
	if err != nil {
		return Event{}, fmt.Errorf("record %s: %w", e.Type, err)
	}
	return stored[0], nil
}

// RecordWith runs write inside one write transaction and appends the
// events write returns to the chain in that same transaction, in order:
// the store changes write makes (a confirmation stored, claimed, cancelled)
// and the events that record them are committed together or not at all,
// so no crash can leave a state change without its audit record or a
// record of a change that never happened. If write fails, or any event
// does not validate, nothing is written.
//
// write may return no events: then only its store changes are committed
// (a sweep that found nothing due). It runs on the recorder's database and
// must use only tx (see store.DB.WriteTx) and have no effect outside it. RecordWith returns the
// stored events, with Seq, Time, PrevHash and Hash set, as Record does.
func (r *Recorder) RecordWith(ctx context.Context, write func(tx *store.Tx) ([]Event, error)) ([]Event, error) {
	var stored []Event
	err := r.db.WriteTx(ctx, func(tx *store.Tx) error {
		events, err := write(tx)
		if err != nil {
			return err
		}
		stored = make([]Event, 0, len(events))
		for _, e := range events {
			if e.Time.IsZero() {
				e.Time = r.now()
			}
			if e, err = normalise(e); err != nil {
				return err
			}
			if e, err = appendTx(ctx, tx, e); err != nil {
				return err
			}
			stored = append(stored, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range stored {
		r.fanOut(ctx, e)
	}
	return stored, nil
}

// appendTx appends the normalised e after the chain head, inside tx, and
// returns it with its links set.
func appendTx(ctx context.Context, tx *store.Tx, e Event) (Event, error) {
	var headSeq int64
	var headHash string
	// The lock is held until commit: another replica's append waits
	// here and then reads the head this one wrote.
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+
		tx.Dialect().ForUpdate()).Scan(&headSeq, &headHash)
	if errors.Is(err, sql.ErrNoRows) {
		// Someone deleted the head row. Refuse rather than restart the
		// chain and hide whatever else was done.
		return e, fmt.Errorf("audit head row is missing: run verify")
	}
	if err != nil {
		return e, fmt.Errorf("read head: %w", err)
	}
	e.Seq = headSeq + 1
	e.PrevHash = headHash
	if headSeq == 0 {
		e.PrevHash = Genesis
	}
	rw := toRow(e)
	e.Hash = rw.computeHash()
	rw.hash = e.Hash
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rw.seq, rw.timeMS, rw.typ, rw.requestID, rw.platform, rw.channel, rw.thread, rw.subject,
		rw.action, rw.params, rw.decision, rw.rule, rw.confirmationID, rw.outcome, rw.errText,
		rw.durationMS, rw.router, rw.confidence, rw.text, rw.details, rw.prevHash, rw.hash); err != nil {
		return e, fmt.Errorf("insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`,
		e.Seq, e.Hash); err != nil {
		return e, fmt.Errorf("advance head: %w", err)
	}
	return e, nil
}

// fanOut hands e to every sink without waiting.
func (r *Recorder) fanOut(ctx context.Context, e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, w := range r.workers {
		select {
		case w.queue <- queued{ctx: context.WithoutCancel(ctx), e: e}:
		default:
			r.log.Warn("audit sink queue full, event not delivered to sink",
				"sink", fmt.Sprintf("%T", w.sink), "seq", e.Seq, "type", string(e.Type))
		}
	}
}

func (r *Recorder) runSink(w *sinkWorker) {
	for q := range w.queue {
		ctx, cancel := context.WithTimeout(q.ctx, r.sinkTimeout)
		err := w.sink.Write(ctx, q.e)
		cancel()
		if err != nil {
			r.log.Warn("audit sink write failed",
				"sink", fmt.Sprintf("%T", w.sink), "seq", q.e.Seq, "type", string(q.e.Type), "err", err)
		}
	}
}

// Close stops feeding sinks, lets them drain what is queued, and waits for
// them until ctx ends. Record keeps writing to the database after Close;
// only the sinks stop. Close does not close the database.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		for _, w := range r.workers {
			close(w.queue)
		}
	}
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close audit sinks: %w", ctx.Err())
	}
}
