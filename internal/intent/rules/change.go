package rules

import (
	"fmt"

	"github.com/parley-chatops/parley/internal/action"
)

// mutCue is a word asking for a change.
type mutCue struct {
	act        *actInfo
	i          int // the verb whose clause must be imperative
	at         int // the change word itself
	imperative bool
}

// decide reads the message as a change, a read, or nothing.
func (a *analysis) decide() decision {
	if len(a.toks) == 0 {
		return decision{conf: 0.95, notes: []string{"empty message"}}
	}
	if a.markers || a.injection() {
		return decision{conf: 0.9, notes: []string{"reads like instructions to the bot, not a request"}}
	}
	muts := a.mutations()
	if w := a.danger(muts); w != "" {
		return decision{conf: 0.9, notes: []string{fmt.Sprintf("%q is not something Parley does", w)}}
	}
	var imps []mutCue
	for _, m := range muts {
		if a.inSymptom(m.i) && !m.imperative {
			continue // "investigate X, users can't restart sessions": the trouble, not a request
		}
		if a.negated(m.i) {
			// "don't restart auth, just tell me if it's healthy": answer
			// the read request if there clearly is one, else nothing
			if d := a.read(nil); d.act != nil && d.top >= 2.5 && (a.readAfter(m.i, m.act) || a.inSymptom(m.i)) {
				return d
			}
			return decision{conf: 0.85, notes: []string{"negated request: nothing to do"}}
		}
		if m.imperative {
			imps = append(imps, m)
		}
	}
	if j := a.withheldChange(len(muts) > 0 || a.changeGerund()); j >= 0 {
		// "please don't touch checkout in prod", "I was going to ask you to
		// roll back payments but let's not": nothing, unless a read follows
		if d := a.read(nil); d.act != nil && d.top >= 2.5 && (a.readAfter(j, nil) || a.inSymptom(j)) {
			return d
		}
		return decision{conf: 0.8, notes: []string{"a change that is not wanted: nothing to do"}}
	}
	if len(imps) > 0 {
		for _, m := range muts {
			// "purge the shop cache and restart checkout": a second change
			// joined to the first is asked too
			if !m.imperative && m.i > imps[0].i && a.isWord(m.i-1, "and", "then", "also", "&", "plus") && m.act != imps[0].act {
				return decision{conf: 0.7, notes: []string{fmt.Sprintf("several changes in one message (%s and %s): send one at a time", imps[0].act.name, m.act.name)}}
			}
		}
		imps = a.fitting(imps)
		for _, m := range imps[1:] {
			if m.act != imps[0].act {
				return decision{conf: 0.7, notes: []string{fmt.Sprintf("several changes in one message (%s and %s): send one at a time", imps[0].act.name, m.act.name)}}
			}
		}
		if a.retracted(imps[0].i) {
			return decision{conf: 0.7, notes: []string{"the request was taken back or corrected: send it again"}}
		}
		if a.alsoRead(imps[0].i) {
			return decision{conf: 0.6, notes: []string{"a change and another request in one message: send one at a time"}}
		}
		return a.change(imps[0])
	}
	if len(muts) == 0 && a.unsupportedChange() {
		return decision{conf: 0.6, notes: []string{"an unsupported change"}}
	}
	var asked []mutCue
	for _, m := range muts {
		if !a.inSymptom(m.i) {
			asked = append(asked, m)
		}
	}
	return a.read(asked)
}

// fitting keeps, of changes asked by the same word for several actions
// ("purge" of two actions), those whose targets the message names.
func (a *analysis) fitting(imps []mutCue) []mutCue {
	var fit []mutCue
	for _, m := range imps {
		if a.fits(m, false) {
			fit = append(fit, m)
		}
	}
	if len(fit) == 0 {
		return imps
	}
	return fit
}

// inSymptom reports a token in the symptom clause of a diagnosis request.
func (a *analysis) inSymptom(i int) bool {
	return a.symStart >= 0 && i >= a.symStart
}

