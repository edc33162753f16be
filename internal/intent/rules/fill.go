package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// How a value was found.
type valueHow uint8

const (
	missing   valueHow = iota
	found              // named: a key, a name of the inventory, an enum value, a pattern's token, quoted text
	guessed            // an unknown word where the value goes ("scale foo to 3"): passed through as typed
	ambiguous          // several values for one
)

// pval is the value of one parameter.
type pval struct {
	v     any
	how   valueHow
	exact bool // in the inventory (or not an inventory parameter)
}

// change builds a change request, or none when a target is missing or
// ambiguous: a change names exactly one value for each required parameter
// that says what it acts on (a deployment; a site).
func (a *analysis) change(m mutCue) decision {
	act := m.act
	d := decision{act: act, params: action.Params{}, notes: a.notes}
	d.conf = 0.92 - 0.07*float64(min(a.typos, 3))
	none := func(note string) decision {
		return decision{conf: 0.5, notes: append(a.notes, note)}
	}
	targets := act.targets()
	var missed []*paramInfo
	for _, p := range targets {
		pv := a.targetValue(p, m.i)
		switch pv.how {
		case ambiguous:
			return none(fmt.Sprintf("%s needs exactly one %s", act.name, p.name()))
		case missing:
			missed = append(missed, p)
			continue
		}
		d.params[p.name()] = pv.v
		if !pv.exact {
			d.conf = 0.5
			d.notes = append(d.notes, fmt.Sprintf("%s %q is not in the inventory", p.name(), pv.v))
		}
	}
	if len(targets) == 0 {
		// nothing required: at least one thing it acts on must be named
		// ("silence HighErrorRate", "silence checkout"), not only guessed
		// from an ordinary word ("mute notifications"); one word names one
		// thing ("HighErrorRate" is the alert, not also a service)
		objs, named := act.objects(), false
		var taken []string
		for _, p := range objs {
			pv := a.targetValue(p, m.i)
			if pv.how != found && pv.how != guessed {
				continue
			}
			v := fmt.Sprint(pv.v)
			if slices.ContainsFunc(taken, func(t string) bool { return strings.EqualFold(t, v) }) {
				continue
			}
			taken = append(taken, v)
			d.params[p.name()] = pv.v
			named = named || pv.how == found
		}
		if len(taken) == 0 && len(objs) > 0 && a.fromThread(&d, objs, true) {
			named = true // "is HighErrorRate still firing?" then "silence it for 2h"
			d.conf = min(d.conf, 0.85)
		}
		if len(objs) > 0 && !named {
			return none(fmt.Sprintf("%s needs one of: %s", act.name, paramNames(objs)))
		}
	}
	if len(missed) > 0 && a.fromThread(&d, missed, true) {
		// "status of checkout in prod" then "scale it to 4": the thread's
		// one target, from the latest turn that named it in the inventory
		d.conf = min(d.conf, 0.85)
		var still []*paramInfo
		for _, p := range missed {
			if _, ok := d.params[p.name()]; !ok {
				still = append(still, p)
			}
		}
		missed = still
	}
	if len(missed) > 0 {
		if !a.otherObjectNamed(act, missed) {
			return none(fmt.Sprintf("%s needs exactly one %s", act.name, missed[0].name()))
		}
		// "run evals for prompt-v8": what it acts on is clear but for the
		// one missing, which the pipeline asks for before anything runs
		d.conf = min(d.conf, 0.6)
		d.notes = append(d.notes, fmt.Sprintf("no %s named", missed[0].name()))
	}
	for _, p := range act.params {
		if !p.scope {
			continue
		}
		ns, ok := a.namespace()
		if !ok {
			return none("several namespaces named: send one change at a time")
		}
		if ns != "" {
			d.params[p.name()] = ns
		}
	}
	a.sameTarget(&d)
	a.fillRest(&d, m.i)
	return d
}

