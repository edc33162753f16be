package intent

import (
	"context"
	"errors"
	"testing"
	"time"
)

type countingSource struct {
	calls int
	err   error
}

func (s *countingSource) Inventory(context.Context) (Inventory, error) {
	s.calls++
	if s.err != nil {
		return Inventory{}, s.err
	}
	return Inventory{Namespaces: []string{"prod"}}, nil
}

func TestCachedInventory(t *testing.T) {
	now := time.Unix(0, 0)
	src := &countingSource{}
	c := NewCached(src, time.Minute, func() time.Time { return now })
	for range 3 {
		if inv, err := c.Inventory(context.Background()); err != nil || len(inv.Namespaces) != 1 {
			t.Fatalf("inventory = %v, %v", inv, err)
		}
	}
	if src.calls != 1 {
		t.Errorf("source asked %d times within the TTL, want 1", src.calls)
	}
	now = now.Add(2 * time.Minute)
	src.err = errors.New("apiserver down")
	inv, err := c.Inventory(context.Background())
	if err == nil || len(inv.Namespaces) != 1 {
		t.Errorf("failed refresh: got %v, %v; want the stale inventory and the error", inv, err)
	}
	src.err = nil
	c.Invalidate()
	if _, err := c.Inventory(context.Background()); err != nil || src.calls != 3 {
		t.Errorf("after Invalidate: calls=%d err=%v", src.calls, err)
	}
}
