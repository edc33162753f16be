package rules

import (
	"fmt"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// scores holds the evidence for each action of the catalog.
type scores struct {
	strong []float64 // cues above 1, values, situations
	weak   []float64 // cues of 1 or less: they count only beside a strong one, or together
	has    []bool    // a strong cue was seen
	own    []bool    // a word of its own (a cue or a situation), not only values
}

func newScores(n int) scores {
	return scores{strong: make([]float64, n), weak: make([]float64, n), has: make([]bool, n), own: make([]bool, n)}
}

// add adds a cue: a word or phrase of the action's own.
func (s *scores) add(act *actInfo, w float64) {
	s.own[act.idx] = true
	s.weigh(act, w)
}

// weigh adds evidence, weak when it weighs 1 or less.
func (s *scores) weigh(act *actInfo, w float64) {
	if w > 1 {
		s.strong[act.idx] += w
		s.has[act.idx] = true
		return
	}
	s.weak[act.idx] += w
}

// force adds evidence that is never weak (values, names, situations).
func (s *scores) force(act *actInfo, w float64) {
	s.strong[act.idx] += w
	if w > 1 {
		s.has[act.idx] = true
	}
}

// total is the evidence for an action: its weak cues count beside a
// strong one, or when together they weigh 2 ("lines mentioning X").
func (s *scores) total(act *actInfo) float64 {
	if s.has[act.idx] || s.weak[act.idx] >= 2 {
		return s.strong[act.idx] + s.weak[act.idx]
	}
	return s.strong[act.idx]
}

// read picks the best-supported read action. asked are changes that were
// not commands ("did the rollback finish?", "should I restart X?").
func (a *analysis) read(asked []mutCue) decision {
	if a.code != "" {
		if d, ok := a.rawQuery(); ok {
			return d
		}
	}
	acts := a.r.cat.acts
	sc := newScores(len(acts))
	subject := a.subjectsNamed()
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used || a.logIn(i) || a.changeCount(i) || askedAt(asked, i) {
			continue
		}
		// a word several actions share counts for those whose subject the
		// message names: "status of checkout" (a deployment), "eval
		// status" (an evaluation); for all of them when none is named
		anyNamed := false
		for _, c := range wi.cues {
			anyNamed = anyNamed || c.shared && subject[c.act.idx]
		}
		for _, c := range wi.cues {
			if c.act.mutating || a.inSymptom(i) && c.act.situations[sSymptom] == 0 {
				continue // in a symptom, only the trouble described counts
			}
			if c.shared && anyNamed && !subject[c.act.idx] {
				continue
			}
			sc.add(c.act, float64(c.w))
		}
	}
	for _, h := range a.phrases {
		if h.ph.kind != pCue || h.ph.act.mutating || a.inSymptom(h.start) && h.ph.act.situations[sSymptom] == 0 {
			continue
		}
		sc.add(h.ph.act, float64(h.ph.w))
	}
	for _, act := range acts {
		if act.mutating {
			continue
		}
		for k, on := range [nSituations]bool{a.capability, a.wellness, a.symStart >= 0} {
			if on && act.situations[k] > 0 {
				sc.force(act, float64(act.situations[k]))
				sc.own[act.idx] = true
			}
		}
		keyed := false
		for _, p := range act.params {
			switch {
			case p.cue == 0 || !a.hasValue(p):
			case p.cue <= 1 && !p.is(action.Duration) && p.accepts == 0:
				sc.weigh(act, float64(p.cue)) // weak: it counts beside a cue of its own ("logs with timeout")
			default:
				sc.force(act, float64(p.cue)) // a value named; a name, a window (tie-breakers)
			}
			if _, ok := a.kvFor(p); ok && !keyed && p.p.Source == action.NoSource && !p.is(action.Duration) {
				keyed = true // "level:error", "limit:50": the key names what is asked
				sc.force(act, 1.5)
			}
		}
	}
	a.commandedReads(&sc)
	// a value named beside a word that names what is asked qualifies it:
	// "checkout memory logs", "memory errors in the orders logs"
	for _, act := range acts {
		if act.mutating || !a.strongNoun(act) {
			continue
		}
		for _, v := range a.values {
			if v.param.act != act && !v.param.act.mutating && !v.weak {
				sc.force(act, 1)
				break
			}
		}
	}
	named := a.hasTarget() || a.threadNamed()
	for _, m := range asked {
		// a question about a change shows the state of its target instead
		// ("should I restart checkout?"; "should I scale it to 4?" of the
		// thread's)
		for _, t := range m.act.targets() {
			if !a.hasValueOf(t) && !(a.pronoun() >= 0 && a.threadGives(t)) {
				continue
			}
			for _, act := range acts {
				if q := act.param(t.name()); !act.mutating && q != nil && q.p.Source == t.p.Source && t.p.Source != action.NoSource {
					sc.force(act, 1.5)
				}
			}
		}
	}
	// an action without parameters (help) is about the bot: it is out of
	// the running when the message names a thing or another action has
	// evidence of its own
	botOnly := named
	for _, act := range acts {
		if !act.mutating && len(act.params) > 0 && sc.total(act) >= 2 {
			botOnly = true
		}
	}
	best, top, second := (*actInfo)(nil), 0.0, 0.0
	for _, act := range acts {
		if act.mutating || botOnly && len(act.params) == 0 {
			continue
		}
		s := sc.total(act)
		if best == nil || s > top {
			if best != nil {
				second = max(second, top)
			}
			best, top = act, s
		} else {
			second = max(second, s)
		}
	}
	if len(a.history) > 0 && (best == nil || top < 1 || !sc.own[best.idx]) {
		// "and in staging?", "same for payments": the thread's last request again
		if d, ok := a.repeat(); ok {
			return d
		}
	}
	if !named && !a.capability && !a.otherNamed() && !a.botAnswers(sc) && a.generalQuestion() {
		return decision{conf: 0.6, notes: append(a.notes, "a general question, not a request")}
	}
	if a.gibberish() {
		return decision{conf: 0.7, notes: append(a.notes, "not understood")}
	}
	if best != nil && !sc.own[best.idx] && a.valueOfOther(best) {
		// only a value points at it ("site:docs", a host-shaped word), and
		// the same value fits an action whose subject the message names
		// ("the cdn", "the flag"): that one was meant, without its verb
		return decision{conf: 0.6, notes: append(a.notes, "no action fits")}
	}
	if best == nil || top < 1 {
		if fb := a.namedOnly(); fb != nil {
			best, top, second = fb, 1, 0
		} else {
			note := "no action fits"
			if a.greeting() {
				note = "a greeting"
				if ex := a.r.cat.capabilityExample(); ex != "" {
					note = fmt.Sprintf("a greeting: say %q to see what I can do", ex)
				}
			}
			return decision{conf: 0.6, notes: append(a.notes, note)}
		}
	}
	d := decision{act: best, params: action.Params{}, notes: a.notes, top: top}
	d.conf = 0.45 + 0.1*min(top-second, 4) + 0.05*min(top, 3) - 0.05*float64(min(a.typos, 3))
	a.fillRead(&d)
	return d
}

