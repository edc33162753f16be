package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// Group commit.
//
// Every write goes through one queue, in the order it was handed over,
// and one goroutine (the committer) writes the queue in batches: one
// transaction that locks the chain head once, appends every event of the
// batch after it and moves the head once, then one commit (one fsync on
// SQLite). While a batch commits the next one gathers, so concurrent
// requests share commits without any of them waiting on a timer.
//
// When a writer comes alone (nobody is writing and the last batch had at
// most one waiter), it writes the queue itself in Wait, in the same
// batches and with the same guarantees: a lone request then costs no
// goroutine switch to the committer and back. The committer and such a
// writer take turns (Recorder.busy).
//
// A write is urgent when someone waits for it (Record, RecordWith,
// Pending.Wait) and lazy when nobody does yet (Enqueue). Lazy events ride
// along with the next urgent write or are committed Options.CommitWindow
// after they were handed over, whichever comes first: a request's early
// steps (message received, intent routed, policy decided) then share the
// commit of the step that must be durable before Parley acts or answers.
//
// On PostgreSQL a batch of plain events (no RecordWith) costs one round
// trip when the head is where this recorder left it: one statement moves
// the head on that condition and inserts the rows (writeAppend). When
// another replica moved it, that statement writes nothing and the batch
// locks and reads the head first, in two round trips (writePipelined);
// RecordWith batches run their callbacks in an ordinary transaction.
//
// The guarantees of a single write hold for each write in a batch:
//   - durable before answered: a waiter hears of its events only after the
//     batch that holds them committed;
//   - one total order: the chain is extended in queue order under one
//     lock hold of the head, on every dialect;
//   - failures are not shared silently: when a batch fails, each of its
//     writes is tried again alone, so it fails only the writes it must and
//     every waiter hears its own outcome;
//   - RecordWith keeps its meaning: its store writes and its events commit
//     in the same transaction, and when it fails, a savepoint undoes its
//     writes alone while the others in the batch go on.

// Pending is a write handed to the recorder. Wait tells its outcome.
type Pending struct {
	r      *Recorder
	ctx    context.Context
	events []Event                          // normalised events to append (Enqueue, Record)
	one    [1]Event                         // events' room when there is one (most are)
	write  func(*store.Tx) ([]Event, error) // store writes and their events (RecordWith)
	queued time.Time

	// Guarded by r.qmu.
	state  pendingState
	urgent bool

	done   chan struct{} // closed once stored and err are final
	stored []Event
	err    error
}

type pendingState int

const (
	stateQueued pendingState = iota
	stateTaken               // in a batch being written
	stateDone
)

// Wait waits until p's events are durably stored, or their write failed,
// and returns them with Seq, Time, PrevHash and Hash set. A lazy write is
// made urgent: it is committed now instead of at the end of the window.
// If ctx ends while p still waits in the queue, p is withdrawn and never
// written; once its batch is being written, Wait waits for it.
func (p *Pending) Wait(ctx context.Context) ([]Event, error) {
	select {
	case <-p.done:
		return p.stored, p.err
	default:
	}
	r := p.r
	r.qmu.Lock()
	if p.state == stateQueued && !r.busy && !r.stopping && r.waiters <= 1 {
		// Nobody is committing and the last batch had at most one
		// waiter: write the queue here, rather than wake the committer
		// and sleep until it is done (two goroutine switches a request
		// when requests come one at a time).
		r.busy = true
		batch := r.takeLocked()
		r.qmu.Unlock()
		if v := r.writeTurn(batch); v != nil {
			panic(v) // up the waiter's goroutine, the turn handed back
		}
		r.qmu.Lock()
	}
	if p.state == stateQueued {
		// Someone else is writing, or writers come together: the
		// committer writes p.
		if !p.urgent {
			p.urgent = true
			r.urgent++
		}
		r.signal()
	}
	r.qmu.Unlock()
	select {
	case <-p.done:
		return p.stored, p.err
	case <-ctx.Done():
	}
	r.qmu.Lock()
	if p.state == stateQueued {
		r.withdrawLocked(p, fmt.Errorf("wait for the audit write: %w", ctx.Err()))
	}
	r.qmu.Unlock()
	<-p.done // withdrawn just now, or its batch ends within its deadline
	return p.stored, p.err
}

