package llmcost

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Key hashes the parts of a question into a cache key. Parts are length
// prefixed, so ("ab","c") and ("a","bc") differ.
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Cache holds answers for a TTL, at most Max of them (the oldest entry is
// dropped first). It is safe for concurrent use. A nil *Cache caches
// nothing.
type Cache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	items map[string]entry[V]
	order []slot // insertion order, for eviction
	seq   uint64
}

type entry[V any] struct {
	v       V
	expires time.Time
	seq     uint64
}

// slot is a key in insertion order; seq tells a re-inserted key's old slot
// from its current one.
type slot struct {
	key string
	seq uint64
}

// NewCache returns a cache; max <= 0 means 1024, now nil means time.Now.
// A ttl <= 0 returns nil: no caching.
func NewCache[V any](ttl time.Duration, max int, now func() time.Time) *Cache[V] {
	if ttl <= 0 {
		return nil
	}
	if max <= 0 {
		max = 1024
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{ttl: ttl, max: max, now: now, items: map[string]entry[V]{}}
}

// Get returns the live value under key.
func (c *Cache[V]) Get(key string) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return zero, false
	}
	if !c.now().Before(e.expires) {
		delete(c.items, key)
		return zero, false
	}
	return e.v, true
}

// Put stores v under key for the TTL.
func (c *Cache[V]) Put(key string, v V) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.order = append(c.order, slot{key, c.seq})
	c.items[key] = entry[V]{v: v, expires: c.now().Add(c.ttl), seq: c.seq}
	for len(c.items) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.items[old.key]; ok && e.seq == old.seq {
			delete(c.items, old.key)
		}
	}
	if len(c.order) > 2*c.max { // slots of replaced or expired keys linger
		live := c.order[:0]
		for _, sl := range c.order {
			if e, ok := c.items[sl.key]; ok && e.seq == sl.seq {
				live = append(live, sl)
			}
		}
		c.order = live
	}
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
