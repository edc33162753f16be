package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/store"
)

// Write-behind on an in-memory database (Options.WriteBehind).
//
// An in-memory database lives and dies with the process, and this process
// is its only writer. There, the chain the recorder links in memory is the
// log, and the database holds a copy of it for reading, written behind the
// requests on another goroutine in large transactions:
//   - A batch of plain events (Record, Enqueue) is linked after the head the
//     recorder keeps and is recorded once linked: its waiters hear of it at
//     once, with Seq and Hash, and sinks get it. Nothing of this can fail:
//     events were validated when they were handed over.
//   - The linked rows wait in a backlog, copied within Options.CommitWindow
//     of the first of them, or by the writer itself when the backlog holds
//     maxBehindRows.
//   - Every read (List, Each, Get, Head, SeqRange, Verify, VerifyTail) first
//     copies what is left: a read sees every event recorded before it
//     started, as on a file.
//   - A batch with a RecordWith write, whose store changes and events commit
//     together, is written in a transaction after the backlog, as on a
//     file; so is the first batch, which reads the head, and every batch
//     after Close.
//   - A copy that fails fails the log: every later write and read returns
//     its error, so Parley stops acting (it acts only on what it could
//     record), and the failure is logged. The events recorded before it are
//     the ones whose copy failed; nothing is dropped silently.
//
// The guarantees of the log keep their meaning: durable, on an in-memory
// database, is in the process's memory, which is where the copy lives too.

// writeBehind is the backlog of events recorded but not yet copied to the
// database.
type writeBehind struct {
	// copying is held while rows are copied, and by a write in a
	// transaction from the backlog's copy to its commit, so that the
	// database's rows stay in chain order. Lock it before mu.
	copying sync.Mutex
	mu      sync.Mutex // guards rows, spare, err and off
	rows    []row      // linked, not yet copied
	spare   []row      // the rows of the last copy, emptied, for the next backlog
	err     error      // a copy failed: the log is failed
	off     bool       // Close was called: batches are written in transactions
	timer   *time.Timer
	window  time.Duration
}

// maxBehindRows bounds the backlog: a writer that fills it copies it
// itself, so a copy that falls behind slows writers instead of growing.
const maxBehindRows = 8192

func newWriteBehind(r *Recorder) *writeBehind {
	b := &writeBehind{window: r.window}
	b.timer = time.AfterFunc(time.Hour, r.copyInBackground)
	b.timer.Stop()
	return b
}

// writeBehind records a batch of plain events in memory and queues their
// copy. It returns false, having done nothing, when the batch must be
// written in a transaction instead. Call holding the turn to write.
func (r *Recorder) writeBehind(batch []*Pending) (bool, error) {
	written, full, err := r.linkBehind(batch)
	if !written || err != nil {
		return written, err
	}
	if full {
		// The batch is recorded; a failure is the log's, and every write
		// and read after this one hears of it.
		r.copyInBackground()
	}
	return true, nil
}

// copyInBackground copies the backlog for no reader (the window closed, or
// the backlog is full): a failure has nobody to return to, so it is logged.
func (r *Recorder) copyInBackground() {
	if err := r.copyBehind(); err != nil {
		r.log.Error("audit log copy failed; Parley stops recording and acting", "err", err)
	}
}

// linkBehind links batch after the head into the backlog. A panic on the
// way (a bug) leaves the backlog and the head as they were, and the lock
// free: the batch's writers are told it failed (commitGuarded), so none
// of it may be copied.
func (r *Recorder) linkBehind(batch []*Pending) (written, full bool, err error) {
	b := r.behind
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return true, false, b.err
	}
	if b.off || !r.head.known || slices.ContainsFunc(batch, func(p *Pending) bool { return p.write != nil }) {
		return false, false, nil
	}
	if b.rows == nil {
		b.rows, b.spare = b.spare, nil
	}
	// The backlog and the head change only once the whole batch is linked.
	c := newChainer(r.head.seq, r.head.hash, b.rows)
	for _, p := range batch {
		p.stored = c.link(p.events)
	}
	if len(b.rows) == 0 {
		b.timer.Reset(b.window)
	}
	b.rows = c.rows
	r.head = c.stored(r.head.seq, r.head.hash)
	return true, len(b.rows) >= maxBehindRows, nil
}

// copyBehind copies the backlog to the database.
func (r *Recorder) copyBehind() error {
	b := r.behind
	b.copying.Lock()
	defer b.copying.Unlock()
	return r.copyLocked()
}

// copyLocked copies the backlog in one transaction. Call holding copying.
func (r *Recorder) copyLocked() error {
	b := r.behind
	b.mu.Lock()
	rows, err := b.rows, b.err
	b.rows = nil
	b.timer.Stop()
	b.mu.Unlock()
	if err != nil || len(rows) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), maxBatchWait)
	defer cancel()
	st, err := r.statements(ctx)
	if err == nil {
		last := rows[len(rows)-1]
		c := chainer{seq: last.seq, prev: last.hash, rows: rows}
		r.batches.Add(1)
		err = r.db.WriteBatch(ctx, func(tx *store.Tx) error { return c.finish(ctx, tx, st) })
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.err = fmt.Errorf("audit log: copying events #%d to #%d to the in-memory database failed, so the log is failed: %w",
			rows[0].seq, rows[len(rows)-1].seq, err)
		return b.err
	}
	clear(rows)
	if cap(rows) <= 2*maxBehindRows {
		b.spare = rows[:0]
	}
	return nil
}

// caughtUp copies the backlog before a read, so that the read sees every
// event recorded before it.
func (r *Recorder) caughtUp() error {
	if r.behind == nil {
		return nil
	}
	return r.copyBehind()
}

// lockCaughtUp copies the backlog and keeps it copied, for a write in a
// transaction: on success the caller holds copying and must unlock it
// once its transaction ended.
func (r *Recorder) lockCaughtUp() error {
	b := r.behind
	b.copying.Lock()
	if err := r.copyLocked(); err != nil {
		b.copying.Unlock()
		return err
	}
	return nil
}

// closeBehind copies what is left; the batches after it are written in
// transactions.
func (r *Recorder) closeBehind() error {
	b := r.behind
	b.copying.Lock()
	defer b.copying.Unlock()
	b.mu.Lock()
	b.off = true
	b.mu.Unlock()
	return r.copyLocked()
}
