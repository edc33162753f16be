package slack

import (
	"context"
	"sync"
)

// State keeps small values across restarts and replicas. *chatstate.Store
// implements it.
type State interface {
	// Put records value under key; a key already there keeps its value.
	Put(ctx context.Context, key, value string) error
	// Get returns the value under key, and false when there is none.
	Get(ctx context.Context, key string) (string, bool, error)
}

// threadKeyBase prefixes the State keys of threads Parley answered in.
const threadKeyBase = "slack-thread:"

// threadBook knows the threads Parley posted in, so a reply there is read
// without a mention ("confirm K7Q2" under a prompt, "and in staging?").
// Each thread is recorded once in State, shared by every replica and kept
// across restarts, and remembered here to spare the database.
type threadBook struct {
	a     *Adapter
	state State
	seen  *lru // threads known to be answered
}

func newThreadBook(a *Adapter, state State) *threadBook {
	if state == nil {
		state = &memoryState{}
	}
	return &threadBook{a: a, state: state, seen: newLRU(8192)}
}

// mark records that Parley posted in the thread. A failure is logged: the
// thread then needs mentions on other replicas, nothing is lost.
func (b *threadBook) mark(ctx context.Context, channel, thread string) {
	if channel == "" || thread == "" {
		return
	}
	key := threadKeyBase + channel + ":" + thread
	if !b.seen.add(key) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.a.opts.CallTimeout)
	defer cancel()
	if err := b.state.Put(ctx, key, "1"); err != nil {
		b.a.log.Warn("thread not recorded; replies there need a mention on other replicas", "channel", channel, "thread", thread, "err", err)
		b.seen.forget(key)
	}
}

// answered reports whether Parley posted in the thread, here or on any
// replica. A failed lookup counts as no: the person can still mention
// Parley.
func (b *threadBook) answered(ctx context.Context, channel, thread string) bool {
	key := threadKeyBase + channel + ":" + thread
	if b.seen.has(key) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, b.a.opts.CallTimeout)
	defer cancel()
	_, ok, err := b.state.Get(ctx, key)
	if err != nil {
		b.a.log.Warn("thread lookup failed; a reply there needs a mention", "channel", channel, "thread", thread, "err", err)
		return false
	}
	if ok {
		b.seen.add(key)
	}
	return ok
}

// memoryState is the State of an adapter given none: this process only.
type memoryState struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memoryState) Put(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	if _, ok := s.m[key]; !ok {
		s.m[key] = value
	}
	return nil
}

func (s *memoryState) Get(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok, nil
}
