package slack

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EventsPath is where parley serve takes the Events API, interactivity and
// the slash command.
const EventsPath = "/slack/events"

// ManifestOptions select the app manifest to print.
type ManifestOptions struct {
	// Mode is ModeSocket (no public URL: Parley dials Slack) or ModeEvents
	// (Slack calls Parley at URL).
	Mode string
	// URL is parley serve's public https base URL (events mode only);
	// EventsPath is appended unless it is there already.
	URL string
	// Name is the app's and bot's name (default "Parley").
	Name string
}

// manifest mirrors Slack's app manifest
// (https://api.slack.com/reference/manifests), fields in Slack's order.
type manifest struct {
	Display  display  `yaml:"display_information"`
	Features features `yaml:"features"`
	OAuth    oauth    `yaml:"oauth_config"`
	Settings settings `yaml:"settings"`
}

type display struct {
	Name            string `yaml:"name"`
	Description     string `yaml:"description"`
	LongDescription string `yaml:"long_description"`
	BackgroundColor string `yaml:"background_color"`
}

type features struct {
	AppHome       appHome           `yaml:"app_home"`
	BotUser       botUser           `yaml:"bot_user"`
	SlashCommands []manifestCommand `yaml:"slash_commands"`
}

type appHome struct {
	HomeTab      bool `yaml:"home_tab_enabled"`
	MessagesTab  bool `yaml:"messages_tab_enabled"`
	MessagesRead bool `yaml:"messages_tab_read_only_enabled"`
}

type botUser struct {
	DisplayName  string `yaml:"display_name"`
	AlwaysOnline bool   `yaml:"always_online"`
}

type manifestCommand struct {
	Command      string `yaml:"command"`
	URL          string `yaml:"url,omitempty"`
	Description  string `yaml:"description"`
	UsageHint    string `yaml:"usage_hint"`
	ShouldEscape bool   `yaml:"should_escape"`
}

type oauth struct {
	Scopes struct {
		Bot []string `yaml:"bot"`
	} `yaml:"scopes"`
}

type settings struct {
	Events        eventSubscriptions `yaml:"event_subscriptions"`
	Interactivity interactivity      `yaml:"interactivity"`
	OrgDeploy     bool               `yaml:"org_deploy_enabled"`
	SocketMode    bool               `yaml:"socket_mode_enabled"`
	TokenRotation bool               `yaml:"token_rotation_enabled"`
}

type eventSubscriptions struct {
	RequestURL string   `yaml:"request_url,omitempty"`
	BotEvents  []string `yaml:"bot_events"`
}

type interactivity struct {
	Enabled    bool   `yaml:"is_enabled"`
	RequestURL string `yaml:"request_url,omitempty"`
}

// Manifest returns a paste-ready app manifest (YAML) for Parley: the bot
// scopes of Scopes, the bot events of BotEvents, Interactivity for the
// confirmation buttons, the App Home messages tab for direct messages, the
// /parley slash command, and either Socket Mode or the Events API request
// URLs.
func Manifest(o ManifestOptions) ([]byte, error) {
	if o.Name == "" {
		o.Name = "Parley"
	}
	if len(o.Name) > 35 || strings.TrimSpace(o.Name) != o.Name {
		return nil, fmt.Errorf("app name %q: at most 35 characters, no leading or trailing spaces (Slack's limit)", o.Name)
	}
	var requestURL string
	switch o.Mode {
	case ModeSocket:
		if o.URL != "" {
			return nil, fmt.Errorf("--url is for --mode events: in Socket Mode Parley dials Slack and needs no public URL")
		}
	case ModeEvents:
		u, err := eventsURL(o.URL)
		if err != nil {
			return nil, err
		}
		requestURL = u
	case "":
		return nil, fmt.Errorf("a mode is required: %q (Parley dials Slack, no public URL) or %q (Slack calls Parley at --url)", ModeSocket, ModeEvents)
	default:
		return nil, fmt.Errorf("mode %q: want %q or %q", o.Mode, ModeSocket, ModeEvents)
	}
	m := manifest{
		Display: display{
			Name:        o.Name,
			Description: "Plain-language ChatOps: permission-scoped, confirmed and audited actions.",
			LongDescription: "Ask in plain language: status of a deployment, error rates and logs of a service, an evaluation run. " +
				"Parley works out the action you mean, checks its policy, asks for a confirmation before anything that changes a system, " +
				"runs it against Prometheus, Loki, Kubernetes or the evaluation runner, and records every step in the thread and in a tamper-evident audit log. " +
				"Mention the bot, message it directly, or use /parley.",
			BackgroundColor: "#1d3b53",
		},
		Features: features{
			AppHome: appHome{MessagesTab: true},
			BotUser: botUser{DisplayName: strings.ToLower(strings.ReplaceAll(o.Name, " ", "-")), AlwaysOnline: true},
			SlashCommands: []manifestCommand{{
				Command: CommandName, URL: requestURL,
				Description: "Ask Parley: status, metrics, logs, deployments, evaluations",
				UsageHint:   "status of checkout in prod",
			}},
		},
		Settings: settings{
			Events:        eventSubscriptions{RequestURL: requestURL, BotEvents: BotEvents()},
			Interactivity: interactivity{Enabled: true, RequestURL: requestURL},
			SocketMode:    o.Mode == ModeSocket,
		},
	}
	m.OAuth.Scopes.Bot = scopeNames(false)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return b.Bytes(), nil
}

// eventsURL turns parley serve's public base URL into the request URL
// Slack calls: https only (Slack refuses anything else), no credentials,
// query or fragment.
func eventsURL(base string) (string, error) {
	if base == "" {
		return "", fmt.Errorf("--mode events needs --url: parley serve's public https URL, such as https://parley.example.com (Slack calls %s there)", EventsPath)
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return "", fmt.Errorf("--url %q: %v", base, err)
	case u.Scheme != "https":
		return "", fmt.Errorf("--url %q: Slack calls only https URLs", base)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("--url %q: no host", base)
	case u.User != nil:
		return "", fmt.Errorf("--url: credentials in the URL are not allowed")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("--url %q: no query or fragment, only the base URL", base)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, EventsPath) {
		p += EventsPath
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}