// fits reports whether the message names the change's targets: each
// required one (strictly: named, not guessed), or, without a required
// one, one of the things it acts on. A word on the danger list is allowed
// only as the verb of a change that fits strictly.
func (a *analysis) fits(m mutCue, strict bool) bool {
	ok := func(h valueHow) bool { return h == found || !strict && h == guessed }
	targets := m.act.targets()
	for _, p := range targets {
		if h := a.targetValue(p, m.i).how; !ok(h) && !(h == missing && a.threadGives(p)) {
			return false
		}
	}
	if len(targets) > 0 {
		return true
	}
	anything := false
	for _, p := range m.act.objects() {
		h := a.targetValue(p, m.i).how
		if ok(h) {
			return true
		}
		anything = anything || h != missing
	}
	if !anything {
		for _, p := range m.act.objects() {
			if a.threadGives(p) {
				return true
			}
		}
	}
	return len(m.act.objects()) == 0
}

func paramNames(ps []*paramInfo) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name()
	}
	return strings.Join(names, ", ")
}

// otherObjectNamed reports a name, in the message, for another parameter
// of the action that takes inventory names (an evaluation variant).
func (a *analysis) otherObjectNamed(act *actInfo, missed []*paramInfo) bool {
	for _, p := range act.params {
		if p.accepts == 0 || p.scope || slices.Contains(missed, p) {
			continue
		}
		if vs := a.assignNames(act).get(p); len(vs) > 0 {
			return true
		}
		if _, ok := a.kvFor(p); ok {
			return true
		}
	}
	return false
}

// targetValue finds the one value of a parameter that says what a change
// acts on. verb is the change's verb (an unknown word after it is passed
// through as typed), or -1.
func (a *analysis) targetValue(p *paramInfo, verb int) pval {
	if h, ok := a.kvFor(p); ok {
		return a.typedValue(p, h)
	}
	switch {
	case p.accepts != 0:
		names := a.assignNames(p.act).get(p)
		switch len(names) {
		case 0:
		case 1:
			return pval{v: names[0], how: found, exact: true}
		default:
			return pval{how: ambiguous}
		}
		if w := a.passThrough(p, verb); w != "" {
			return pval{v: w, how: guessed}
		}
	case p.is(action.Enum):
		return a.enumValue(p)
	case p.p.Pattern != nil:
		if i := a.patternToken(p); i >= 0 {
			return pval{v: a.toks[i].orig, how: found, exact: true}
		}
		if a.filterFor(p) && p.p.Pattern.MatchString(a.filter) {
			return pval{v: a.filter, how: found, exact: true}
		}
		if w := a.objectWord(p, verb); w >= 0 && p.p.Pattern.MatchString(a.toks[w].orig) {
			how := guessed // an ordinary word where the value goes: "disable the firewall"
			if p.selective || identShaped(a.toks[w].orig) || a.nextToWord(w, p) {
				how = found
			}
			return pval{v: a.toks[w].orig, how: how, exact: true}
		}
	case p.freeText:
		if a.filterFor(p) && (len(a.filterBy) > 0 || firstFreeText(p.act) == p) {
			return pval{v: a.filter, how: found, exact: true}
		}
		if w := a.objectWord(p, verb); w >= 0 {
			t := a.toks[w]
			how := guessed
			if logShaped(t.orig) || a.nextToWord(w, p) {
				how = found // "silence HighErrorRate", "the emails queue"
			}
			return pval{v: t.orig, how: how, exact: true}
		}
	}
	return pval{}
}

func firstFreeText(act *actInfo) *paramInfo {
	for _, p := range act.params {
		if p.freeText {
			return p
		}
	}
	return nil
}

