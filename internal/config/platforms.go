package config

import (
	"errors"
	"fmt"

	"github.com/parley-chatops/parley/internal/chat"
)

// CheckPlatforms checks every platform:id the configuration names (channel
// bindings, incident channels, impersonated subjects) against the chat
// platforms Parley knows, as their descriptors say: the platform exists,
// the id has its syntax, and incident messages go only to a platform that
// parley serve connects to and that this file configures. Parse checks
// only the platform:id shape; the application calls this once it has the
// platforms' descriptors.
func (c *Config) CheckPlatforms(ps chat.Platforms) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	check := func(where, ref string) (chat.Platform, bool) {
		if ref == "" {
			return chat.Platform{}, false
		}
		p, _, err := ps.ParseRef(ref)
		if err != nil {
			bad("%s: %v", where, err)
			return chat.Platform{}, false
		}
		return p, true
	}
	for i, ch := range c.Channels {
		check(fmt.Sprintf("channels[%d].id", i), ch.ID)
	}
	for subject := range c.Kubernetes.Impersonate {
		check("kubernetes.impersonate", subject)
	}
	if in := c.Incidents; in != nil {
		type target struct{ where, ch string }
		targets := []target{{"incidents.default_channel", in.DefaultChannel}}
		for i, r := range in.Routes {
			targets = append(targets, target{fmt.Sprintf("incidents.routes[%d].channel", i), r.Channel})
		}
		for _, t := range targets {
			where, ch := t.where, t.ch
			p, ok := check(where, ch)
			switch {
			case !ok:
			case !p.Served:
				bad("%s: %s: the %s cannot receive incident messages in parley serve", where, ch, p.Title)
			case !c.configures(p.Name) && p.Name == chat.Webhook:
				bad("%s: %s needs incidents.webhook_sink (its url and secret)", where, ch)
			case !c.configures(p.Name):
				bad("%s: %s is on %s, which is not configured (add a %s section)", where, ch, p.Name, p.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// configures reports whether the file has the section that connects the
// named platform.
func (c *Config) configures(platform string) bool {
	switch platform {
	case chat.Slack:
		return c.Slack != nil
	case chat.Discord:
		return c.Discord != nil
	case chat.Webhook:
		return c.Incidents != nil && c.Incidents.WebhookSink != nil
	}
	return false
}