// mutations lists the words that ask for a change.
func (a *analysis) mutations() []mutCue {
	var out []mutCue
	for i := range a.toks {
		t := a.toks[i]
		wi := a.info[i]
		if t.kind != tWord || t.used {
			continue
		}
		var cands []*actInfo
		verb := i // the word whose clause must be imperative
		kind := "verb"
		if hit, found := a.verbPhrase(i, formBase); found {
			// "roll back", "kick off": the phrase decides, even when it
			// lacks its context ("kick off the deploy" asks for nothing)
			cands = hit
		} else if vs := wi.verbOf(formBase); len(vs) > 0 && !a.nounCompound(i) {

			for _, act := range vs {
				if !wi.openVerb(act) || a.context(act) {
					cands = append(cands, act)
				}
			}
			if wi.has(wOpen) && a.runIsNoun(i) {
				cands = nil // "the last run", "eval run 42"
			}
			verb = a.nounVerb(i)
		}
		if len(cands) == 0 && wi.has(wReturn) {
			if act := a.setTo(i); act != nil {
				cands = []*actInfo{act} // "return pricing to the revision 3"
			}
		}
		if len(cands) == 0 && wi.has(wSet) {
			cands = a.countedChange() // "set replicas of cart to 2", "bump frontend to 6 pods"
		}
		if len(cands) == 0 {
			if vs, ok := a.participle(i); ok {
				if w := a.wantedDone(i, vs); w >= 0 {
					// "I'd like worker restarted in prod", "want x rolled back"
					cands, verb, kind = vs, w, "participle"
				}
			}
		}
		if len(cands) == 0 && a.isWord(i-1, "mind") {
			if hit, found := a.verbPhrase(i, formGerund); found {
				cands, verb = hit, i-1 // "would you mind rolling back x"
			} else if vs := wi.verbOf(formGerund); len(vs) > 0 {
				cands, verb = vs, i-1 // "mind restarting payments?"
			}
		}
		if len(cands) == 0 && t.s == arrow && a.hasTarget() && a.terse() {
			cands = a.countedChange() // "frontend staging -> 5 replicas", "orders prod => 3"
			kind = "arrow"
		}
		if len(cands) == 0 && (wi.has(wDesire) || t.s == "like" && a.isWord(i-1, "would")) && a.hasTarget() && a.desireGap(i) {
			if cs := a.countedBy(a.countAt); len(cs) > 0 && (a.relative || a.countBound()) {
				cands, kind = cs, "desire" // "we need twelve checkout pods", "run 4 replicas of x"
			}
		}
		if len(cands) == 0 {
			continue
		}
		imp := a.imperative(verb) && (verb == i || !a.whQuestion())
		switch kind {
		case "arrow":
			imp = true // terse() checked it is a bare command
		case "desire":
			imp = a.desireRequest(verb)
		case "participle":
			imp = imp && a.desireRequest(verb) // "do we need x restarted?"
		}
		if wi.has(wWeakOpen) && !imp {
			continue
		}
		for _, act := range cands {
			out = append(out, mutCue{act: act, i: verb, at: i, imperative: imp})
		}
	}
	if len(out) == 0 && a.countAt >= 0 && a.countBound() && a.hasTarget() && a.terse() {
		// "orders@staging 4 replicas": a target and a count, nothing else
		for _, act := range a.countedBy(a.countAt) {
			out = append(out, mutCue{act: act, i: a.countAt, at: a.countAt, imperative: true})
		}
	}
	for _, act := range a.r.cat.acts {
		if !act.mutating || hasAct(out, act) {
			continue
		}
		// "eval intent-routing prompt-v2 vs baseline": naming what only a
		// change takes, in its context, asks for it
		if at := a.exclusiveNamed(act); at >= 0 && !a.asking() {
			req := a.requiredNamed(act) || !a.question && !a.whQuestion() && a.imperative(at)
			out = append(out, mutCue{act: act, i: at, at: at, imperative: req})
		}
	}
	return out
}

func hasAct(ms []mutCue, act *actInfo) bool {
	for _, m := range ms {
		if m.act == act {
			return true
		}
	}
	return false
}

// verbPhrase returns the actions of the verb phrases of a form matching at
// i ("roll ... back", "kick off"), and whether one matched at all. Of
// several, the one ending first wins ("roll back the pods"); a phrase
// whose first word is a verb of many things needs its action's context.
func (a *analysis) verbPhrase(i int, form verbForm) ([]*actInfo, bool) {
	var out []*actInfo
	found, bestEnd := false, 0
	for _, h := range a.phrases {
		if h.start != i || h.ph.kind != pVerb || h.ph.form != form {
			continue
		}
		found = true
		if (h.ph.open || a.info[i].has(wOpen)) && !a.context(h.ph.act) {
			continue
		}
		switch {
		case out == nil || h.end < bestEnd:
			out, bestEnd = []*actInfo{h.ph.act}, h.end
		case h.end == bestEnd && !containsAct(out, h.ph.act):
			out = append(out, h.ph.act)
		}
	}
	return out, found
}