// typedValue reads a key:value for a parameter: a name of its inventory
// (typos allowed), an enum value or a word for one, or the text as typed.
func (a *analysis) typedValue(p *paramInfo, h kvHit) pval {
	switch {
	case p.accepts != 0:
		if e, hit := a.ix.lookup(h.val); hit && e.kinds&p.accepts != 0 {
			return pval{v: e.canon, how: found, exact: true}
		}
		if e, _, hit := a.ix.fuzzy(h.val); hit && e.kinds&p.accepts != 0 {
			return pval{v: e.canon, how: found, exact: true}
		}
		return pval{v: h.val, how: found}
	case p.is(action.Enum) || p.is(action.Bool):
		v := strings.ReplaceAll(h.val, "-", "_")
		if p.is(action.Bool) {
			for _, vt := range paramValues(p) {
				if vt.text == h.val {
					return pval{v: vt.value == "true", how: found, exact: true} // "previous:crashed"
				}
			}
			switch h.val {
			case "true", "yes", "on", "1":
				return pval{v: true, how: found, exact: true}
			case "false", "no", "off", "0":
				return pval{v: false, how: found, exact: true}
			}
			return pval{v: h.val, how: found, exact: true} // validation says what is allowed
		}
		for _, vt := range paramValues(p) {
			if vt.text == h.val || vt.text == v || strings.EqualFold(vt.value, v) {
				return pval{v: vt.value, how: found, exact: true}
			}
		}
		return pval{v: h.orig, how: found, exact: true} // validation says what is allowed
	case p.is(action.Int):
		if n, ok := atoi(h.val); ok {
			return pval{v: n, how: found, exact: true}
		}
		if n, ok := numberWord(h.val); ok {
			return pval{v: n, how: found, exact: true}
		}
		return pval{v: h.orig, how: found, exact: true}
	case p.is(action.Duration):
		if d, ok := a.r.compactDuration(h.val); ok {
			return pval{v: action.FormatDuration(d), how: found, exact: true}
		}
		return pval{v: h.orig, how: found, exact: true}
	}
	return pval{v: h.orig, how: found, exact: true}
}

// enumValue is the value of an enum parameter named in the message: the
// one named by a specific word, or, when only a weak word names one
// ("latency"), the first of those in the enum's order.
func (a *analysis) enumValue(p *paramInfo) pval {
	var strong, weak []string
	for _, v := range a.values {
		if v.param != p {
			continue
		}
		if v.weak {
			if !slices.Contains(weak, v.value) {
				weak = append(weak, v.value)
			}
			continue
		}
		if !slices.Contains(strong, v.value) {
			strong = append(strong, v.value)
		}
	}
	switch {
	case len(strong) == 1:
		return pval{v: strong[0], how: found, exact: true}
	case len(strong) > 1:
		return pval{v: strong[0], how: ambiguous, exact: true} // the first named, when one is enough
	case len(weak) > 0:
		for _, e := range p.p.Enum {
			if slices.Contains(weak, e) {
				return pval{v: e, how: found, exact: true}
			}
		}
	}
	return pval{}
}

// passThrough reads an unknown word where a name goes: after the change's
// verb ("scale foo to 3", "restart the foo deployment") or before a word
// for the thing ("the foo deployment", "the foo app").
func (a *analysis) passThrough(p *paramInfo, verb int) string {
	if verb >= 0 {
		for j := verb + 1; j < len(a.toks) && j <= verb+4; j++ {
			t := a.toks[j]
			if t.kind == tWord && targetFiller[t.s] {
				continue
			}
			if a.unknownName(j) {
				return t.s
			}
			break
		}
	}
	for j := 1; j < len(a.toks); j++ {
		if a.isWord(j, "deployment", "deploy", "service", "svc", "app") && a.unknownName(j-1) {
			return a.toks[j-1].s
		}
	}
	return ""
}

// objectWord is the token of an unknown word in the object slot of a
// change: after its verb ("silence HighErrorRate for 2h", "drain the
// emails queue"), or next to a word of the parameter ("queue emails").
func (a *analysis) objectWord(p *paramInfo, verb int) int {
	free := func(j int) bool {
		if j < 0 || j >= len(a.toks) {
			return false
		}
		t := a.toks[j]
		return t.kind == tWord && !t.used && a.info[j] == nil && !pronoun[t.s]
	}
	for j := range a.toks {
		if a.wordOf(j, p) {
			if free(j + 1) {
				return j + 1
			}
			if free(j-1) && j-1 != verb {
				return j - 1
			}
		}
	}
	if verb >= 0 {
		for j := verb + 1; j < len(a.toks) && j <= verb+4; j++ {
			if t := a.toks[j]; t.kind == tWord && targetFiller[t.s] {
				continue
			}
			if free(j) {
				return j
			}
			break
		}
	}
	return -1
}

