package intent

import (
	"context"
	"sync"
	"time"
)

// Cached wraps an InventorySource so that at most one lookup runs per TTL;
// the router asks on every message, and a cluster list per message would
// be wasteful. When a refresh fails, the last good inventory is served
// (names rarely vanish) together with the error for the caller to log.
type Cached struct {
	src InventorySource
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	inv     Inventory
	fetched time.Time
	ok      bool
}

// NewCached returns a caching InventorySource; now may be nil (time.Now).
func NewCached(src InventorySource, ttl time.Duration, now func() time.Time) *Cached {
	if now == nil {
		now = time.Now
	}
	return &Cached{src: src, ttl: ttl, now: now}
}

// Inventory implements InventorySource.
func (c *Cached) Inventory(ctx context.Context) (Inventory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && c.now().Sub(c.fetched) < c.ttl {
		return c.inv, nil
	}
	inv, err := c.src.Inventory(ctx)
	if err != nil {
		return c.inv, err
	}
	c.inv, c.fetched, c.ok = inv, c.now(), true
	return inv, nil
}

// Invalidate drops the cached inventory, e.g. after a change Parley made.
func (c *Cached) Invalidate() {
	c.mu.Lock()
	c.ok = false
	c.mu.Unlock()
}
