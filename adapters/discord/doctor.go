package discord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/parley-chatops/parley/internal/chat"
)

// Diagnose checks a Discord configuration against Discord without
// connecting to the gateway: the bot token (/users/@me), the application
// it belongs to and whether the Message Content intent is enabled for it
// (the application's flags), and whether /parley is registered where the
// configuration says. No check's text holds the token.
func Diagnose(ctx context.Context, o Options) []chat.Check {
	a, err := New(o)
	if err != nil {
		return []chat.Check{{Name: "discord configuration", Err: err, Fix: "set discord.token (Bot → Reset Token) and discord.application_id (General Information)"}}
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.StartTimeout)
	defer cancel()
	var out []chat.Check
	me, err := a.s.User("@me", discordgo.WithContext(cctx))
	if err != nil {
		out = append(out, chat.Check{Name: "discord token", Err: errors.New(describe("check bot token", err, a.token).Error()),
			Fix: "copy a fresh token from the Developer Portal (Bot → Reset Token) into discord.token's source"})
		skip := "cannot run: the token was not accepted"
		return append(out, chat.Check{Name: "discord intents", Skipped: skip}, chat.Check{Name: "discord commands", Skipped: skip})
	}
	out = append(out, chat.Check{Name: "discord token", Detail: fmt.Sprintf("bot user %s (%s)", me.Username, me.ID)})

	app, err := a.s.Application("@me") // bounded by the client's CallTimeout
	switch {
	case err != nil:
		out = append(out, chat.Check{Name: "discord intents", Err: errors.New(describe("read the application", err, a.token).Error()),
			Fix: "check the token belongs to a bot application"})
	case o.ApplicationID != "" && app.ID != o.ApplicationID:
		out = append(out, chat.Check{Name: "discord intents", Err: fmt.Errorf("the token belongs to application %s, not discord.application_id %s", app.ID, o.ApplicationID),
			Fix: "set discord.application_id to the token's application (General Information → Application ID), or use that application's token"})
	case app.Flags&(flagGatewayMessageContent|flagGatewayMessageContentLimited) == 0:
		out = append(out, chat.Check{Name: "discord intents", Err: errors.New("the Message Content intent is not enabled: Parley would see mentions but not what people typed"),
			Fix: "Developer Portal → your application → Bot → Privileged Gateway Intents → Message Content Intent: on, then save"})
	default:
		out = append(out, chat.Check{Name: "discord intents", Detail: "Message Content intent enabled for application " + app.ID})
	}

	appID := o.ApplicationID
	if appID == "" && app != nil {
		appID = app.ID
	}
	guilds := o.GuildIDs
	if len(guilds) == 0 {
		guilds = []string{""}
	}
	var found, missing []string
	for _, g := range guilds {
		where := "globally"
		if g != "" {
			where = "guild " + g
		}
		cmds, err := a.s.ApplicationCommands(appID, g, discordgo.WithContext(cctx))
		if err != nil {
			fix := "check discord.application_id"
			if g != "" {
				fix = "invite the bot to guild " + g + " with the applications.commands scope (parley discord invite-url --guild " + g + ")"
			}
			out = append(out, chat.Check{Name: "discord commands", Err: errors.New(describe("list commands "+where, err, a.token).Error()), Fix: fix})
			return out
		}
		ok := false
		for _, c := range cmds {
			ok = ok || c.Name == commandName
		}
		if ok {
			found = append(found, where)
		} else {
			missing = append(missing, where)
		}
	}
	if len(missing) > 0 {
		out = append(out, chat.Check{Name: "discord commands", Err: fmt.Errorf("/%s is not registered %s", commandName, strings.Join(missing, ", ")),
			Fix: "start parley serve: it registers /" + commandName + " at start-up and logs \"slash command registered\"; a global command can take up to an hour to appear"})
	} else {
		out = append(out, chat.Check{Name: "discord commands", Detail: "/" + commandName + " registered " + strings.Join(found, ", ")})
	}
	return out
}