// nextToWord reports a word of the parameter next to token j ("the emails
// queue").
func (a *analysis) nextToWord(j int, p *paramInfo) bool {
	return a.wordOf(j-1, p) || a.wordOf(j+1, p)
}

// wordOf reports a word of the parameter at i, or the last word of one
// of its phrases ("run id").
func (a *analysis) wordOf(i int, p *paramInfo) bool {
	if wi := a.r.lex[a.word(i)]; wi != nil && slices.Contains(wi.words, p) {
		return true
	}
	for _, h := range a.phrases {
		if h.ph.kind == pWord && h.ph.param == p && h.end-1 == i {
			return true
		}
	}
	return false
}

// assignNames gives each inventory name of the message to a parameter of
// the action that takes its kind: a name two parameters could take goes
// to the one a word before it names ("vs baseline", "compared to
// prompt-v2"), else to the first without a value, in declaration order (a
// name that is a suite and a variant is the suite). A name that is also a
// word of a parameter and comes before another name of its kind is that
// word ("baseline prompt-v2").
func (a *analysis) assignNames(act *actInfo) nameMap {
	if a.assigned != nil && a.assigned[act.idx] != nil {
		return nameMap(a.assigned[act.idx])
	}
	out := a.findAssignment(act)
	if a.assigned != nil {
		if out == nil {
			out = nameMap{}
		}
		a.assigned[act.idx] = out
	}
	return out
}

// nameMap is the names given to each parameter of an action.
type nameMap []nameVals

func (m nameMap) get(p *paramInfo) []string {
	for _, v := range m {
		if v.p == p {
			return v.names
		}
	}
	return nil
}

func (m *nameMap) add(p *paramInfo, name string) {
	for i := range *m {
		if (*m)[i].p == p {
			if !slices.Contains((*m)[i].names, name) {
				(*m)[i].names = append((*m)[i].names, name)
			}
			return
		}
	}
	*m = append(*m, nameVals{p: p, names: []string{name}})
}

func (a *analysis) findAssignment(act *actInfo) nameMap {
	var out nameMap
	var params []*paramInfo
	for _, p := range act.params {
		if p.accepts != 0 && !p.scope {
			params = append(params, p)
		}
	}
	if len(params) == 0 {
		return nameMap{}
	}
	for _, p := range params {
		if h, ok := a.kvFor(p); ok {
			if pv := a.typedValue(p, h); pv.exact {
				out.add(p, fmt.Sprint(pv.v))
			}
		}
	}
	for _, h := range a.names {
		var cands []*paramInfo
		for _, p := range params {
			if p.accepts&h.e.kinds == 0 {
				continue
			}
			if _, keyed := a.kvFor(p); keyed {
				continue
			}
			if p.accepts&(kDeployment|kService) != 0 && h.e.kinds&kNamespace != 0 && a.nsPosition(h.i) {
				continue
			}
			cands = append(cands, p)
		}
		if len(cands) == 0 {
			continue
		}
		if len(cands) > 1 && a.keywordName(h, cands) {
			continue
		}
		pick := cands[0]
		if len(cands) > 1 {
			if role := a.roleOf(h.i, cands); role != nil {
				pick = role
			} else {
				// the first parameter of the name's own kind; of several of
				// the same inventory, the first without a value
				var own []*paramInfo
				for _, c := range cands {
					if h.e.kinds&ownKind(c.p.Source) != 0 {
						own = append(own, c)
					}
				}
				if len(own) > 0 {
					pick = own[0]
					for _, c := range own {
						if c.p.Source == own[0].p.Source && len(out.get(c)) == 0 {
							pick = c
							break
						}
					}
				}
			}
		}
		out.add(pick, h.e.canon)
	}
	return out
}

