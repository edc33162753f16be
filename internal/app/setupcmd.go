package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-chatops/parley/adapters/discord"
	"github.com/parley-chatops/parley/adapters/slack"
)

// cmdSlack is "parley slack manifest": the Slack app manifest to paste
// into https://api.slack.com/apps → Create New App → From a manifest.
func cmdSlack(_ context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "manifest" {
		return fmt.Errorf("%w: want \"parley slack manifest --mode socket|events [--url URL]\"", errUsage)
	}
	fs := newFlags("slack manifest", env)
	mode := fs.String("mode", "", `"socket" (Parley dials Slack; no public URL) or "events" (Slack calls Parley at --url)`)
	base := fs.String("url", "", "events mode: parley serve's public https URL (Slack calls "+slack.EventsPath+" there)")
	name := fs.String("name", "Parley", "the app's name in Slack")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	out, err := slack.Manifest(slack.ManifestOptions{Mode: *mode, URL: *base, Name: *name})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if _, err := env.Stdout.Write(out); err != nil {
		return err
	}
	next := "then Basic Information → App-Level Tokens: generate one with connections:write (SLACK_APP_TOKEN)"
	if *mode == slack.ModeEvents {
		next = "then Basic Information → Signing Secret (SLACK_SIGNING_SECRET); Slack verifies the request URL when you save"
	}
	fmt.Fprintf(env.Stderr, "Paste this at https://api.slack.com/apps → Create New App → From a manifest; install it to the workspace (SLACK_BOT_TOKEN is the Bot User OAuth Token), %s. Invite the bot to each channel: /invite @%s. docs/slack.md walks through it.\n",
		next, strings.ToLower(strings.ReplaceAll(*name, " ", "-")))
	return nil
}

// cmdDiscord is "parley discord invite-url": the OAuth2 URL that adds the
// bot to a server with the permissions Parley needs.
func cmdDiscord(_ context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "invite-url" {
		return fmt.Errorf("%w: want \"parley discord invite-url --application-id ID [--guild ID]\"", errUsage)
	}
	fs := newFlags("discord invite-url", env)
	appID := fs.String("application-id", "", "the application id (Developer Portal → General Information); default: discord.application_id of --config")
	guild := fs.String("guild", "", "preselect this server (its id)")
	configFile := fs.String("config", "", "configuration file to read discord.application_id from")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	id := *appID
	if id == "" && *configFile != "" {
		cfg, err := loadConfig(*configFile, env)
		if err != nil {
			return err
		}
		if cfg.Discord != nil {
			id = cfg.Discord.ApplicationID
		}
	}
	if id == "" {
		return fmt.Errorf("%w: --application-id is required (Developer Portal → your application → General Information → Application ID), or --config with discord.application_id", errUsage)
	}
	u, err := discord.InviteURL(id, *guild)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	fmt.Fprintln(env.Stdout, u)
	var names []string
	for _, p := range discord.Permissions() {
		names = append(names, p.Name)
	}
	fmt.Fprintf(env.Stderr, "Open it as a server admin. Scopes: bot, applications.commands. Permissions (%d): %s.\n"+
		"Also enable the Message Content intent: Developer Portal → Bot → Privileged Gateway Intents. docs/discord.md walks through it.\n",
		discord.PermissionBits(), strings.Join(names, ", "))
	return nil
}