// writeTurn writes batch, taken with the turn to write (Recorder.busy),
// and hands the turn back, waking the committer when writes are left or
// Close came meanwhile (it waits while someone else writes). A panic in
// the batch is returned (see commitGuarded).
func (r *Recorder) writeTurn(batch []*Pending) (panicked any) {
	panicked = r.commitGuarded(batch)
	r.qmu.Lock()
	r.busy = false
	if len(r.queue) > 0 || r.stopping {
		r.signal()
	}
	r.qmu.Unlock()
	return panicked
}

// commitGuarded commits batch. When something in it panics (a RecordWith
// callback), the writes of the batch not settled yet fail with the panic
// in their error, and the panic's value is returned: the recorder keeps
// working for everyone else.
func (r *Recorder) commitGuarded(batch []*Pending) (panicked any) {
	defer func() {
		if panicked = recover(); panicked == nil {
			return
		}
		r.head.known = false
		r.qmu.Lock()
		defer r.qmu.Unlock()
		for _, p := range batch {
			if p.state != stateDone {
				p.state, p.stored, p.err = stateDone, nil, fmt.Errorf("audit write failed: panic in its batch: %v", panicked)
				close(p.done)
			}
		}
	}()
	if len(batch) > 0 {
		r.commit(batch)
	}
	return nil
}

// Commits returns how many write transactions the recorder has run: with
// the number of events written, it tells how well writes are batched.
func (r *Recorder) Commits() int64 { return r.batches.Load() }

// Done is closed when the write's outcome is known.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Settled returns a Pending whose outcome is already known: for callers
// that decided without writing, and for stand-ins of the recorder.
func Settled(stored []Event, err error) *Pending {
	p := &Pending{done: make(chan struct{}), stored: stored, err: err, state: stateDone}
	close(p.done)
	return p
}

// Enqueue validates events, stamps their time when zero, and hands them to
// the chain without waiting: they are committed, in one transaction and
// in order after everything handed over before, with the next write
// someone waits for, and within Options.CommitWindow in any case. Wait
// on the result before acting on the events being in the log. An invalid
// event fails the whole call, at once, and nothing of it is written.
func (r *Recorder) Enqueue(ctx context.Context, events ...Event) *Pending {
	return r.submit(ctx, events, nil, false)
}

// EnqueueOne is Enqueue of one event. Called through an interface, as the
// pipeline calls it for every step of a request, it takes the event
// without the slice a variadic call would put on the heap.
func (r *Recorder) EnqueueOne(ctx context.Context, e Event) *Pending {
	return r.submit(ctx, []Event{e}, nil, false)
}

// submit normalises events (or takes write) and queues them.
func (r *Recorder) submit(ctx context.Context, events []Event, write func(*store.Tx) ([]Event, error), urgent bool) *Pending {
	p := &Pending{r: r, ctx: ctx, write: write, done: make(chan struct{}), urgent: urgent}
	if write == nil {
		if len(events) == 0 {
			return Settled(nil, nil)
		}
		p.events = p.one[:]
		if len(events) > 1 {
			p.events = make([]Event, len(events))
		}
		for i, e := range events {
			n, err := normalise(e)
			if err != nil {
				return Settled(nil, err)
			}
			p.events[i] = n
		}
	}
	r.qmu.Lock()
	if r.stopping {
		r.qmu.Unlock()
		// Closed: the caller writes its own batch, after what the
		// committer had left to write.
		<-r.committed
		r.inline.Lock()
		r.stamp(p)
		r.commit([]*Pending{p})
		r.inline.Unlock()
		return p
	}
	// Stamped under the queue lock, so that times do not go backwards
	// along the chain.
	r.stamp(p)
	p.queued = time.Now()
	r.queue = append(r.queue, p)
	switch {
	case urgent:
		// Record and RecordWith wait at once: Wait writes p itself or
		// wakes the committer.
		r.urgent++
	case len(r.queue) == 1:
		// Lazy writes wake the committer only when their window closes
		// (or an urgent write comes first): a request's early events
		// usually go with its own urgent write, from Pending.Wait,
		// without the committer ever waking.
		r.lazy.Reset(r.window)
	}
	r.qmu.Unlock()
	return p
}