// verbPhraseAt reports a verb phrase of any action starting at i.
func (a *analysis) verbPhraseAt(i int) bool {
	for _, h := range a.phrases {
		if h.start == i && h.ph.kind == pVerb {
			return true
		}
	}
	return false
}

func containsAct(xs []*actInfo, x *actInfo) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// participle returns the actions whose verb's participle is at i:
// "restarted", "rolled ... back".
func (a *analysis) participle(i int) ([]*actInfo, bool) {
	if hit, found := a.verbPhrase(i, formParticiple); found {
		return hit, len(hit) > 0
	}
	vs := a.info[i].verbOf(formParticiple)
	return vs, len(vs) > 0
}

// changeGerund reports a change named by its gerund: "restarting cart".
func (a *analysis) changeGerund() bool {
	for i := range a.toks {
		if len(a.info[i].verbOf(formGerund)) > 0 {
			return true
		}
		for _, h := range a.phrases {
			if h.start == i && h.ph.kind == pVerb && h.ph.form == formGerund {
				return true
			}
		}
	}
	return false
}

// context reports whether the message is about the action: one of its cues
// of weight 2 or more, or a name, key or number for one of its parameters
// (not the namespace). A verb of many things ("run", "start") asks for an
// action only in its context.
func (a *analysis) context(act *actInfo) bool {
	for i, wi := range a.info {
		if wi != nil && !a.toks[i].used && wi.cueFor(act) >= 2 {
			return true
		}
	}
	for _, h := range a.phrases {
		if h.ph.kind == pCue && h.ph.act == act && h.ph.w >= 2 {
			return true
		}
	}
	for _, p := range act.params {
		if p.scope {
			continue
		}
		if _, ok := a.kvFor(p); ok {
			return true
		}
		switch {
		case p.accepts != 0 && len(a.namesOf(p.accepts)) > 0, p.is(action.Int) && a.boundByWord(p):
			return true
		case p.is(action.Enum) && a.enumValue(p).how != missing:
			return true // "a build of mobile"
		case p.selective && a.patternToken(p) >= 0, p.freeText && len(a.filterBy) > 0 && a.filterFor(p):
			return true
		}
	}
	return false
}

// boundByWord reports a number bound to p by one of its words ("run 42"),
// not by a bare "#".
func (a *analysis) boundByWord(p *paramInfo) bool {
	for _, b := range a.bound {
		if a.toks[b.i].hash && !b.after && len(a.intWords(b.i-1)) == 0 {
			continue
		}
		for _, q := range b.params {
			if q == p {
				return true
			}
		}
	}
	return false
}

// setTo: a verb of setting followed, in its clause, by "to" and a value of
// a change's number ("return x to revision 3", "set x to rev 12", "to
// r22") or one of its cues ("move x to the previous release").
func (a *analysis) setTo(i int) *actInfo {
	for j := i + 1; j < len(a.toks) && j <= i+6 && !a.toks[j].sep; j++ {
		if !a.isWord(j, "to") {
			continue
		}
		for _, h := range a.phrases {
			if h.ph.kind == pCue && h.ph.act.mutating && h.start > j && h.start <= j+3 && h.ph.w >= 2 {
				return h.ph.act
			}
		}
		for _, b := range a.bound {
			if b.i > j && b.i <= j+4 && !b.after {
				for _, p := range b.params {
					if p.act.mutating {
						return p.act
					}
				}
			}
		}
		return nil
	}
	return nil
}

// countedChange: the changes whose number the message sets ("set
// replicas of cart to 2", "bump frontend to 6 pods", "add 2 replicas"),
// or, for a bare "to N" with a target, the changes that need a number.
func (a *analysis) countedChange() []*actInfo {
	var out []*actInfo
	for _, act := range a.r.cat.acts {
		if act.mutating && len(act.intParams()) > 0 && a.countWords(act) {
			out = append(out, act)
		}
	}
	if len(out) == 0 && a.toNum.ok && a.hasTarget() {
		for _, act := range a.r.cat.acts {
			if act.mutating && act.requiredInt() != nil && a.targetsFit(act) {
				out = append(out, act)
			}
		}
	}
	return out
}

