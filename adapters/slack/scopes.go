package slack

import "strings"

// Scope is a bot token scope Parley asks for, with why.
type Scope struct {
	Name string
	Why  string
	// Required scopes are checked when the adapter starts: without them
	// Parley cannot work at all. The others enable one feature each;
	// parley doctor reports them missing.
	Required bool
}

// Scopes are the bot token scopes of Parley's app manifest, in the order
// the manifest lists them. Parley reads no user profiles (it keys people
// on their stable ids), so it asks for no users:read.
func Scopes() []Scope {
	return []Scope{
		{"app_mentions:read", "receive messages that mention @Parley", true},
		{"channels:history", "read replies in public-channel threads Parley answered in, and bound channels", true},
		{"chat:write", "answer, ask for confirmations, post the audit trail and incident summaries", true},
		{"commands", "the /parley slash command", false},
		{"files:write", "attach charts to answers", true},
		{"groups:history", "the same in private channels Parley is invited to", false},
		{"im:history", "read direct messages to Parley", true},
		{"mpim:history", "read replies in group direct messages Parley answered in", false},
		{"usergroups:read", "read user group membership, so policies can name slack-group:S… ids", true},
	}
}

// BotEvents are the events Parley's app subscribes to.
func BotEvents() []string {
	return []string{"app_mention", "message.channels", "message.groups", "message.im", "message.mpim"}
}

func scopeNames(requiredOnly bool) []string {
	var out []string
	for _, s := range Scopes() {
		if s.Required || !requiredOnly {
			out = append(out, s.Name)
		}
	}
	return out
}

// MissingScopes compares a token's granted scopes (auth.test's
// X-OAuth-Scopes header, comma-separated) with Scopes: the required ones
// missing, and the others missing.
func MissingScopes(granted string) (required, optional []string) {
	have := map[string]bool{}
	for _, s := range strings.Split(granted, ",") {
		have[strings.TrimSpace(s)] = true
	}
	for _, s := range Scopes() {
		if have[s.Name] {
			continue
		}
		if s.Required {
			required = append(required, s.Name)
		} else {
			optional = append(optional, s.Name)
		}
	}
	return required, optional
}
