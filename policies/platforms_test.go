package policies_test

import (
	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
	"github.com/parley-chatops/parley/internal/chat"
)

// testPlatforms are the platforms parley serve knows, from their adapters'
// descriptors, as internal/app lists them.
var testPlatforms = chat.Platforms{slack.Platform(), discord.Platform(), console.Platform()}