// commandedReads: in a message of several clauses, a read asked for as a
// command ("show me the billing pods, why do they keep restarting") is
// the request, and the question beside it context: the actions with a cue
// of 2 or more in the command's clause gain.
func (a *analysis) commandedReads(sc *scores) {
	multi := false
	for i := 1; i < len(a.toks); i++ {
		multi = multi || a.toks[i].sep
	}
	if !multi {
		return
	}
	for start := 0; start < len(a.toks); start++ {
		if start > 0 && !a.toks[start].sep || !a.readCommand(start) {
			continue
		}
		var seen []*actInfo
		for i := start; i < len(a.toks) && (i == start || !a.toks[i].sep); i++ {
			wi := a.info[i]
			if wi == nil || a.toks[i].used || a.logIn(i) {
				continue
			}
			for _, c := range wi.cues {
				if c.w >= 2 && !c.act.mutating && !containsAct(seen, c.act) {
					seen = append(seen, c.act)
					sc.force(c.act, 1.5)
				}
			}
		}
		for _, h := range a.phrases {
			if h.ph.kind == pCue && h.ph.w >= 2 && !h.ph.act.mutating && h.start >= start && !containsAct(seen, h.ph.act) && !a.sepBetween(start, h.start) {
				seen = append(seen, h.ph.act)
				sc.force(h.ph.act, 1.5)
			}
		}
	}
}

// sepBetween reports a clause boundary after i up to and including j.
func (a *analysis) sepBetween(i, j int) bool {
	for k := i + 1; k <= j && k < len(a.toks); k++ {
		if a.toks[k].sep {
			return true
		}
	}
	return false
}