// stamp sets the time of p's events that have none.
func (r *Recorder) stamp(p *Pending) {
	now := time.Time{}
	for i := range p.events {
		if p.events[i].Time.IsZero() {
			if now.IsZero() {
				now = r.now().UTC().Truncate(time.Millisecond)
			}
			p.events[i].Time = now
		}
	}
}

// signal wakes the committer. Call with qmu held.
func (r *Recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// withdrawLocked removes a queued p and settles it with err.
func (r *Recorder) withdrawLocked(p *Pending, err error) {
	for i, q := range r.queue {
		if q == p {
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			break
		}
	}
	if p.urgent {
		r.urgent--
	}
	p.state, p.err = stateDone, err
	close(p.done)
}

// commitLoop is the committer: it writes the queue in batches until the
// recorder is closed and the queue is empty.
func (r *Recorder) commitLoop() {
	defer close(r.committed)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		r.qmu.Lock()
		if r.busy {
			// A waiter writes a batch itself (Pending.Wait): it wakes
			// the committer when it is done and writes were left.
			r.qmu.Unlock()
			<-r.wake
			continue
		}
		n, urgent, stopping, waiters := len(r.queue), r.urgent, r.stopping, r.waiters
		var oldest time.Time
		if n > 0 {
			oldest = r.queue[0].queued
		}
		r.qmu.Unlock()
		if n == 0 {
			if stopping {
				return
			}
			<-r.wake
			continue
		}
		if urgent == 0 && !stopping {
			// Only lazy writes: hold them until someone waits or the
			// window closes.
			if wait := r.window - time.Since(oldest); wait > 0 {
				timer.Reset(wait)
				select {
				case <-r.wake:
				case <-timer.C:
				}
				timer.Stop()
				continue
			}
		}
		if urgent > 0 && urgent < waiters && !stopping {
			// Fewer writers wait than the last batch had: the others are
			// likely a moment from handing over their next write (they
			// were answered by that batch). Give them a short, bounded
			// while to join this one instead of paying a commit each.
			timer.Reset(r.collect)
			for urgent < waiters {
				select {
				case <-r.wake:
				case <-timer.C:
					urgent = waiters // stop waiting
					continue
				}
				r.qmu.Lock()
				urgent = r.urgent
				r.qmu.Unlock()
			}
			timer.Stop()
		}
		r.qmu.Lock()
		if r.busy {
			r.qmu.Unlock()
			continue
		}
		r.busy = true
		batch := r.takeLocked()
		r.qmu.Unlock()
		if v := r.writeTurn(batch); v != nil {
			r.log.Error("audit batch panicked; its writes failed", "writes", len(batch), "panic", fmt.Sprint(v))
		}
	}
}

// takeLocked removes the next batch from the queue: writes in order, up
// to maxBatchEvents events (a larger write goes alone), and counts its
// waiters. Writes whose context ended are withdrawn. Call with qmu held,
// having set busy.
func (r *Recorder) takeLocked() []*Pending {
	var batch []*Pending
	events := 0
	i := 0
	for ; i < len(r.queue); i++ {
		p := r.queue[i]
		if err := p.ctx.Err(); err != nil {
			if p.urgent {
				r.urgent--
			}
			p.state, p.err = stateDone, fmt.Errorf("audit write abandoned: %w", err)
			close(p.done)
			continue
		}
		size := len(p.events)
		if p.write != nil {
			size = 1
		}
		if len(batch) > 0 && events+size > maxBatchEvents {
			break
		}
		if p.urgent {
			r.urgent--
		}
		p.state = stateTaken
		batch = append(batch, p)
		events += size
	}
	r.queue = append(r.queue[:0], r.queue[i:]...)
	if len(r.queue) == 0 {
		r.lazy.Stop()
	}
	r.waiters = 0
	for _, p := range batch {
		if p.urgent {
			r.waiters++
		}
	}
	return batch
}

