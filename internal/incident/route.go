package incident

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Route sends the alert groups whose labels match every matcher to a
// channel ("slack:C123").
type Route struct {
	Matchers []Matcher
	Channel  string
}

// Matcher matches one label: exactly, or by an anchored regular
// expression.
type Matcher struct {
	Label string
	Value string         // exact value, when Regexp is nil
	Re    *regexp.Regexp // anchored
}

// Matches reports whether labels satisfy the matcher. A missing label is
// the empty value, as in Alertmanager.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Label]
	if m.Re != nil {
		return m.Re.MatchString(v)
	}
	return v == m.Value
}

// ParseRoute builds a Route from configuration: each match value is an
// exact label value, or a regular expression after "=~".
func ParseRoute(match map[string]string, channel string) (Route, error) {
	if _, _, ok := splitChannel(channel); !ok {
		return Route{}, fmt.Errorf("route channel %q is not platform:id", channel)
	}
	if len(match) == 0 {
		return Route{}, fmt.Errorf("route to %s has no matchers", channel)
	}
	r := Route{Channel: channel}
	for _, label := range slices.Sorted(maps.Keys(match)) {
		v := match[label]
		m := Matcher{Label: label, Value: v}
		if expr, ok := strings.CutPrefix(v, "=~"); ok {
			re, err := regexp.Compile("^(?:" + expr + ")$")
			if err != nil {
				return Route{}, fmt.Errorf("route to %s: label %s: %w", channel, label, err)
			}
			m.Value, m.Re = "", re
		}
		r.Matchers = append(r.Matchers, m)
	}
	return r, nil
}

// route picks the channel of a group: the first matching route, else the
// default (which may be empty: nowhere).
func route(routes []Route, def string, labels map[string]string) (channel string, matched int) {
	for i, r := range routes {
		ok := true
		for _, m := range r.Matchers {
			if !m.Matches(labels) {
				ok = false
				break
			}
		}
		if ok {
			return r.Channel, i
		}
	}
	return def, -1
}

// splitChannel splits "platform:id".
func splitChannel(ref string) (platform, id string, ok bool) {
	platform, id, ok = strings.Cut(ref, ":")
	return platform, id, ok && platform != "" && id != ""
}
