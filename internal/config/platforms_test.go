package config

import (
	"strings"
	"testing"

	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/adapters/webhook"
	"github.com/parley-chatops/parley/internal/chat"
)

// testPlatforms are the platforms parley serve knows, from their adapters'
// descriptors, as internal/app lists them.
var testPlatforms = chat.Platforms{slack.Platform(), discord.Platform(), console.Platform(), webhook.Platform()}

func TestCheckPlatforms(t *testing.T) {
	getenv := env(map[string]string{"AM_TOKEN": "am-SECRET-token", "T": tokenValue})
	const am = "incidents: {auth: {bearer_token: {env: AM_TOKEN}}, "
	for src, want := range map[string]string{
		am + "default_channel: 'slack:C1'}\n":                                                       "slack, which is not configured",
		am + "default_channel: 'console:ops'}\n":                                                    "the console cannot receive incident messages",
		am + "routes: [{match: {a: b}, channel: 'teams:C1'}]}\n":                                    `incidents.routes[0].channel: "teams:C1": unknown platform "teams" (platforms: slack, discord, console, webhook)`,
		"channels: [{id: 'teams:C1'}]\n":                                                            `channels[0].id: "teams:C1": unknown platform "teams"`,
		"channels: [{id: 'discord:ops'}]\n":                                                         "discord ids are numeric snowflakes",
		"channels: [{id: 'slack:c0ops'}]\n":                                                         "slack ids are upper-case letters and digits",
		"kubernetes: {impersonate: {'slack:alice': {user: a}}}\n":                                   "kubernetes.impersonate",
		"discord: {token: {env: T}, application_id: '1'}\n" + am + "default_channel: 'slack:C1'}\n": "slack, which is not configured",
		am + "default_channel: 'webhook:oncall'}\n":                                                 "webhook:oncall needs incidents.webhook_sink",
	} {
		c, err := Parse([]byte(src), "p.yaml", getenv)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		err = c.CheckPlatforms(testPlatforms)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPlatforms(%q) = %v, want error containing %q", src, err, want)
		}
	}
	for _, src := range []string{
		"channels: [{id: 'slack:C0OPS'}, {id: 'discord:1130000000000000002'}, {id: 'console:ops'}]\n",
		"slack: {bot_token: {env: T}, app_token: {env: T}}\n" + am + "default_channel: 'slack:C1', routes: [{match: {a: b}, channel: 'slack:C2'}]}\n",
		am + "default_channel: 'webhook:oncall', webhook_sink: {url: 'https://hooks.example.com/p', secret: {env: T}}}\n",
	} {
		c, err := Parse([]byte(src), "p.yaml", getenv)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if err := c.CheckPlatforms(testPlatforms); err != nil {
			t.Errorf("CheckPlatforms(%q) = %v, want nil", src, err)
		}
	}
}
