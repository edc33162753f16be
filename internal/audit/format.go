package audit

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/parley-chatops/parley/internal/action"
)

// Format renders e on one line for chat threads and `parley audit list`:
//
//	#41 02:14:07 policy.decided console:alice scale prod/checkout replicas=5 → confirm (rule "sre changes prod")
//
// The time is UTC. Free text is flattened to one line and shortened.
func Format(e Event) string {
	parts := []string{"#" + strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format("15:04:05"), string(e.Type)}
	if e.Subject != "" {
		parts = append(parts, oneLine(e.Subject, 64))
	}
	if e.Action != "" || len(e.Params) > 0 {
		parts = append(parts, describeAction(e.Action, e.Params))
	}
	if e.Text != "" {
		parts = append(parts, strconv.Quote(oneLine(e.Text, 80)))
	}
	switch {
	case e.Decision != "":
		parts = append(parts, "→ "+e.Decision)
	case e.Outcome != "":
		parts = append(parts, "→ "+oneLine(e.Outcome, 100))
	}
	if e.Rule != "" {
		parts = append(parts, fmt.Sprintf("(rule %s)", strconv.Quote(oneLine(e.Rule, 64))))
	}
	if e.Router != "" {
		parts = append(parts, fmt.Sprintf("(%s %s)", oneLine(e.Router, 32), strconv.FormatFloat(e.Confidence, 'f', 2, 64)))
	}
	if e.ConfirmationID != "" {
		id := []rune(oneLine(e.ConfirmationID, maxShort))
		if len(id) > 8 {
			id = id[:8] // ids are hex; eight digits tell them apart in a thread
		}
		parts = append(parts, "[confirmation "+string(id)+"]")
	}
	if e.Duration > 0 {
		parts = append(parts, "in "+e.Duration.String())
	}
	if e.Error != "" {
		parts = append(parts, "error: "+oneLine(e.Error, 120))
	}
	return strings.Join(parts, " ")
}

// describeAction renders an action and its parameters compactly. An action
// on a Deployment reads as its verb and namespace/deployment
// ("scale prod/checkout replicas=5"); anything else as the action name
// and key=value pairs in key order.
func describeAction(name string, p action.Params) string {
	var b strings.Builder
	rest := p
	ns, dep := p.String("namespace"), p.String("deployment")
	if ns != "" && dep != "" && name != "" {
		verb := name[strings.LastIndexByte(name, '.')+1:]
		b.WriteString(oneLine(verb, 32) + " " + oneLine(ns, 64) + "/" + oneLine(dep, 64))
		rest = p.Clone()
		delete(rest, "namespace")
		delete(rest, "deployment")
	} else {
		b.WriteString(oneLine(name, 64))
	}
	for _, k := range slices.Sorted(maps.Keys(rest)) {
		v := oneLine(rest.String(k), 60)
		if v == "" || strings.ContainsAny(v, ` "=`) {
			v = strconv.Quote(v)
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(oneLine(k, 32) + "=" + v)
	}
	return b.String()
}

// oneLine replaces control characters and runs of white space with one
// space and shortens s to at most n runes, ending in "…" when cut.
func oneLine(s string, n int) string {
	out := make([]rune, 0, min(len(s), n+1))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
		if len(out) > n {
			return string(out[:n-1]) + "…"
		}
	}
	return string(out)
}
