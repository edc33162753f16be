package slack

import (
	"context"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// groupCache maps users to their Slack user groups. It is filled from
// usergroups.list (with users) and refreshed every GroupRefresh; a failed
// refresh is logged and the previous map kept.
type groupCache struct {
	a *Adapter

	mu     sync.RWMutex
	byUser map[string][]string
	loaded time.Time
}

func newGroupCache(a *Adapter) *groupCache {
	return &groupCache{a: a, byUser: map[string][]string{}}
}

func (g *groupCache) of(user string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if gs := g.byUser[user]; len(gs) > 0 {
		return append([]string(nil), gs...)
	}
	return nil
}

func (g *groupCache) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, g.a.opts.CallTimeout)
	defer cancel()
	groups, err := g.a.api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil {
		if ctx.Err() == nil {
			g.a.log.Warn("user groups not refreshed; keeping the previous ones", "err", g.a.redact(err.Error()))
		}
		return
	}
	byUser := map[string][]string{}
	for _, grp := range groups {
		if grp.DateDelete != 0 {
			continue
		}
		for _, u := range grp.Users {
			byUser[u] = append(byUser[u], groupPrefix+":"+grp.ID)
		}
	}
	for u, gs := range byUser {
		byUser[u] = sortedCopy(gs)
	}
	g.mu.Lock()
	g.byUser, g.loaded = byUser, g.a.opts.Now()
	g.mu.Unlock()
	g.a.log.Debug("user groups refreshed", "groups", len(groups), "users", len(byUser))
}

func (g *groupCache) loop(ctx context.Context) {
	t := time.NewTicker(g.a.opts.GroupRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.refresh(ctx)
		}
	}
}