// maxBatchEvents bounds the events of one batch, and so the time its
// transaction holds the chain head.
const maxBatchEvents = 256

// commit writes batch and settles every write in it. When the batch as a
// whole fails, each write is tried again alone, so that a write that
// cannot be stored fails only itself.
func (r *Recorder) commit(batch []*Pending) {
	err := r.writeBatch(batch)
	if err != nil && len(batch) > 1 {
		r.log.Warn("audit batch failed; writing its parts one by one", "writes", len(batch), "err", err)
		for _, p := range batch {
			if perr := r.writeBatch([]*Pending{p}); perr != nil && p.err == nil {
				p.err = perr
			}
		}
	} else if err != nil && batch[0].err == nil {
		batch[0].err = err
	}
	for _, p := range batch {
		if p.err != nil {
			p.stored = nil
		}
		// Sinks get the events before the waiter hears of them, as
		// when Record wrote them itself.
		for _, e := range p.stored {
			r.fanOut(p.ctx, e)
		}
		r.qmu.Lock()
		p.state = stateDone
		r.qmu.Unlock()
		close(p.done)
	}
}

// errOwnFailure stops a batch of one write that failed on its own (its
// error is on the Pending).
var errOwnFailure = errors.New("the write failed")

// writeBatch writes batch in one transaction. Each write's own failure
// (its callback or its events) is set on it; the error returned is the
// transaction's.
func (r *Recorder) writeBatch(batch []*Pending) error {
	for _, p := range batch {
		p.stored, p.err = nil, nil
	}
	if r.behind != nil {
		if done, err := r.writeBehind(batch); done {
			return err
		}
		if err := r.lockCaughtUp(); err != nil {
			return err
		}
		defer r.behind.copying.Unlock()
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	st, err := r.statements(ctx)
	if err != nil {
		return err
	}
	if r.db.Dialect() == store.Postgres && !slices.ContainsFunc(batch, func(p *Pending) bool { return p.write != nil }) {
		if r.head.known {
			if done, err := r.writeAppend(ctx, st, batch); done {
				return err
			}
		}
		return r.writePipelined(ctx, st, batch)
	}
	r.head.known = false
	alone := len(batch) == 1
	r.batches.Add(1)
	var headSeq int64
	var headHash string
	var c chainer
	err = r.db.WriteBatch(ctx, func(tx *store.Tx) error {
		// The lock is held until commit: another replica's batch waits
		// here and then reads the head this one wrote.
		err := tx.QueryRowStmt(ctx, st.head).Scan(&headSeq, &headHash)
		if errors.Is(err, sql.ErrNoRows) {
			// Someone deleted the head row. Refuse rather than restart
			// the chain and hide whatever else was done.
			return fmt.Errorf("audit head row is missing: run verify")
		}
		if err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		c = r.chainer(headSeq, headHash)
		for _, p := range batch {
			if p.write == nil {
				p.stored = c.link(p.events)
				continue
			}
			// The store writes of a callback may read what is written
			// so far: write the events before it first.
			if err := c.flush(ctx, tx, st); err != nil {
				return err
			}
			mark := c
			run := func() error {
				events, err := p.write(tx)
				if err != nil {
					return err
				}
				norm := make([]Event, len(events))
				for i, e := range events {
					if e.Time.IsZero() {
						e.Time = r.now()
					}
					if norm[i], err = normalise(e); err != nil {
						return err
					}
				}
				p.stored = c.link(norm)
				return c.flush(ctx, tx, st)
			}
			if alone {
				if err := run(); err != nil {
					p.err = err
					return errOwnFailure
				}
				continue
			}
			if err := tx.Savepoint(ctx, run); err != nil {
				if errors.Is(err, store.ErrTxBroken) {
					return err
				}
				p.err, p.stored = err, nil
				c = mark
			}
		}
		if c.seq == headSeq {
			return nil // every write failed on its own, or wrote no event
		}
		return c.finish(ctx, tx, st)
	})
	r.keepRows(c)
	if errors.Is(err, errOwnFailure) {
		return nil
	}
	if err == nil {
		r.head = c.stored(headSeq, headHash)
	}
	return err
}

// knownHead is the chain head as this recorder last wrote or read it, for
// PostgreSQL's one-statement append and the in-memory write-behind (the
// head the next batch links after). Only whoever holds the turn to write
// uses it: the committer or a waiter writing its own batch (Recorder.busy),
// and after Close the caller holding Recorder.inline, once the committer
// stopped.
type knownHead struct {
	known bool
	seq   int64
	hash  string // as stored: "" for the empty chain
}

// writeAppend writes a batch of plain events on PostgreSQL in one
// statement, one round trip, no explicit transaction: it moves the head
// from where this recorder last left it and inserts the rows after it
// (appendQuery). When someone else moved the head since (another replica,
// another process), the statement writes nothing and fails on the first
// row's missing seq: then done is false and the caller takes the lock and
// reads the head instead. Any other failure is the batch's (done, err).
func (r *Recorder) writeAppend(ctx context.Context, st *statements, batch []*Pending) (done bool, err error) {
	from := r.head
	r.head.known = false // known again only once this write is known to have landed
	n := 0
	for _, p := range batch {
		n += len(p.events)
	}
	if n > maxBatchEvents {
		return false, nil // one write larger than a batch: the locked path splits it
	}
	c := r.chainer(from.seq, from.hash)
	defer func() { r.keepRows(c) }() // the rows linked below, not these
	for _, p := range batch {
		p.stored = c.link(p.events)
	}
	args := make([]any, 0, 4+n*rowColumns)
	args = append(args, c.seq, c.prev, from.seq, from.hash)
	args = rowArgs(c.rows, args)
	r.batches.Add(1)
	if _, err := r.db.SQL().ExecContext(ctx, st.appendQuery(n), args...); err != nil {
		if store.IsNotNullViolation(err, "seq") {
			return false, nil // the head moved: nothing was written
		}
		return true, err
	}
	r.head = c.stored(from.seq, from.hash)
	return true, nil
}

// writePipelined writes a batch of plain events on PostgreSQL in two round
// trips while the head is locked (store.DB.WritePipelined): the head read
// with BEGIN, then every row, the head's move and COMMIT.
func (r *Recorder) writePipelined(ctx context.Context, st *statements, batch []*Pending) error {
	r.head.known = false
	r.batches.Add(1)
	var headSeq int64
	var headHash string
	var c chainer
	err := r.db.WritePipelined(ctx, st.headQuery, []any{&headSeq, &headHash}, func() ([]store.Statement, error) {
		c = r.chainer(headSeq, headHash)
		for _, p := range batch {
			p.stored = c.link(p.events)
		}
		var stmts []store.Statement
		for rows := c.rows; len(rows) > 0; {
			k := chunk(len(rows))
			stmts = append(stmts, store.Statement{Query: st.insertSQL[bits.Len(uint(k))-1], Args: rowArgs(rows[:k], make([]any, 0, k*rowColumns))})
			rows = rows[k:]
		}
		return append(stmts, store.Statement{Query: st.advanceSQL, Args: []any{c.seq, c.prev}}), nil
	})
	r.keepRows(c)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit head row is missing: run verify")
	}
	if err != nil {
		return err
	}
	r.head = c.stored(headSeq, headHash)
	return nil
}