// targetsFit reports whether the names in the message fit the action's
// targets (a deployment for a change of deployments).
func (a *analysis) targetsFit(act *actInfo) bool {
	for _, p := range act.targets() {
		if p.accepts&(kDeployment|kService) != 0 {
			return true
		}
	}
	return false
}

// countedBy are the changes counted by the number at i ("4 replicas").
func (a *analysis) countedBy(i int) []*actInfo {
	var out []*actInfo
	for _, b := range a.bound {
		if b.i != i {
			continue
		}
		for _, p := range b.params {
			if p.act.mutating && !containsAct(out, p.act) {
				out = append(out, p.act)
			}
		}
	}
	if len(out) == 0 && a.relative {
		for _, act := range a.r.cat.acts {
			if act.mutating && a.countWords(act) {
				out = append(out, act)
			}
		}
	}
	return out
}

// countBound reports a count of a change's number: "4 replicas".
func (a *analysis) countBound() bool {
	for _, b := range a.bound {
		if b.after && hasMutatingInt(b.params) {
			return true
		}
	}
	return false
}

// exclusiveNamed returns the first token of the message that names a thing
// only the change takes (an evaluation variant), when the message is about
// the change (one of its cues); -1 otherwise.
func (a *analysis) exclusiveNamed(act *actInfo) int {
	exclusive := false
	for _, p := range act.params {
		if p.accepts == 0 || p.scope {
			continue
		}
		only := true
		for _, q := range a.r.cat.params {
			if q.act != act && q.accepts&p.accepts != 0 {
				only = false
			}
		}
		if !only {
			continue
		}
		if _, ok := a.kvFor(p); ok {
			exclusive = true
		}
		for _, h := range a.names {
			if h.e.kinds&p.accepts != 0 && !a.takenByOther(act, p, h) {
				exclusive = true
			}
		}
	}
	if !exclusive {
		return -1
	}
	for i, wi := range a.info {
		if wi != nil && !a.toks[i].used && wi.cueFor(act) >= 2 {
			return i
		}
		for _, h := range a.names {
			if h.i == i && a.namesTarget(act, h) {
				return i
			}
		}
	}
	return -1
}

// takenByOther: a name that another parameter of the action takes first
// (a name that is a suite and a variant is the suite).
func (a *analysis) takenByOther(act *actInfo, p *paramInfo, h nameHit) bool {
	for _, q := range act.params {
		if q == p {
			return false
		}
		if q.accepts&h.e.kinds != 0 {
			return true
		}
	}
	return false
}

// namesTarget reports a name filling one of the action's targets.
func (a *analysis) namesTarget(act *actInfo, h nameHit) bool {
	for _, p := range act.targets() {
		if p.accepts&h.e.kinds != 0 {
			return true
		}
	}
	return false
}

// requiredNamed reports every target of the action named.
func (a *analysis) requiredNamed(act *actInfo) bool {
	for _, p := range act.targets() {
		if a.targetValue(p, -1).how != found {
			return false
		}
	}
	return len(act.targets()) > 0
}

// asking: words that ask about a thing rather than for it.
func (a *analysis) asking() bool {
	if len(a.bound) > 0 {
		return true
	}
	for i := range a.toks {
		if askingWords[a.word(i)] {
			return true
		}
	}
	return false
}

// nameWordOf reports w as a word of the name of an action the verb at i
// asks for: "cdn" before "purge" in "cdn purge shop".
func (a *analysis) nameWordOf(i int, w string) bool {
	for _, act := range a.info[i].verbOf(formBase) {
		if act.hasNameWord(w) {
			return true
		}
	}
	for _, h := range a.phrases {
		if h.start == i && h.ph.kind == pVerb && h.ph.act.hasNameWord(w) {
			return true
		}
	}
	return false
}

// nounCompound: a change word followed by a noun it modifies ("restart
// count", "rollback plan") is no verb; a value or a name after it is its
// object ("invalidate docs cdn cache": the docs site).
func (a *analysis) nounCompound(i int) bool {
	if !nounFollowers[a.word(i+1)] || a.nameAt(i+1) {
		return false
	}
	wi := a.info[i+1]
	return wi == nil || len(wi.values) == 0
}