// askedAt reports the word of a change asked about at i: "scaled" in
// "what would happen if I scaled checkout to 0?" is that change, not a
// report of what was scaled.
func askedAt(asked []mutCue, i int) bool {
	for _, m := range asked {
		if m.at == i {
			return true
		}
	}
	return false
}

// changeCount reports the word of a count of a change's number at i: the
// "pods" of "we'd need 12 pods of checkout" counts replicas, it does not
// ask for a list of pods.
func (a *analysis) changeCount(i int) bool {
	for _, b := range a.bound {
		if b.after && b.word == i && hasMutatingInt(b.params) {
			return true
		}
	}
	return false
}

// subjectsNamed reports, per action, whether the message names its
// subject: a name of one of its parameters' inventories (not the
// namespace), a value of one of its enum, number or pattern parameters, or
// a strong cue (2 or more) no other read action shares.
func (a *analysis) subjectsNamed() []bool {
	out := make([]bool, len(a.r.cat.acts))
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used {
			continue
		}
		for _, c := range wi.cues {
			if c.w >= 2 && !c.shared {
				out[c.act.idx] = true
			}
		}
	}
	for _, act := range a.r.cat.acts {
		if out[act.idx] || act.mutating {
			continue
		}
		for _, p := range act.params {
			switch {
			case p.scope, p.is(action.Duration), p.freeText, p.p.Code:
			case a.hasValue(p):
				out[act.idx] = true
			}
		}
	}
	return out
}

// otherNamed reports a name of an inventory other than deployments,
// services and namespaces (an evaluation suite), or a number bound to a
// parameter: "how do I compare prompt-v2 to baseline" is a request.
func (a *analysis) otherNamed() bool {
	for _, h := range a.names {
		if h.e.kinds&(kSuite|kVariant) != 0 {
			return true
		}
	}
	return len(a.bound) > 0
}

// botAnswers reports a strong answer by an action without parameters (what
// the bot does): "how do I use you?" is a question for help.
func (a *analysis) botAnswers(sc scores) bool {
	for _, act := range a.r.cat.acts {
		if len(act.params) == 0 && !act.mutating && sc.total(act) >= 3 {
			return true
		}
	}
	return false
}

// namedOnly is the read action for a message that only names things
// ("checkout prod?"): the one that declares CueNamed most.
func (a *analysis) namedOnly() *actInfo {
	if !a.hasTarget() || a.unknownWords() > 0 {
		return nil
	}
	var best *actInfo
	for _, act := range a.r.cat.acts {
		if !act.mutating && act.situations[sNamed] > 0 && (best == nil || act.situations[sNamed] > best.situations[sNamed]) {
			best = act
		}
	}
	return best
}

// valueOfOther reports that the value pointing most at act also fits a
// parameter of another action whose subject the message names (an unused
// cue of 2 or more of it).
func (a *analysis) valueOfOther(act *actInfo) bool {
	var key *paramInfo
	for _, p := range act.params {
		if p.cue > 0 && a.hasValue(p) && (key == nil || p.cue > key.cue) {
			key = p
		}
	}
	if key == nil {
		return false
	}
	for _, other := range a.subjects(act) {
		for _, q := range other.params {
			if q.p.Type == key.p.Type && q.p.Source == key.p.Source && (q.p.Pattern != nil) == (key.p.Pattern != nil) && a.hasValue(q) {
				return true
			}
		}
	}
	return false
}

// subjects are the other actions with an unused cue of 2 or more.
func (a *analysis) subjects(act *actInfo) []*actInfo {
	var out []*actInfo
	add := func(o *actInfo) {
		if o != act && !containsAct(out, o) {
			out = append(out, o)
		}
	}
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used {
			continue
		}
		for _, c := range wi.cues {
			if c.w >= 2 {
				add(c.act)
			}
		}
	}
	for _, h := range a.phrases {
		if h.ph.kind == pCue && h.ph.w >= 2 {
			add(h.ph.act)
		}
	}
	return out
}

// strongNoun reports an unused cue of 3 or more of the action: a word that
// names what is asked ("logs").
func (a *analysis) strongNoun(act *actInfo) bool {
	for i, wi := range a.info {
		if wi != nil && !a.toks[i].used && !a.logIn(i) && wi.cueFor(act) >= 3 {
			return true
		}
	}
	return false
}

