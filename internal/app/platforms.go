package app

import (
	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/adapters/webhook"
	"github.com/parley-chatops/parley/internal/chat"
)

// platforms are the chat platforms this build knows, each described by its
// adapter package: configuration validation, the policy's subjects and
// channels, and the shared de-duplication read these descriptors. A new
// platform is a new adapter package and one line here.
func platforms() chat.Platforms {
	return chat.Platforms{slack.Platform(), discord.Platform(), console.Platform(), webhook.Platform()}
}
