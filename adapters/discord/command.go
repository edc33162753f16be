package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// commandName is the slash command Parley registers.
const commandName = "parley"

// command is the /parley slash command: free text through "ask", and the
// evaluation commands ML engineers type most as typed options, so Discord
// prompts for the suite and variant instead of them remembering the syntax.
//
// A global command is offered in guilds and in DMs with the bot (contexts);
// a guild command exists only in its guild, and Discord documents contexts
// as global-only, so a guild command carries none.
func command(global bool) *discordgo.ApplicationCommand {
	var contexts *[]discordgo.InteractionContextType
	if global {
		contexts = &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	}
	minRun := 1.0
	str := func(name, desc string, required bool) *discordgo.ApplicationCommandOption {
		return &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString, Name: name, Description: desc, Required: required, MaxLength: 100}
	}
	return &discordgo.ApplicationCommand{
		Name:        commandName,
		Description: "Ask Parley: service status, metrics, logs, deployments, evaluations",
		Type:        discordgo.ChatApplicationCommand,
		Contexts:    contexts,
		Options: []*discordgo.ApplicationCommandOption{
			{
				Type: discordgo.ApplicationCommandOptionSubCommand, Name: "ask",
				Description: `Ask in plain language, e.g. "status of checkout in prod"`,
				Options: []*discordgo.ApplicationCommandOption{{
					Type: discordgo.ApplicationCommandOptionString, Name: "text", Description: "What you want Parley to do", Required: true, MaxLength: 2000,
				}},
			},
			{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "help", Description: "What you can ask Parley here"},
			{
				Type: discordgo.ApplicationCommandOptionSubCommandGroup, Name: "eval", Description: "Evaluation runs",
				Options: []*discordgo.ApplicationCommandOption{
					{
						Type: discordgo.ApplicationCommandOptionSubCommand, Name: "run", Description: "Start an evaluation run (asks you to confirm)",
						Options: []*discordgo.ApplicationCommandOption{
							str("suite", "Evaluation suite, e.g. intent-routing", true),
							str("variant", "Variant to evaluate, e.g. prompt-v2", false),
							str("baseline", "Variant to compare against", false),
						},
					},
					{
						Type: discordgo.ApplicationCommandOptionSubCommand, Name: "status", Description: "Show an evaluation run (latest when no run is given)",
						Options: []*discordgo.ApplicationCommandOption{
							{Type: discordgo.ApplicationCommandOptionInteger, Name: "run", Description: "Run number", MinValue: &minRun},
							str("suite", "Evaluation suite", false),
						},
					},
				},
			},
		},
	}
}

// commandText rebuilds the words a person would have typed for a /parley
// invocation, in the forms the rules router reads:
//
//	/parley ask text:T                    -> T
//	/parley help                          -> help
//	/parley eval run suite:S variant:V    -> eval run S variant:V baseline:B
//	/parley eval status run:N suite:S     -> eval status run:N suite:S
func commandText(data discordgo.ApplicationCommandInteractionData) (string, error) {
	if data.Name != commandName {
		return "", fmt.Errorf("unknown command %q", data.Name)
	}
	if len(data.Options) != 1 {
		return "", fmt.Errorf("/%s needs a subcommand", commandName)
	}
	sub := data.Options[0]
	switch sub.Name {
	case "ask":
		text := optString(sub.Options, "text")
		if strings.TrimSpace(text) == "" {
			return "", fmt.Errorf("/%s ask needs text", commandName)
		}
		return text, nil
	case "help":
		return "help", nil
	case "eval":
		if len(sub.Options) != 1 {
			return "", fmt.Errorf("/%s eval needs run or status", commandName)
		}
		leaf := sub.Options[0]
		switch leaf.Name {
		case "run":
			suite := word(optString(leaf.Options, "suite"))
			if suite == "" {
				return "", fmt.Errorf("/%s eval run needs a suite", commandName)
			}
			parts := []string{"eval run", suite}
			if v := word(optString(leaf.Options, "variant")); v != "" {
				parts = append(parts, "variant:"+v)
			}
			if b := word(optString(leaf.Options, "baseline")); b != "" {
				parts = append(parts, "baseline:"+b)
			}
			return strings.Join(parts, " "), nil
		case "status":
			parts := []string{"eval status"}
			if o := findOpt(leaf.Options, "run"); o != nil {
				parts = append(parts, "run:"+strconv.FormatInt(o.IntValue(), 10))
			}
			if s := word(optString(leaf.Options, "suite")); s != "" {
				parts = append(parts, "suite:"+s)
			}
			return strings.Join(parts, " "), nil
		}
		return "", fmt.Errorf("unknown subcommand eval %q", leaf.Name)
	}
	return "", fmt.Errorf("unknown subcommand %q", sub.Name)
}

