package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
)

// buildAdapters connects the chat platforms the configuration names. It
// returns them and any HTTP handlers they serve (path -> handler).
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
	if s := cfg.Slack; s != nil {
		a, err := slack.New(slack.Options{
			BotToken: s.BotToken.Value(), AppToken: s.AppToken.Value(), SigningSecret: s.SigningSecret.Value(),
			Mode: s.Mode, BoundChannels: bound(chat.Slack),
			Logger: log.With("adapter", chat.Slack), OnUndelivered: undelivered(p, log),
		})
		if err != nil {
			return nil, nil, err
		}
		if s.Mode == slack.ModeEvents {
			handlers["/slack/events"] = a.EventsHandler()
		}
		adapters = append(adapters, a)
	}
	if d := cfg.Discord; d != nil {
		a, err := discord.New(discord.Options{
			Token: d.Token.Value(), ApplicationID: d.ApplicationID, GuildIDs: d.GuildIDs,
			BoundChannels: bound(chat.Discord), Logger: log.With("adapter", chat.Discord),
			OnUndelivered: undelivered(p, log),
		})
		if err != nil {
			return nil, nil, err
		}
		adapters = append(adapters, a)
	}
	return adapters, handlers, nil
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