// rawQuery routes a literal query in backticks to the action whose code
// parameter takes it: one whose pattern matches (LogQL) before one that
// takes any code (PromQL).
func (a *analysis) rawQuery() (decision, bool) {
	var pick, any *paramInfo
	for _, p := range a.r.cat.params {
		if !p.p.Code || p.act.mutating {
			continue
		}
		if p.p.Pattern != nil {
			if pick == nil && p.p.Pattern.MatchString(a.code) {
				pick = p
			}
			continue
		}
		if any == nil {
			any = p
		}
	}
	if pick == nil {
		pick = any
	}
	if pick == nil {
		return decision{}, false
	}
	d := decision{act: pick.act, params: action.Params{pick.name(): a.code}, conf: 0.9, notes: a.notes}
	for _, p := range pick.act.params {
		switch {
		case p.is(action.Duration) && a.window != "":
			d.params[p.name()] = a.window
		case p.is(action.Int):
			if n, ok := a.boundTo(p); ok {
				d.params[p.name()] = n
			}
		}
	}
	d.notes = append(d.notes, fmt.Sprintf("raw %s", pick.name()))
	return d, true
}

// hasValue reports a value in the message for a parameter, as evidence for
// its action: a key:value, a value named, a bound number, a window, a name
// of its inventory, free text, a token its pattern takes.
func (a *analysis) hasValue(p *paramInfo) bool {
	if a.numbered && a.valued[p.flat] != 0 {
		return a.valued[p.flat] == 1
	}
	_, ok := a.kvFor(p)
	ok = ok || a.hasValueOf(p)
	if a.numbered {
		a.valued[p.flat] = 2
		if ok {
			a.valued[p.flat] = 1
		}
	}
	return ok
}

// hasValueOf is hasValue without keys.
func (a *analysis) hasValueOf(p *paramInfo) bool {
	switch {
	case p.is(action.Enum) || p.is(action.Bool):
		for _, v := range a.values {
			if v.param == p {
				return true
			}
		}
		return false
	case p.is(action.Int):
		_, ok := a.boundTo(p)
		return ok
	case p.is(action.Duration):
		return a.window != ""
	case p.accepts != 0:
		return len(a.namesOf(p.accepts)) > 0
	case p.p.Code:
		return false
	case p.freeText:
		return a.filterFor(p)
	case p.p.Pattern != nil:
		return a.patternToken(p) >= 0
	}
	return false
}

// patternToken is the token a selective pattern takes ("/img" for a
// path), or -1.
// A pattern that takes ordinary words ("^[a-z0-9-]+$") takes only a word
// shaped like an identifier ("api.internal", "dark-mode"): an ordinary
// word says nothing by itself.
func (a *analysis) patternToken(p *paramInfo) int {
	if p.p.Pattern == nil {
		return -1
	}
	for i, t := range a.toks {
		if t.used && t.kind != tWord || t.kind == tNum || t.kind == tCode || a.nameAt(i) || t.used && !t.said && t.kind == tWord {
			continue
		}
		if t.orig != "" && (p.selective || identShaped(t.orig)) && p.p.Pattern.MatchString(t.orig) && !a.introducedForOther(i, p) {
			return i
		}
	}
	return -1
}

// introducedForOther reports a token right after a word of another
// parameter of p's action: "issue INC-4411" is the silence's comment, not
// its alert name.
func (a *analysis) introducedForOther(i int, p *paramInfo) bool {
	for _, q := range p.act.params {
		if q != p && a.wordOf(i-1, q) && !a.wordOf(i-1, p) {
			return true
		}
	}
	return false
}

// identShaped reports a word written like an identifier rather than a
// word of the language: with a dot, dash, underscore, slash, digit or an
// inner capital.
func identShaped(w string) bool {
	return logShaped(w) || strings.ContainsAny(strings.Trim(w, ".-_/"), ".-_/")
}

// askedName is an unknown word right after a word that names what the
// read is ("status of foo", "describe foo", "pods of foo"): it is passed
// on as the name, so that the action answers "not found" (with close
// matches) rather than the router dropping it; "" when there is none.
func (a *analysis) askedName(act *actInfo) string {
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used || wi.cueFor(act) < 2.5 {
			continue
		}
		j := i + 1
		for j < len(a.toks) && !a.toks[j].sep && a.isWord(j, "of", "for", "on", "the") {
			j++
		}
		if j < len(a.toks) && !a.toks[j].sep && a.unknownName(j) && !a.isWord(j+1, "of", "for") {
			return a.toks[j].s
		}
	}
	return ""
}
