package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parley-chatops/parley/internal/chat"
)

// Wildcard matches any subject, channel or action.
const Wildcard = "*"

// platform describes one identity prefix: which ids it accepts and whether
// it names a user, a platform group or a channel. The prefixes come from
// the chat platforms' descriptors the policy is loaded with.
type platform struct {
	name    string
	user    bool // platform:id names a user
	group   bool // platform:id names a platform-provided group
	channel bool // platform:id names a channel
	desc    chat.Platform
}

// prefixes lists what "x:id" may start with: each platform's users and
// channels, then its groups.
func prefixes(ps chat.Platforms) []platform {
	var out []platform
	for _, p := range ps {
		out = append(out, platform{name: p.Name, user: true, channel: true, desc: p})
	}
	for _, p := range ps {
		if p.GroupPrefix != "" {
			out = append(out, platform{name: p.GroupPrefix, group: true, desc: p})
		}
	}
	return out
}

// splitID splits "platform:id" and checks both halves against the
// platforms' id syntax. wildcard allows "platform:*".
func (l *loader) splitID(s string, wildcard bool) (platform, string, error) {
	name, id, ok := strings.Cut(s, ":")
	known := strings.Join(l.platforms.Names(), ", ")
	if !ok || name == "" {
		return platform{}, "", fmt.Errorf("%q: want platform:id with platform one of %s", s, known)
	}
	var p platform
	found := false
	for _, c := range prefixes(l.platforms) {
		if c.name == name {
			p, found = c, true
			break
		}
	}
	if !found {
		return platform{}, "", fmt.Errorf("%q: unknown platform %q (known: %s)", s, name, known)
	}
	if id == Wildcard {
		if !wildcard || !p.user && !p.channel {
			return platform{}, "", fmt.Errorf("%q: a wildcard is not allowed here", s)
		}
		return p, id, nil
	}
	if err := p.desc.Check(id); err != nil {
		return platform{}, "", fmt.Errorf("%q: %v", s, err)
	}
	return p, id, nil
}

// who is a requester as the rules see it: the subject, its platform groups,
// and the policy groups it belongs to.
type who struct {
	subject        string
	platformGroups map[string]bool
	groups         map[string]bool // policy group names
	groupList      []string        // policy group names in file order
	via            map[string]string
}

func (p *Policy) who(subject string, platformGroups []string) *who {
	w := &who{
		subject:        subject,
		platformGroups: make(map[string]bool, len(platformGroups)),
		groups:         map[string]bool{},
		via:            map[string]string{},
	}
	for _, g := range platformGroups {
		w.platformGroups[g] = true
	}
	for _, g := range p.groups {
		if g.members[subject] {
			w.groups[g.name], w.via[g.name] = true, subject
		} else {
			for _, pg := range platformGroups {
				if g.members[pg] {
					w.groups[g.name], w.via[g.name] = true, pg
					break
				}
			}
		}
		if w.groups[g.name] {
			w.groupList = append(w.groupList, g.name)
		}
	}
	return w
}

// subjectPattern is one entry of a rule's subjects.
type subjectPattern struct {
	raw      string
	any      bool   // "*"
	group    string // group:NAME
	platform string // "slack:*": any user of a platform
	group2   bool   // raw is a platform group, matched against the input's groups
}

func (s subjectPattern) match(w *who) (bool, string) {
	switch {
	case s.any:
		return true, "anyone (*)"
	case s.group != "":
		if w.groups[s.group] {
			return true, fmt.Sprintf("%s is in group %s (via %s)", w.subject, s.group, w.via[s.group])
		}
		return false, ""
	case s.platform != "":
		if strings.HasPrefix(w.subject, s.platform+":") {
			return true, fmt.Sprintf("%s matches %s", w.subject, s.raw)
		}
		return false, ""
	case s.group2:
		if w.platformGroups[s.raw] {
			return true, fmt.Sprintf("%s is in %s", w.subject, s.raw)
		}
		return false, ""
	default:
		if w.subject == s.raw {
			return true, fmt.Sprintf("%s is listed", w.subject)
		}
		return false, ""
	}
}

// channelPattern is one entry of a rule's channels.
type channelPattern struct {
	raw      string
	any      bool
	platform string // "slack:*"
}

func (c channelPattern) match(channel string) bool {
	switch {
	case c.any:
		return true
	case c.platform != "":
		return strings.HasPrefix(channel, c.platform+":")
	default:
		return channel == c.raw
	}
}

// actionPattern is an action name or a glob in which * matches any run of
// characters (kubernetes.*).
type actionPattern string

func (a actionPattern) match(name string) bool {
	return globMatch(string(a), name)
}

func (a actionPattern) isGlob() bool { return strings.Contains(string(a), Wildcard) }

// globMatch reports whether name matches pattern, where * matches any run
// of characters and everything else matches itself.
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, Wildcard)
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(name, part)
		if i < 0 {
			return false
		}
		name = name[i+len(part):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}

// matchSubjects, matchChannels and matchActions report whether the rule
// applies, with a human explanation of why or why not.

func (r *rule) matchSubjects(w *who) (bool, string) {
	if r.subjects == nil {
		return true, "anyone (omitted)"
	}
	for _, s := range r.subjects {
		if ok, why := s.match(w); ok {
			return true, why
		}
	}
	return false, fmt.Sprintf("%s is not one of %s", describeWho(w), joinRaw(r.subjects, func(s subjectPattern) string { return s.raw }))
}

func (r *rule) matchChannels(channel string) (bool, string) {
	if r.channels == nil {
		return true, "any channel (omitted)"
	}
	for _, c := range r.channels {
		if c.match(channel) {
			if c.any || c.platform != "" {
				return true, fmt.Sprintf("%s matches %s", channel, c.raw)
			}
			return true, fmt.Sprintf("%s is listed", channel)
		}
	}
	return false, fmt.Sprintf("%s is not one of %s", quoteEmpty(channel), joinRaw(r.channels, func(c channelPattern) string { return c.raw }))
}

func (r *rule) matchActions(name string) (bool, string) {
	if r.actions == nil {
		return true, "any action (omitted)"
	}
	for _, a := range r.actions {
		if a.match(name) {
			if a.isGlob() {
				return true, fmt.Sprintf("%s matches %s", name, a)
			}
			return true, fmt.Sprintf("%s is listed", name)
		}
	}
	return false, fmt.Sprintf("%s is not one of %s", quoteEmpty(name), joinRaw(r.actions, func(a actionPattern) string { return string(a) }))
}

func describeWho(w *who) string {
	s := quoteEmpty(w.subject)
	var extra []string
	for _, g := range w.groupList {
		extra = append(extra, "group:"+g)
	}
	for g := range w.platformGroups {
		extra = append(extra, g)
	}
	if len(extra) == 0 {
		return s
	}
	slices.Sort(extra[len(w.groupList):])
	return s + " (" + strings.Join(extra, ", ") + ")"
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func joinRaw[T any](xs []T, f func(T) string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return "[" + strings.Join(out, ", ") + "]"
}
