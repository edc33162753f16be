package rules

import (
	"fmt"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Follow-ups: a message that leans on the earlier turns of its thread (the
// same user's, as the pipeline keeps them) for what it is about. "status
// of checkout in prod" then:
//   - "scale it to 4", "roll that back", "restart it in staging": a change
//     asked with its own verb whose target is the thread's (a change that
//     names no target takes the thread's only when the turn it comes from
//     named exactly one, in the inventory);
//   - "show its pod logs", "and the pods?", "is it healthy?": a read whose
//     target is the thread's, when the message refers back (a pronoun, or
//     "and ...", "what about ...", "same ...");
//   - "and in staging?", "same for payments", "what about the last 6
//     hours?": the earlier read again, with what this message names in
//     place of what it named before.
//
// The thread never adds a change: a change still needs its verb, used as
// a command, in this message; a negation, a question, a second command
// or an injection in it still mean none; and a follow-up of a change
// ("and in staging?" after a scale) repeats nothing.

// referWords are the pronouns that point back at a thing of the thread.
var referWords = setOf(`it its them their that this those these`)

// referPrev are the words after which a pronoun is an object or the
// subject of a question: "scale it", "logs of it", "is it up?".
var referPrev = setOf(`of for on about with to at from in into is are was were does did has have can could should will would`)

// refers reports a message that points back at the thread: a pronoun in
// an object position ("scale it", "roll that back", "its logs", "is it
// up?"), or an opening that continues it ("and ...", "what about ...",
// "same for ...").
func (a *analysis) refers() bool {
	return a.pronoun() >= 0 || a.continues()
}

// pronoun is the token of a pronoun standing for a thing of the thread,
// or -1.
func (a *analysis) pronoun() int {
	for i, t := range a.toks {
		if t.kind != tWord || t.used || !referWords[t.s] {
			continue
		}
		if t.s == "its" || t.s == "their" {
			return i // "its logs"
		}
		if i == 0 || a.toks[i].sep {
			continue
		}
		prev := a.word(i - 1)
		demonstrative := t.s != "it" && t.s != "them"
		switch {
		case a.inVerbPhrase(i): // "roll that back"
			return i
		case a.info[i-1] != nil && len(a.info[i-1].verbs) > 0 || a.info[i-1].has(wRead) && !a.toks[i-1].used: // "restart it", "show them"
			return i
		case referPrev[prev] && !(demonstrative && (prev == "is" || prev == "are" || prev == "was" || prev == "were")):
			return i // "logs of it", "is it healthy?" (not "is that ok?")
		}
	}
	return -1
}

// inVerbPhrase reports token i inside a verb phrase's gap: "roll that back".
func (a *analysis) inVerbPhrase(i int) bool {
	for _, h := range a.phrases {
		if h.ph.kind == pVerb && h.start < i && i < h.end-1 {
			return true
		}
	}
	return false
}

// continues reports an opening that continues the thread: "and in
// staging?", "what about payments", "how about the last 6h", "same for
// cart", "do the same in dev".
func (a *analysis) continues() bool {
	i := 0
	for i < len(a.toks) && a.isWord(i, "ok", "okay", "so", "cool", "thanks", "great", "nice", "now", "then", "right") {
		i++
	}
	if a.isWord(i, "and", "also", "plus") || a.isWord(i, "what", "how") && a.isWord(i+1, "about") {
		return true
	}
	for j := range a.toks {
		if a.isWord(j, "same", "ditto") && (j+1 == len(a.toks) || a.toks[j+1].sep || a.isWord(j+1, "for", "in", "on", "with", "thing", "again", "there")) {
			return true
		}
	}
	return false
}

// referent is the latest earlier turn with a value for one of ps. exact
// keeps only values of the inventory, as a change needs.
func (a *analysis) referent(ps []*paramInfo, exact bool) (intent.Turn, bool) {
	for k := len(a.history) - 1; k >= 0; k-- {
		t := a.history[k]
		for _, p := range ps {
			if _, ok := a.turnValue(t, p, exact); ok {
				return t, true
			}
		}
	}
	return intent.Turn{}, false
}

// turnValue is the value an earlier turn gives for p: its parameter of
// the same name, or a name of a kind p takes (a service for a
// deployment). An inventory value is given in the inventory's spelling;
// with exact, only a value of the inventory counts.
func (a *analysis) turnValue(t intent.Turn, p *paramInfo, exact bool) (any, bool) {
	if t.Action == "" || t.Action == action.None {
		return nil, false
	}
	if v, ok := t.Params[p.name()]; ok && v != nil {
		if p.accepts == 0 {
			if exact && !a.sameType(v, p) {
				return nil, false
			}
			return v, true
		}
		if e, found := a.ix.lookup(strings.ToLower(fmt.Sprint(v))); found && e.kinds&p.accepts != 0 {
			return e.canon, true
		}
		if !exact {
			return v, true
		}
	}
	prev := a.r.cat.act(t.Action)
	if prev == nil || p.accepts == 0 {
		return nil, false
	}
	for _, q := range prev.params {
		v, ok := t.Params[q.name()]
		if !ok || q.scope != p.scope || q.accepts&p.accepts == 0 {
			continue
		}
		if e, found := a.ix.lookup(strings.ToLower(fmt.Sprint(v))); found && e.kinds&p.accepts != 0 {
			return e.canon, true
		}
	}
	return nil, false
}

// sameType reports a value of an earlier turn that p takes as it is.
func (a *analysis) sameType(v any, p *paramInfo) bool {
	switch v.(type) {
	case string:
		return p.is(action.String) || p.is(action.Enum) || p.is(action.Duration)
	case int:
		return p.is(action.Int)
	case bool:
		return p.is(action.Bool)
	}
	return false
}

// fromThread fills, from the referent turn, the parameters of d that say
// what its action acts on and that this message does not give (missing),
// and the namespace when this message names none. It reports whether it
// gave any.
func (a *analysis) fromThread(d *decision, missing []*paramInfo, exact bool) bool {
	t, ok := a.referent(missing, exact)
	if !ok {
		return false
	}
	var gave []*paramInfo
	for _, p := range missing {
		if v, ok := a.turnValue(t, p, exact); ok {
			d.params[p.name()] = v
			gave = append(gave, p)
		}
	}
	for _, p := range d.act.params {
		if _, set := d.params[p.name()]; set || !p.scope {
			continue
		}
		if ns, _ := a.namespace(); ns != "" {
			continue
		}
		if v, ok := a.turnValue(t, p, exact); ok {
			d.params[p.name()] = v
			gave = append(gave, p)
		}
	}
	d.notes = append(d.notes, fmt.Sprintf("%s from the thread (%q)", describe(d.params, gave), preview(t.Text, 60)))
	return true
}

// threadNamed reports a pronoun standing for a deployment or service of
// the thread: "is it healthy?" names a thing as "is checkout healthy?" does.
func (a *analysis) threadNamed() bool {
	if len(a.history) == 0 || a.pronoun() < 0 {
		return false
	}
	for k := len(a.history) - 1; k >= 0; k-- {
		t := a.history[k]
		prev := a.r.cat.act(t.Action)
		if prev == nil {
			continue
		}
		for _, q := range prev.params {
			v, ok := t.Params[q.name()]
			if !ok || q.scope || q.accepts&(kDeployment|kService) == 0 {
				continue
			}
			if e, found := a.ix.lookup(strings.ToLower(fmt.Sprint(v))); found && e.kinds&(kDeployment|kService) != 0 {
				return true
			}
		}
	}
	return false
}

// threadGives reports that the thread names what p takes, for a change
// whose message does not.
func (a *analysis) threadGives(p *paramInfo) bool {
	_, ok := a.referent([]*paramInfo{p}, true)
	return ok
}

// readFromThread gives a read that refers back the thing the thread is
// about, when this message names none for it: "show its pod logs", "and
// the pods?", "is it healthy?".
func (a *analysis) readFromThread(d *decision) {
	if len(a.history) == 0 || !a.refers() {
		return
	}
	var missing []*paramInfo
	for _, p := range d.act.params {
		if p.accepts == 0 || p.scope {
			continue
		}
		if _, set := d.params[p.name()]; set {
			return // the message names what it is about
		}
		missing = append(missing, p)
	}
	if len(missing) > 0 && a.fromThread(d, missing, false) {
		d.conf = min(d.conf, 0.85)
	}
}

// sameTarget fills the namespace of a change whose target this message
// names but not where it is, from the latest earlier turn about the same
// target: "status of checkout in prod" then "restart checkout".
func (a *analysis) sameTarget(d *decision) {
	if ns, _ := a.namespace(); ns != "" || len(a.history) == 0 {
		return
	}
	var scope *paramInfo
	for _, p := range d.act.params {
		if p.scope {
			scope = p
		}
	}
	if scope == nil {
		return
	}
	if _, set := d.params[scope.name()]; set {
		return
	}
	for k := len(a.history) - 1; k >= 0; k-- {
		t := a.history[k]
		same := false
		for _, p := range d.act.targets() {
			v, ok := a.turnValue(t, p, true)
			same = ok && fmt.Sprint(v) == fmt.Sprint(d.params[p.name()])
			if !same {
				break
			}
		}
		if !same {
			continue
		}
		if v, ok := a.turnValue(t, scope, true); ok {
			d.params[scope.name()] = v
			d.notes = append(d.notes, fmt.Sprintf("%s %v from the thread (%q)", scope.name(), v, preview(t.Text, 60)))
		}
		return
	}
}

// repeat reads a message that only continues the thread ("and in
// staging?", "same for payments") as the latest earlier request again,
// with what this message names in place of what that one named. A change
// is never repeated this way.
func (a *analysis) repeat() (decision, bool) {
	if !a.continues() || a.pronoun() >= 0 && len(a.names) == 0 {
		return decision{}, false
	}
	var t intent.Turn
	var act *actInfo
	for k := len(a.history) - 1; k >= 0 && act == nil; k-- {
		if t = a.history[k]; t.Action != "" && t.Action != action.None {
			act = a.r.cat.act(t.Action)
		}
	}
	if act == nil {
		return decision{}, false
	}
	if act.mutating {
		return decision{conf: 0.7, notes: append(a.notes, fmt.Sprintf("a follow-up does not repeat a change (%s): say the change in full", act.name))}, true
	}
	d := decision{act: act, params: action.Params{}, conf: 0.8, notes: a.notes}
	h := a.history
	a.history = nil // what this message names, not what the thread does
	a.fillRead(&d)
	a.history = h
	if len(d.params) == 0 {
		return decision{}, false // nothing here for that request: not its follow-up
	}
	for _, p := range act.params {
		if _, set := d.params[p.name()]; set {
			continue
		}
		if v, ok := t.Params[p.name()]; ok && v != nil {
			d.params[p.name()] = v
		}
	}
	d.notes = append(d.notes, fmt.Sprintf("read as %q again with %s", preview(t.Text, 60), describe(d.params, nil)))
	return d, true
}

// describe lists parameters as "deployment checkout, namespace prod": the
// ones named in only, or all of them.
func describe(p action.Params, only []*paramInfo) string {
	var parts []string
	if len(only) > 0 {
		for _, q := range only {
			if v, ok := p[q.name()]; ok {
				parts = append(parts, fmt.Sprintf("%s %v", q.name(), v))
			}
		}
		return strings.Join(parts, ", ")
	}
	return p.Canonical()
}

// preview cuts s to about n bytes on a rune boundary.
func preview(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