// stored is the head once c's rows, linked after the head (seq, hash),
// are committed.
func (c *chainer) stored(seq int64, hash string) knownHead {
	if c.seq == seq {
		return knownHead{known: true, seq: seq, hash: hash}
	}
	return knownHead{known: true, seq: c.seq, hash: c.prev}
}

// batchContext bounds a batch by the latest deadline of its writes (they
// are written together, so none may fail for another's earlier one), and
// by maxBatchWait when one of them has none.
func batchContext(batch []*Pending) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	if latest.IsZero() {
		latest = time.Now().Add(maxBatchWait)
	}
	return context.WithDeadline(context.Background(), latest)
}

// maxBatchWait bounds a batch holding a write without a deadline.
const maxBatchWait = time.Minute

// chainer links events after the head, in memory, and writes them with
// as few statements as it can.
type chainer struct {
	seq  int64
	prev string
	rows []row // linked: rows[next:] are not inserted yet
	next int
	args []any // insert's arguments, reused
}

// chainer starts linking after the head (seq, hash as stored), in the
// rows the last batch left (Recorder.rows).
func (r *Recorder) chainer(seq int64, hash string) chainer { return newChainer(seq, hash, r.rows[:0]) }

// newChainer starts linking after the head (seq, hash as stored: "" for
// the empty chain), appending to rows.
func newChainer(seq int64, hash string, rows []row) chainer {
	c := chainer{seq: seq, prev: hash, rows: rows}
	if seq == 0 {
		c.prev = Genesis
	}
	return c
}

