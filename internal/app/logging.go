package app

import (
	"context"
	"log/slog"
	"slices"
)

// newLogger is the logger of serve (from the config's log section) and of
// the command-line tools' -v: one handler, JSON or text, on stderr. Every
// line has each key once: a key given again (by a package tagging its own
// logger with a key the caller already set, or by a call repeating a
// With key) replaces the earlier value instead of being written twice,
// which log collectors parse unpredictably. When the process lets it
// (Env.RouteKlog, set by cmd/parley), client-go's klog output is routed
// into the same logger, so there is one format on stderr.
func newLogger(env Env, level, format string) *slog.Logger {
	var l slog.Level
	// config validation refuses a bad level; one that gets here anyway is
	// said on the first line rather than silently read as info
	levelErr := l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(env.Stderr, opts)
	} else {
		h = slog.NewTextHandler(env.Stderr, opts)
	}
	log := slog.New(&uniqueKeys{inner: h})
	if levelErr != nil && level != "" {
		log.Warn("unknown log level; logging at info", "level", level, "err", levelErr)
	}
	routeKlog(env, log)
	return log
}

// routeKlog sends klog (client-go's logging: the API server's warnings,
// exec credential plugins) into log. klog is process-wide, so
// only the process's owner may redirect it: cmd/parley passes
// Env.RouteKlog; tests that run commands in parallel leave it nil.
func routeKlog(env Env, log *slog.Logger) {
	if env.RouteKlog != nil {
		env.RouteKlog(log.With("component", "client-go"))
	}
}

// uniqueKeys is a slog.Handler that writes each top-level key once: the
// last value given wins (a record's attributes over the logger's, a
// later With over an earlier one). Groups start a new scope: attributes
// added before WithGroup are handed to the inner handler as they are.
type uniqueKeys struct {
	inner slog.Handler
	attrs []slog.Attr // With attributes not yet handed to inner
}

func (h *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	var rec []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		rec = append(rec, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(merge(h.attrs, rec)...)
	return h.inner.Handle(ctx, out)
}

func (h *uniqueKeys) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &uniqueKeys{inner: h.inner, attrs: merge(h.attrs, attrs)}
}

func (h *uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &uniqueKeys{inner: h.inner.WithAttrs(h.attrs).WithGroup(name)}
}

// merge appends later to earlier, dropping every earlier attribute whose
// key comes again and keeping the last of repeated keys within later.
func merge(earlier, later []slog.Attr) []slog.Attr {
	if len(later) == 0 {
		return earlier
	}
	out := make([]slog.Attr, 0, len(earlier)+len(later))
	for _, a := range earlier {
		if !slices.ContainsFunc(later, func(b slog.Attr) bool { return b.Key == a.Key }) {
			out = append(out, a)
		}
	}
	for i, a := range later {
		if a.Key == "" && a.Value.Kind() != slog.KindGroup {
			continue
		}
		if !slices.ContainsFunc(later[i+1:], func(b slog.Attr) bool { return b.Key == a.Key }) {
			out = append(out, a)
		}
	}
	return out
}
