package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// CommitWindow is the longest that events handed over with Enqueue
	// wait for a write someone waits for, to share its commit (default
	// 5ms).
	CommitWindow time.Duration
	// WriteBehind, on an in-memory database (store.Memory), keeps the log
	// in the recorder's memory and copies it to the database behind the
	// requests (behind.go). It is ignored on any other database.
	WriteBehind bool
	// CollectWindow is the longest a batch waits for writers that had a
	// write in the previous batch, when fewer wait now (default 250µs). A
	// lone writer never waits.
	CollectWindow time.Duration
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

	// Group commit (commit.go).
	window    time.Duration
	collect   time.Duration
	qmu       sync.Mutex // guards queue, urgent, stopping and each queued Pending's state
	queue     []*Pending
	urgent    int           // queued writes someone waits for
	busy      bool          // a batch is being written (by the committer or a waiter)
	waiters   int           // writes someone waited for in the last batch taken
	stopping  bool          // Close was called: writes are written by their callers
	wake      chan struct{} // wakes the committer
	lazy      *time.Timer   // wakes the committer when lazy writes' window closes
	committed chan struct{} // closed when the committer has stopped
	inline    sync.Mutex    // serialises callers' own writes after Close
	stmtMu    sync.Mutex
	stmts     *statements
	batches   atomic.Int64 // transactions written, for benchmarks
	head      knownHead    // where this recorder left the chain (PostgreSQL, write-behind)
	rows      []row        // the last batch's rows, emptied, for the next (as head: whoever writes)
	behind    *writeBehind // Options.WriteBehind on an in-memory database, else nil
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
		window:      opts.CommitWindow,
		collect:     opts.CollectWindow,
		wake:        make(chan struct{}, 1),
		committed:   make(chan struct{}),
	}
	if r.window <= 0 {
		r.window = DefaultCommitWindow
	}
	if r.collect <= 0 {
		r.collect = DefaultCollectWindow
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
	r.lazy = time.AfterFunc(time.Hour, func() {
		r.qmu.Lock()
		r.signal()
		r.qmu.Unlock()
	})
	r.lazy.Stop()
	if opts.WriteBehind && db.Path() == store.Memory {
		r.behind = newWriteBehind(r)
	}
	go r.commitLoop() // stopped and waited for by Close
	return r
}

// Defaults of Options.CommitWindow and Options.CollectWindow.
const (
	DefaultCommitWindow  = 5 * time.Millisecond
	DefaultCollectWindow = 250 * time.Microsecond
)

// Record validates e, bounds its text, stamps its time when zero, and
// appends it to the chain. It returns the stored event with Seq, Time,
// PrevHash and Hash set, once it is durably stored. An error means the
// event is not in the log: the caller must not run a mutating action it
// could not audit.
//
// Appends are serialised in write transactions that lock and read the
// chain head and insert after it, so concurrent Record calls, other
// processes on the same SQLite file and other replicas on the same
// PostgreSQL database (SELECT ... FOR UPDATE on the head row) cannot fork
// the chain. Concurrent writes of this process share transactions (see
// Enqueue and the group commit in commit.go).
func (r *Recorder) Record(ctx context.Context, e Event) (Event, error) {
	stored, err := r.submit(ctx, []Event{e}, nil, true).Wait(ctx)
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
// does not validate, nothing of it is written.
//
// write may return no events: then only its store changes are committed
// (a sweep that found nothing due). It runs on the recorder's database and
// must use only tx (see store.DB.WriteTx) and have no effect outside it.
// The transaction may be shared with other writes (group commit): write
// runs in a savepoint of it, and may run again when the shared
// transaction fails and each write is tried alone. Its statements run
// under the batch's deadline. RecordWith returns the stored events, with
// Seq, Time, PrevHash and Hash set, as Record does.
func (r *Recorder) RecordWith(ctx context.Context, write func(tx *store.Tx) ([]Event, error)) ([]Event, error) {
	return r.submit(ctx, nil, write, true).Wait(ctx)
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

// Close writes what is queued, stops feeding sinks, lets them drain what
// is queued for them, and waits for all that until ctx ends. Record keeps
// writing to the database after Close, each call in its own transaction;
// only the sinks stop. Close does not close the database.
func (r *Recorder) Close(ctx context.Context) error {
	r.qmu.Lock()
	r.stopping = true
	r.signal()
	r.qmu.Unlock()
	select {
	case <-r.committed:
	case <-ctx.Done():
		return fmt.Errorf("close audit recorder: writing what is queued: %w", ctx.Err())
	}
	// A failed last copy is reported, and the sinks are stopped all the same.
	var copyErr error
	if r.behind != nil {
		if err := r.closeBehind(); err != nil {
			copyErr = fmt.Errorf("close audit recorder: %w", err)
		}
	}
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
		return copyErr
	case <-ctx.Done():
		return errors.Join(copyErr, fmt.Errorf("close audit sinks: %w", ctx.Err()))
	}
}