// ownKind is the kind of name an inventory holds.
func ownKind(src action.Source) kinds {
	switch src {
	case action.Deployments:
		return kDeployment
	case action.Services:
		return kService
	case action.Namespaces:
		return kNamespace
	case action.EvalSuites:
		return kSuite
	case action.EvalVariants:
		return kVariant
	}
	return 0
}

// roleOf returns the parameter a word before the name at i gives it ("vs
// baseline", "compared to prompt-v2", "variant prompt-v3"), looking back
// over at most three tokens of the clause and not past another name.
func (a *analysis) roleOf(i int, cands []*paramInfo) *paramInfo {
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		for _, p := range cands {
			if a.wordOf(j, p) {
				return p
			}
		}
		if a.nameAt(j) || a.toks[j+1].sep {
			return nil
		}
	}
	return nil
}

// keywordName: "baseline" naming a variant, right before another name of
// the same kind, is the word of the baseline parameter.
func (a *analysis) keywordName(h nameHit, cands []*paramInfo) bool {
	for _, p := range cands {
		if a.wordOf(h.i, p) {
			for _, n := range a.names {
				if n.i == h.i+1 && n.e.kinds&h.e.kinds != 0 {
					return true
				}
			}
		}
	}
	return false
}

// namespace returns the one namespace named ("" when none); ok is false
// when several are named.
func (a *analysis) namespace() (string, bool) {
	if h, found := a.kvSlot(slotNamespace); found {
		if e, hit := a.ix.lookup(h.val); hit && e.kinds&kNamespace != 0 {
			return e.canon, true
		}
		if e, _, hit := a.ix.fuzzy(h.val); hit && e.kinds&kNamespace != 0 {
			return e.canon, true
		}
		return h.val, true
	}
	var found []string
	for _, h := range a.namesOf(kNamespace) {
		if !slices.Contains(found, h.e.canon) {
			found = append(found, h.e.canon)
		}
	}
	switch len(found) {
	case 0:
		return "", true
	case 1:
		return found[0], true
	}
	return found[0], false
}

// fillRest sets the parameters that do not say what is acted on: numbers,
// durations, values, free text, optional names.
func (a *analysis) fillRest(d *decision, verb int) {
	act := d.act
	var ints []*paramInfo
	for _, p := range act.params {
		if _, done := d.params[p.name()]; done || p.scope {
			continue
		}
		if h, ok := a.kvFor(p); ok {
			if pv := a.typedValue(p, h); pv.how == found {
				d.params[p.name()] = pv.v
				continue
			}
		}
		switch {
		case p.is(action.Int):
			if n, ok := a.boundTo(p); ok {
				d.params[p.name()] = n
				continue
			}
			ints = append(ints, p)
		case p.is(action.Duration):
			if a.window != "" {
				d.params[p.name()] = a.window
			} else if a.tooLong != "" {
				d.params[p.name()] = a.tooLong // a read drops it with a note; a change's validation says what is allowed
			}
		case p.is(action.Enum):
			if pv := a.enumValue(p); pv.how == found || pv.how == ambiguous {
				d.params[p.name()] = pv.v // "cpu and memory of cart": the first
			}
		case p.is(action.Bool):
			if v, ok := a.boolValue(p); ok {
				d.params[p.name()] = v
			} else if v, ok := a.onOff(verb); ok {
				d.params[p.name()] = v
			}
		case p.accepts != 0:
			if vs := a.assignNames(act).get(p); len(vs) > 0 {
				d.params[p.name()] = vs[0]
			}
		case p.p.Code:
		default:
			if pv := a.targetValue(p, -1); pv.how == found {
				d.params[p.name()] = pv.v
			}
		}
	}
	if !act.mutating || len(ints) == 0 {
		return
	}
	// "to N", a bare number: the change's number that has none
	req := act.requiredInt()
	switch {
	case req != nil && slices.Contains(ints, req):
		switch {
		case a.relative:
			d.conf = min(d.conf, 0.4)
			d.notes = append(d.notes, fmt.Sprintf("relative change: say the %s you want", req.name()))
		case a.toNum.ok:
			d.params[req.name()] = a.toNum.n
		case len(a.bareNums) == 1:
			d.params[req.name()] = a.bareNums[0]
			d.conf -= 0.1
		default:
			d.conf = min(d.conf, 0.45)
			d.notes = append(d.notes, fmt.Sprintf("no %s given", req.name()))
		}
	case len(ints) == 1 && a.toNum.ok:
		d.params[ints[0].name()] = a.toNum.n
	}
}

