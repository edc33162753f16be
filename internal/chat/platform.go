package chat

import (
	"fmt"
	"strings"
)

// Platform describes one chat platform as the rest of Parley needs to know
// it. Each adapter package declares its own (slack.Platform(),
// discord.Platform(), console.Platform()); internal/app lists them once,
// and configuration validation, policy subject matching and
// de-duplication read that list. A new platform is a new adapter package
// with its descriptor, plus one line where the list is built.
type Platform struct {
	// Name prefixes the platform's stable ids: "slack" in "slack:U024BE7LH"
	// (users and channels alike).
	Name string
	// Title is the platform's name for people ("Slack").
	Title string
	// GroupPrefix prefixes the platform-provided groups its adapter puts
	// in Message.Groups ("slack-group" in "slack-group:S0614TZR7"); policy
	// groups, subjects and approvers may name them. Empty when the
	// platform has none.
	GroupPrefix string
	// GroupNoun is what the platform calls such a group ("user group").
	GroupNoun string
	// CheckID checks the syntax of a user, channel or group id (a stable
	// id, never a display name) and says what the syntax is when it fails.
	CheckID func(id string) error
	// IDExample is a well-formed user id, for error messages.
	IDExample string
	// DurableEvents means Message.EventID is unique and stable across
	// processes and restarts (a platform event id, a message id), so the
	// shared database may record it to drop a redelivery to another
	// replica. The adapter documents its event id forms. The console
	// numbers lines per session, so it says false.
	DurableEvents bool
	// Served means parley serve connects to the platform, so incident
	// messages can be posted there (not the terminal console).
	Served bool
	// Limits are the platform's message limits.
	Limits Limits
}

// Limits are what one message may hold on a platform.
type Limits struct {
	Text        int // characters of one message's text (0: no limit)
	Buttons     int // buttons on one message
	ButtonValue int // bytes a button carries back when clicked, as the adapter encodes it
}

// Platforms are the platforms one Parley instance knows, in a fixed order.
type Platforms []Platform

// Lookup returns the platform whose ids start with name.
func (ps Platforms) Lookup(name string) (Platform, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return Platform{}, false
}

// ByGroupPrefix returns the platform whose groups start with prefix.
func (ps Platforms) ByGroupPrefix(prefix string) (Platform, bool) {
	for _, p := range ps {
		if p.GroupPrefix != "" && p.GroupPrefix == prefix {
			return p, true
		}
	}
	return Platform{}, false
}

// Names lists the platform names, then the group prefixes.
func (ps Platforms) Names() []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	for _, p := range ps {
		if p.GroupPrefix != "" {
			out = append(out, p.GroupPrefix)
		}
	}
	return out
}

// IsGroup reports whether ref ("slack-group:S1") names a platform group.
func (ps Platforms) IsGroup(ref string) bool {
	prefix, _, ok := strings.Cut(ref, ":")
	if !ok {
		return false
	}
	_, found := ps.ByGroupPrefix(prefix)
	return found
}

// ParseRef checks a "platform:id" reference to a user or channel and
// returns its platform and id.
func (ps Platforms) ParseRef(ref string) (Platform, string, error) {
	name, id, ok := strings.Cut(ref, ":")
	if !ok || name == "" {
		return Platform{}, "", fmt.Errorf("%q is not platform:id (platforms: %s)", ref, strings.Join(ps.plain(), ", "))
	}
	p, ok := ps.Lookup(name)
	if !ok {
		return Platform{}, "", fmt.Errorf("%q: unknown platform %q (platforms: %s)", ref, name, strings.Join(ps.plain(), ", "))
	}
	if err := checkID(p, id); err != nil {
		return Platform{}, "", fmt.Errorf("%q: %v", ref, err)
	}
	return p, id, nil
}

// plain lists the platform names without the group prefixes.
func (ps Platforms) plain() []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// MaxIDLen bounds any platform id.
const MaxIDLen = 128

func checkID(p Platform, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty id after %q", p.Name+":")
	case len(id) > MaxIDLen:
		return fmt.Errorf("id longer than %d characters", MaxIDLen)
	case p.CheckID != nil:
		return p.CheckID(id)
	}
	return nil
}

// Check checks an id against the platform's syntax, the length bound
// included.
func (p Platform) Check(id string) error { return checkID(p, id) }
