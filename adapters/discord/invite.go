package discord

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/bwmarrin/discordgo"
)

// Permission is a channel permission Parley's bot needs, with why.
type Permission struct {
	Name  string // as the Developer Portal's bot permissions list shows it
	Bit   int64  // the permission flag
	Needs string // what Parley does with it
}

// Permissions are what the bot needs in the channels it serves, and
// nothing more: no administrator, no managing of anything.
func Permissions() []Permission {
	return []Permission{
		{"View Channels", discordgo.PermissionViewChannel, "see the channels it is asked in"},
		{"Send Messages", discordgo.PermissionSendMessages, "answer, ask for confirmations, post incident summaries"},
		{"Send Messages in Threads", discordgo.PermissionSendMessagesInThreads, "answer in the request's thread"},
		{"Create Public Threads", discordgo.PermissionCreatePublicThreads, "start a thread from a request, so a conversation stays together"},
		{"Embed Links", discordgo.PermissionEmbedLinks, "render fields, tables and code as embeds"},
		{"Attach Files", discordgo.PermissionAttachFiles, "attach charts"},
		{"Read Message History", discordgo.PermissionReadMessageHistory, "reply to a request message by reference where no thread can be started"},
	}
}

// PermissionBits is the permissions integer of Permissions.
func PermissionBits() int64 {
	var n int64
	for _, p := range Permissions() {
		n |= p.Bit
	}
	return n
}

// InviteURL is the OAuth2 URL that adds the bot to a server with the
// scopes bot and applications.commands and the permissions Parley needs.
// With guild set, Discord preselects that server.
func InviteURL(applicationID, guild string) (string, error) {
	if !snowflake(applicationID) {
		return "", fmt.Errorf("application id %q is not a Discord id (Developer Portal → General Information → Application ID)", applicationID)
	}
	if guild != "" && !snowflake(guild) {
		return "", fmt.Errorf("guild id %q is not a Discord id", guild)
	}
	q := url.Values{
		"client_id":   {applicationID},
		"scope":       {"bot applications.commands"},
		"permissions": {strconv.FormatInt(PermissionBits(), 10)},
	}
	if guild != "" {
		q.Set("guild_id", guild)
		q.Set("disable_guild_select", "true")
	}
	return "https://discord.com/oauth2/authorize?" + q.Encode(), nil
}
