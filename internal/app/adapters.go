package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/chatstate"
	"github.com/parley-chatops/parley/internal/config"
)

// buildAdapters connects the chat platforms the configuration names. It
// returns them and any HTTP handlers they serve (path -> handler). The
// adapters keep their state (threads answered, button values) in the
// shared database, so every replica and every restart sees it.
func buildAdapters(_ context.Context, cfg *config.Config, p *Parley, log *slog.Logger) ([]chat.Adapter, map[string]http.Handler, error) {
	var adapters []chat.Adapter
	handlers := map[string]http.Handler{}
	bound := func(platform string) map[string]bool {
		out := map[string]bool{}
		for _, ch := range cfg.Channels {
			if id, ok := strings.CutPrefix(ch.ID, platform+":"); ok {
				out[id] = true
			}
		}
		return out
	}
	state, err := chatstate.New(p.DB, chatstate.Options{})
	if err != nil {
		return nil, nil, err
	}
	if s := cfg.Slack; s != nil {
		a, err := slack.New(slack.Options{
			BotToken: s.BotToken.Value(), AppToken: s.AppToken.Value(), SigningSecret: s.SigningSecret.Value(),
			Mode: s.Mode, APIURL: s.APIURL, BoundChannels: bound(chat.Slack), State: state,
			Logger: log.With("adapter", chat.Slack), OnUndelivered: undelivered(p, log),
		})
		if err != nil {
			return nil, nil, err
		}
		if s.Mode == slack.ModeEvents {
			// Events, interactivity and the slash command: the manifest
			// points all three at /slack/events; /slack/commands is the
			// same endpoint, for apps set up by hand.
			handlers["/slack/events"] = a.EventsHandler()
			handlers["/slack/commands"] = a.EventsHandler()
		}
		adapters = append(adapters, a)
	}
	if d := cfg.Discord; d != nil {
		a, err := discord.New(discord.Options{
			Token: d.Token.Value(), ApplicationID: d.ApplicationID, GuildIDs: d.GuildIDs, APIURL: d.APIURL,
			BoundChannels: bound(chat.Discord), State: state, Logger: log.With("adapter", chat.Discord),
			OnUndelivered: undelivered(p, log),
		})
		if err != nil {
			return nil, nil, err
		}
		adapters = append(adapters, a)
	}
	return adapters, handlers, nil
}

// connector is an adapter holding a connection to its platform that one
// replica at a time should own (Slack Socket Mode, the Discord gateway).
// Adapters fed over HTTP (the Slack Events API) run on every replica.
type connector interface{ HoldsConnection() bool }

// splitByLeadership sorts adapters into those that run only while this
// replica leads and those that run on every replica.
func splitByLeadership(adapters []chat.Adapter) (leaderOnly, everyReplica []chat.Adapter) {
	for _, a := range adapters {
		if c, ok := a.(connector); ok && !c.HoldsConnection() {
			everyReplica = append(everyReplica, a)
		} else {
			leaderOnly = append(leaderOnly, a)
		}
	}
	return leaderOnly, everyReplica
}

// running is an adapter that says whether it takes messages.
type running interface{ Running() bool }

// adaptersRunning reports whether every adapter that says so takes
// messages: serve's start-up recovery waits for it.
func adaptersRunning(adapters []chat.Adapter) bool {
	for _, a := range adapters {
		if r, ok := a.(running); ok && !r.Running() {
			return false
		}
	}
	return true
}

// runEveryReplica runs the HTTP-fed adapters on this replica, led or not,
// until ctx ends: Slack may deliver an event, a click or a slash command
// to any replica behind the Service, and each is answered there (the
// shared database drops a delivery another replica took). It also purges
// old adapter state once an hour. It returns when everything has stopped.
func runEveryReplica(ctx context.Context, adapters []chat.Adapter, h chat.Handler, p *Parley, status *adapterStatus, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, a := range adapters {
		wg.Go(func() { supervise(ctx, a, h, status, log) })
	}
	wg.Go(func() {
		state, err := chatstate.New(p.DB, chatstate.Options{})
		if err != nil {
			log.Warn("adapter state not purged", "err", err)
			return
		}
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if n, err := state.Purge(ctx, now); err != nil {
					log.Warn("purging adapter state failed", "err", err)
				} else if n > 0 {
					log.Debug("adapter state purged", "entries", n)
				}
			}
		}
	})
	wg.Wait()
}

// undelivered audits a reply an adapter finally could not deliver. Replies
// the pipeline sends itself are audited by the pipeline when Send fails;
// audit-trail steps and attachments are delivered asynchronously, so their
// failures arrive only here. Nothing is dropped silently.
func undelivered(p *Parley, log *slog.Logger) func(context.Context, chat.Reply, error) {
	return func(ctx context.Context, r chat.Reply, err error) {
		if r.Kind != chat.KindAudit && len(r.Images) == 0 {
			return
		}
		if _, aerr := p.Audit.Record(context.WithoutCancel(ctx), audit.Event{
			Type: audit.ReplyFailed, Platform: r.Platform, Channel: r.Platform + ":" + r.Channel,
			Thread: r.Thread, Error: err.Error(), Outcome: firstLine(r.Text),
		}); aerr != nil {
			log.Error("auditing an undelivered reply failed", "err", aerr)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 200 {
		l = l[:200]
	}
	return l
}
