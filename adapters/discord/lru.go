package discord

import "container/list"

// lru is a bounded map that forgets its least recently used entries. It is
// not safe for concurrent use: the Adapter guards every lru with its mutex.
type lru[V any] struct {
	max int
	ll  *list.List
	m   map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: make(map[string]*list.Element)}
}

// get returns the value for key and marks it recently used.
func (l *lru[V]) get(key string) (V, bool) {
	if e, ok := l.m[key]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// put stores the value, evicting the least recently used entry when full.
func (l *lru[V]) put(key string, val V) {
	if e, ok := l.m[key]; ok {
		e.Value.(*lruEntry[V]).val = val
		l.ll.MoveToFront(e)
		return
	}
	l.m[key] = l.ll.PushFront(&lruEntry[V]{key: key, val: val})
	for l.ll.Len() > l.max {
		last := l.ll.Back()
		l.ll.Remove(last)
		delete(l.m, last.Value.(*lruEntry[V]).key)
	}
}

// add stores key and reports whether it was new.
func (l *lru[V]) add(key string, val V) bool {
	if _, ok := l.get(key); ok {
		return false
	}
	l.put(key, val)
	return true
}