// boolValue reads a boolean named in the message: a word for true or
// false ("enable", "off"), or the parameter's own word ("previous").
func (a *analysis) boolValue(p *paramInfo) (bool, bool) {
	for _, v := range a.values {
		if v.param == p {
			b, err := strconv.ParseBool(v.value)
			return b, err == nil
		}
	}
	for i := range a.toks {
		if !a.toks[i].used && (a.wordOf(i, p) || a.isWord(i, strings.ToLower(p.name()))) {
			return !a.negated(i), true // "logs of the previous container", "without previous"
		}
	}
	return false, false
}

// onOff reads "on" or "off" in the clause after a change's verb: "turn
// the promo-banner flag off".
func (a *analysis) onOff(verb int) (bool, bool) {
	if verb < 0 {
		return false, false
	}
	for j := verb + 1; j < len(a.toks) && !a.toks[j].sep; j++ {
		switch a.word(j) {
		case "on":
			return true, true
		case "off":
			return false, true
		}
	}
	return false, false
}

// fillRead sets the parameters of a read action.
func (a *analysis) fillRead(d *decision) {
	act := d.act
	for _, p := range act.params {
		switch {
		case p.scope:
			if ns, _ := a.namespace(); ns != "" {
				d.params[p.name()] = ns
			}
		case p.accepts != 0:
			a.fillReadName(d, p)
		}
	}
	a.readFromThread(d)
	a.fillRest(d, -1)
}

// fillReadName: the thing a read is about: a key, the first name of its
// kind, or an unknown word where a name goes ("logs for foo").
func (a *analysis) fillReadName(d *decision, p *paramInfo) {
	if h, ok := a.kvFor(p); ok {
		pv := a.typedValue(p, h)
		d.params[p.name()] = pv.v
		if !pv.exact {
			d.conf = min(d.conf, 0.5)
			d.notes = append(d.notes, fmt.Sprintf("%s %q is not in the inventory", p.name(), pv.v))
		}
		return
	}
	if vs := a.assignNames(d.act).get(p); len(vs) > 0 {
		d.params[p.name()] = vs[0]
		if len(vs) > 1 && p.p.Source == action.Deployments {
			d.conf = min(d.conf, 0.5)
		}
		return
	}
	if p.accepts&(kDeployment|kService) == 0 {
		return
	}
	if p.p.Source == action.Services {
		for j := 1; j < len(a.toks); j++ {
			if a.isWord(j-1, "of", "for", "with") && a.unknownName(j) && !a.isWord(j+1, "of", "for") {
				d.params[p.name()] = a.toks[j].s
				d.conf = min(d.conf, 0.5)
				d.notes = append(d.notes, fmt.Sprintf("%s %q is not in the inventory", p.name(), a.toks[j].s))
				return
			}
		}
		return
	}
	w := a.passThrough(p, -1)
	if w == "" {
		w = a.askedName(d.act)
	}
	if w != "" {
		d.params[p.name()] = w
		d.conf = min(d.conf, 0.5)
		d.notes = append(d.notes, fmt.Sprintf("%s %q is not in the inventory", p.name(), w))
	}
}
