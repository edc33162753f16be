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
// and the policy groups it belongs to. It is built for every decision, so
// it holds slices, not maps: a requester has few groups.
type who struct {
	subject        string
	platformGroups []string // sorted, without repeats
	groupList      []string // policy group names in file order
	via            []string // via[i] is what puts the requester in groupList[i]: the subject or a platform group
}

func (p *Policy) who(subject string, platformGroups []string) *who {
	w := &who{subject: subject}
	if len(platformGroups) > 0 {
		w.platformGroups = slices.Compact(slices.Sorted(slices.Values(platformGroups)))
	}
	for _, g := range p.groups {
		via := ""
		if g.members[subject] {
			via = subject
		} else {
			for _, pg := range platformGroups {
				if g.members[pg] {
					via = pg
					break
				}
			}
		}
		if via != "" {
			w.groupList = append(w.groupList, g.name)
			w.via = append(w.via, via)
		}
	}
	return w
}

// inGroup reports whether the requester is in the policy group, and
// through what.
func (w *who) inGroup(name string) (bool, string) {
	for i, g := range w.groupList {
		if g == name {
			return true, w.via[i]
		}
	}
	return false, ""
}

// inPlatformGroup reports whether the requester is in the platform group.
func (w *who) inPlatformGroup(g string) bool {
	_, ok := slices.BinarySearch(w.platformGroups, g)
	return ok
}

// subjectPattern is one entry of a rule's subjects.
type subjectPattern struct {
	raw      string
	any      bool   // "*"
	group    string // group:NAME
	platform string // "slack:*": any user of a platform
	group2   bool   // raw is a platform group, matched against the input's groups
}

// matches reports whether the pattern matches, building no explanation.
func (s subjectPattern) matches(w *who) bool {
	switch {
	case s.any:
		return true
	case s.group != "":
		ok, _ := w.inGroup(s.group)
		return ok
	case s.platform != "":
		return len(w.subject) > len(s.platform) && w.subject[len(s.platform)] == ':' && strings.HasPrefix(w.subject, s.platform)
	case s.group2:
		return w.inPlatformGroup(s.raw)
	default:
		return w.subject == s.raw
	}
}

func (s subjectPattern) match(w *who) (bool, string) {
	if !s.matches(w) {
		return false, ""
	}
	switch {
	case s.any:
		return true, "anyone (*)"
	case s.group != "":
		_, via := w.inGroup(s.group)
		return true, fmt.Sprintf("%s is in group %s (via %s)", w.subject, s.group, via)
	case s.platform != "":
		return true, fmt.Sprintf("%s matches %s", w.subject, s.raw)
	case s.group2:
		return true, fmt.Sprintf("%s is in %s", w.subject, s.raw)
	default:
		return true, fmt.Sprintf("%s is listed", w.subject)
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
	if !strings.Contains(pattern, Wildcard) {
		return pattern == name
	}
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

// applies reports whether the rule's subjects, channels and actions
// match, building no explanation: the path every decision takes.
func (r *rule) applies(w *who, channel, action string) bool {
	if r.subjects != nil {
		ok := false
		for _, s := range r.subjects {
			if s.matches(w) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.channels != nil {
		ok := false
		for _, c := range r.channels {
			if c.match(channel) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.actions != nil {
		for _, a := range r.actions {
			if a.match(action) {
				return true
			}
		}
		return false
	}
	return true
}

// matchSubjects, matchChannels and matchActions report whether the rule
// applies, with a human explanation of why or why not (Explain).

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
	extra = append(extra, w.platformGroups...) // sorted
	if len(extra) == 0 {
		return s
	}
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