func findOpt(opts []*discordgo.ApplicationCommandInteractionDataOption, name string) *discordgo.ApplicationCommandInteractionDataOption {
	for _, o := range opts {
		if o.Name == name {
			return o
		}
	}
	return nil
}

func optString(opts []*discordgo.ApplicationCommandInteractionDataOption, name string) string {
	if o := findOpt(opts, name); o != nil && o.Type == discordgo.ApplicationCommandOptionString {
		return o.StringValue()
	}
	return ""
}

// word makes an option value one token, so "variant:prompt v2" cannot spill
// into the next option when the router reads it.
func word(s string) string { return strings.Join(strings.Fields(s), "-") }

// registerCommands makes /parley exist as command() defines it, in each
// configured guild (instant) or globally, and touches no other command of
// the application: it lists the commands, creates /parley when it is
// missing, edits it when it differs, leaves it alone when it matches, and
// logs which it did. (A bulk overwrite would delete every other command
// the application has, made by another tool or by hand.)
func (a *Adapter) registerCommands(ctx context.Context, appID string) error {
	guilds := a.opts.GuildIDs
	if len(guilds) == 0 {
		guilds = []string{""}
	}
	for _, g := range guilds {
		want := command(g == "")
		where := "globally"
		if g != "" {
			where = "in guild " + g
		}
		have, err := a.s.ApplicationCommands(appID, g, discordgo.WithContext(ctx))
		if err != nil {
			return startError("list the commands registered "+where, err, a.token)
		}
		var cur *discordgo.ApplicationCommand
		for _, c := range have {
			if c.Name == commandName && (c.Type == 0 || c.Type == discordgo.ChatApplicationCommand) {
				cur = c
			}
		}
		var done, id string
		switch {
		case cur == nil:
			c, err := a.s.ApplicationCommandCreate(appID, g, want, discordgo.WithContext(ctx))
			if err != nil {
				return startError("register /"+commandName+" "+where, err, a.token)
			}
			done, id = "created", c.ID
		case sameCommand(cur, want):
			done, id = "unchanged", cur.ID
		default:
			if _, err := a.s.ApplicationCommandEdit(appID, g, cur.ID, want, discordgo.WithContext(ctx)); err != nil {
				return startError("update /"+commandName+" "+where, err, a.token)
			}
			done, id = "updated", cur.ID
		}
		a.log.Info("slash command registered", "command", "/"+commandName, "scope", where, "result", done, "command_id", id,
			"other_commands_kept", len(have)-btoi(cur != nil))
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sameCommand reports whether the registered command has every field
// Parley sets as Parley sets it (Discord adds ids, versions and defaults).
func sameCommand(have, want *discordgo.ApplicationCommand) bool {
	fields := func(c *discordgo.ApplicationCommand) map[string]any {
		b, err := json.Marshal(c)
		if err != nil {
			return nil
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return nil
		}
		return m
	}
	h, w := fields(have), fields(want)
	if h == nil || w == nil {
		return false
	}
	for k, v := range w {
		switch k {
		case "id", "application_id", "guild_id", "version":
			continue
		}
		if !reflect.DeepEqual(h[k], v) {
			return false
		}
	}
	// A guild command that carries contexts was registered by an older
	// Parley: edit it so it carries none.
	_, hasCtx := h["contexts"]
	_, wantCtx := w["contexts"]
	return hasCtx == wantCtx
}