// keepRows keeps c's rows for the next batch, emptied so that they hold
// no event's text, unless a batch made them larger than batches are.
func (r *Recorder) keepRows(c chainer) {
	clear(c.rows)
	if cap(c.rows) <= maxBatchEvents {
		r.rows = c.rows[:0]
	}
}

// link gives events their places in the chain, in place, and returns
// them stored. Linking them again (a batch tried again) replaces the
// places the first gave.
func (c *chainer) link(events []Event) []Event {
	for i := range events {
		e := &events[i]
		e.Seq = c.seq + 1
		e.PrevHash = c.prev
		rw := toRow(*e)
		e.Hash = rw.computeHash()
		rw.hash = e.Hash
		c.rows = append(c.rows, rw)
		c.seq, c.prev = e.Seq, e.Hash
	}
	return events
}

// flush inserts the pending rows.
func (c *chainer) flush(ctx context.Context, tx *store.Tx, st *statements) error {
	for c.next < len(c.rows) {
		if err := c.insert(ctx, tx, st, false); err != nil {
			return err
		}
	}
	return nil
}

// finish inserts the pending rows and moves the head after them: on
// PostgreSQL the last rows and the head go in one statement (one round
// trip fewer while the head is locked).
func (c *chainer) finish(ctx context.Context, tx *store.Tx, st *statements) error {
	for c.next < len(c.rows) {
		n := len(c.rows) - c.next
		last := st.insertAdvance != nil && n == chunk(n)
		if err := c.insert(ctx, tx, st, last); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
	if _, err := tx.ExecStmt(ctx, st.advance, c.seq, c.prev); err != nil {
		return fmt.Errorf("advance head: %w", err)
	}
	return nil
}

// chunk is how many of n rows the next INSERT writes: the largest power
// of two not above n or maxInsertRows, so that a handful of prepared
// statements (64, 32, ... 1 rows) write any number.
func chunk(n int) int {
	return 1 << (bits.Len(uint(min(n, maxInsertRows))) - 1)
}

// insert writes the next chunk of pending rows, with the head's move when
// advance is set.
func (c *chainer) insert(ctx context.Context, tx *store.Tx, st *statements, advance bool) error {
	k := chunk(len(c.rows) - c.next)
	// One argument slice for the batch's statements, emptied after each.
	args := rowArgs(c.rows[c.next:c.next+k], c.args[:0])
	defer func() { clear(args); c.args = args[:0] }()
	stmt := st.insert[bits.Len(uint(k))-1]
	if advance {
		stmt = st.insertAdvance[bits.Len(uint(k))-1]
		args = append(args, c.seq, c.prev)
	}
	if _, err := tx.ExecStmt(ctx, stmt, args...); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	c.next += k
	return nil
}

// rowArgs appends the values of rows, in column order, to args.
func rowArgs(rows []row, args []any) []any {
	for _, rw := range rows {
		args = append(args, rw.seq, rw.timeMS, rw.typ, rw.requestID, rw.platform, rw.channel, rw.thread, rw.subject,
			rw.action, rw.params, rw.decision, rw.rule, rw.confirmationID, rw.outcome, rw.errText,
			rw.durationMS, rw.router, rw.confidence, rw.text, rw.details, rw.prevHash, rw.hash)
	}
	return args
}

// insertQuery inserts k rows.
func insertQuery(k int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", rowColumns), ", ") + ")"
	return `INSERT INTO audit_events (` + columns + `) VALUES ` + strings.TrimSuffix(strings.Repeat(one+", ", k), ", ")
}

// advanceQuery moves the head.
const advanceQuery = `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`

// rowColumns is the number of columns of audit_events.
const rowColumns = 22

// maxInsertRows is the most rows one INSERT writes (a power of two).
const maxInsertRows = 64

// statements are the recorder's prepared statements, and on PostgreSQL
// the text of those it sends without database/sql (placeholders already
// rebound).
type statements struct {
	head    *store.Stmt
	advance *store.Stmt
	insert  []*store.Stmt // insert[i] writes 1<<i rows
	// insertAdvance[i] writes 1<<i rows and moves the head (PostgreSQL,
	// whose WITH takes an INSERT; nil on SQLite).
	insertAdvance []*store.Stmt

	// PostgreSQL only.
	headQuery  string   // reads and locks the head
	advanceSQL string   // moves the head
	insertSQL  []string // insertSQL[i] writes 1<<i rows
	appendSQL  []string // appendSQL[n] moves the head and writes n rows (appendQuery); built when first used
}

// appendQuery returns the statement that appends n rows after the head in
// one go, if the head is still where this recorder left it:
//
//	WITH moved AS (UPDATE audit_head SET seq = $1, hash = $2
//	               WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING 1)
//	INSERT INTO audit_events (...) VALUES ((SELECT $5::BIGINT FROM moved), $6, ...), (...)
//
// The head's row lock is taken by the UPDATE and held to the statement's
// commit, as SELECT ... FOR UPDATE holds it in a transaction; when another
// writer moved the head meanwhile, the UPDATE matches nothing (PostgreSQL
// checks the WHERE again on the row it waited for), the first row's seq is
// NULL and the statement fails whole on seq's NOT NULL.
func (st *statements) appendQuery(n int) string {
	if q := st.appendSQL[n]; q != "" {
		return q
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", rowColumns), ", ") + ")"
	first := "((SELECT ?::BIGINT FROM moved), " + strings.TrimSuffix(strings.Repeat("?, ", rowColumns-1), ", ") + ")"
	q := `WITH moved AS (UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ? RETURNING 1)
		INSERT INTO audit_events (` + columns + `) VALUES ` + first + strings.Repeat(", "+one, n-1)
	st.appendSQL[n] = store.Postgres.Rebind(q)
	return st.appendSQL[n]
}

// all lists the statements.
func (st *statements) all() []*store.Stmt {
	return slices.Concat([]*store.Stmt{st.head, st.advance}, st.insert, st.insertAdvance)
}

// statements prepares the statements once. It runs before the batch's
// transaction: an in-memory database has one connection, which a
// transaction holds.
func (r *Recorder) statements(ctx context.Context) (*statements, error) {
	r.stmtMu.Lock()
	defer r.stmtMu.Unlock()
	if r.stmts != nil {
		return r.stmts, nil
	}
	st := &statements{}
	var err error
	prepare := func(q string) *store.Stmt {
		if err != nil {
			return nil
		}
		var s *store.Stmt
		s, err = r.db.Prepare(ctx, q)
		return s
	}
	d := r.db.Dialect()
	head := `SELECT seq, hash FROM audit_head WHERE id = 1` + d.ForUpdate()
	st.head = prepare(head)
	st.advance = prepare(advanceQuery)
	for k := 1; k <= maxInsertRows; k *= 2 {
		insert := insertQuery(k)
		st.insert = append(st.insert, prepare(insert))
		if d == store.Postgres {
			st.insertAdvance = append(st.insertAdvance, prepare(`WITH inserted AS (`+insert+`)
				`+advanceQuery))
			st.insertSQL = append(st.insertSQL, d.Rebind(insert))
		}
	}
	if d == store.Postgres {
		st.headQuery, st.advanceSQL = head, d.Rebind(advanceQuery)
		st.appendSQL = make([]string, maxBatchEvents+1)
	}
	if err != nil {
		for _, s := range st.all() {
			if s != nil {
				s.Close()
			}
		}
		return nil, fmt.Errorf("audit statements: %w", err)
	}
	r.stmts = st
	return st, nil
}
