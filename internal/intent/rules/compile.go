package rules

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// wordInfo is what the router knows about one word: its grammar role, and
// what it says about the catalog's actions.
type wordInfo struct {
	class  wordClass
	unit   time.Duration
	cues   []cueRef     // evidence for actions
	verbs  []verbRef    // a verb (or its participle or gerund) of actions
	values []valueRef   // an enum value, or a word for one, or for true/false
	words  []*paramInfo // introduces a value of these parameters
	// phrases starting with this word
	phrases []*phrase
}

type cueRef struct {
	act *actInfo
	w   float32
	// shared: the word is a cue of several read actions ("status" of a
	// deployment and of an evaluation)
	shared bool
}

type verbForm uint8

const (
	formBase       verbForm = iota
	formParticiple          // restarted, rolled (back)
	formGerund              // restarting, rolling (back)
)

type verbRef struct {
	act  *actInfo
	form verbForm
	// open: a verb of many things ("run", "take"), the action's only in
	// its context
	open bool
}

type valueRef struct {
	param *paramInfo
	value string // the enum value, or "true"/"false"
	weak  bool   // a synonym shared by several values
}

func (wi *wordInfo) has(c wordClass) bool { return wi != nil && wi.class&c != 0 }

// maxCue is the largest cue weight of the word.
func (wi *wordInfo) maxCue() float32 {
	var m float32
	if wi == nil {
		return 0
	}
	for _, c := range wi.cues {
		m = max(m, c.w)
	}
	return m
}

// cueFor is the word's cue weight for an action.
func (wi *wordInfo) cueFor(a *actInfo) float32 {
	if wi == nil {
		return 0
	}
	for _, c := range wi.cues {
		if c.act == a {
			return c.w
		}
	}
	return 0
}

func (wi *wordInfo) verbOf(form verbForm) []*actInfo {
	if wi == nil {
		return nil
	}
	var out []*actInfo
	for _, v := range wi.verbs {
		if v.form == form {
			out = append(out, v.act)
		}
	}
	return out
}

// openVerb reports whether the word is a verb of many things for act.
func (wi *wordInfo) openVerb(act *actInfo) bool {
	for _, v := range wi.verbs {
		if v.act == act && v.open {
			return true
		}
	}
	return false
}

type phraseKind uint8

const (
	pCue   phraseKind = iota // evidence for an action
	pVerb                    // asks for an action
	pValue                   // a value of a parameter
	pWord                    // introduces a value of a parameter
)

// phrase is a vocabulary entry of several words.
type phrase struct {
	kind  phraseKind
	elems action.Phrase
	act   *actInfo
	w     float32 // pCue
	param *paramInfo
	value string // pValue
	weak  bool   // pValue: shared by several values
	form  verbForm
	open  bool // pVerb: in the action's context only (a verb of its verb's group)
}

// ownVerb reports a verb of a derived vocabulary that is the action's own
// (from its name, summary or examples), not one of its group.
func ownVerb(a *actInfo, verb string) bool {
	w := strings.ToLower(strings.TrimSpace(verb))
	if a.hasNameWord(w) {
		return true
	}
	texts := []string{a.spec.Description}
	for _, ex := range a.spec.Examples {
		texts = append(texts, ex.Text)
	}
	for _, t := range texts {
		if containsWord(contentWords(t), w) {
			return true
		}
	}
	return false
}

// verbCue is the weight of a read action's verb as a cue.
const verbCue = 2.5

// compile builds the catalog and the lexicon from the specs.
func compile(specs []action.Spec) (*catalog, map[string]*wordInfo) {
	cat := &catalog{byName: map[string]*actInfo{}}
	lex := map[string]*wordInfo{}
	entry := func(w string) *wordInfo {
		wi := lex[w]
		if wi == nil {
			wi = &wordInfo{}
			lex[w] = wi
		}
		return wi
	}
	for w, c := range grammarWords() {
		entry(w).class |= c
	}
	for w, d := range units {
		entry(w).unit = d
	}
	for _, s := range specs {
		if s.Name == "" || s.Name == action.None || cat.byName[s.Name] != nil {
			continue
		}
		a := &actInfo{idx: len(cat.acts), name: s.Name, spec: s, mutating: s.Kind == action.Mutating, nameWords: splitName(s.Name)}
		for _, p := range s.Params {
			pi := compileParam(a, p)
			pi.flat = len(cat.params)
			a.params = append(a.params, pi)
			cat.params = append(cat.params, pi)
		}
		cat.acts = append(cat.acts, a)
		cat.byName[s.Name] = a
	}
	vocab := make([]action.Vocabulary, len(cat.acts))
	for i, a := range cat.acts {
		vocab[i] = a.spec.Vocabulary
		if len(vocab[i].Verbs) == 0 && len(vocab[i].Cues) == 0 {
			a.derived = true
		}
	}
	for i, a := range cat.acts {
		if a.derived {
			vocab[i] = derive(a, cat, vocab, lex)
		}
	}
	var phrases []*phrase
	addPhrase := func(ph *phrase) {
		phrases = append(phrases, ph)
		for _, w := range ph.elems[0].Words {
			entry(w).phrases = append(entry(w).phrases, ph)
		}
	}
	for i, a := range cat.acts {
		v := vocab[i]
		for _, verb := range v.Verbs {
			ph, err := action.ParsePhrase(verb)
			if err != nil {
				continue // Spec.Check refuses it; a hand-made spec may still hold it
			}
			if !a.mutating {
				// a read is asked for, not commanded: its verbs are strong cues
				if len(ph) == 1 {
					for _, w := range ph[0].Words {
						entry(w).cues = append(entry(w).cues, cueRef{act: a, w: verbCue})
					}
				} else {
					addPhrase(&phrase{kind: pCue, elems: ph, act: a, w: verbCue})
				}
				continue
			}
			for _, form := range []verbForm{formBase, formParticiple, formGerund} {
				fp := inflect(ph, form)
				if len(fp) == 0 {
					continue
				}
				if len(fp) == 1 && !fp[0].Optional {
					for _, w := range fp[0].Words {
						wi := entry(w)
						open := wi.has(wOpen) || a.derived && (wi.class&^(wDanger) != 0 || !ownVerb(a, w))
						wi.verbs = appendVerb(wi.verbs, verbRef{act: a, form: form, open: open})
					}
					continue
				}
				addPhrase(&phrase{kind: pVerb, elems: fp, act: a, form: form, open: a.derived && !ownVerb(a, verb)})
			}
		}
		for cue, w := range v.Cues {
			if strings.HasPrefix(cue, "<") {
				name := strings.TrimSuffix(strings.TrimPrefix(cue, "<"), ">")
				if p := a.param(name); p != nil {
					p.cue = float32(w)
				}
				for k, sc := range situationCue {
					if sc == cue {
						a.situations[k] = float32(w)
					}
				}
				continue
			}
			ph, err := action.ParsePhrase(cue)
			if err != nil {
				continue
			}
			if len(ph) == 1 {
				for _, word := range ph[0].Words {
					wi := entry(word)
					wi.cues = append(wi.cues, cueRef{act: a, w: float32(w)})
				}
				continue
			}
			addPhrase(&phrase{kind: pCue, elems: ph, act: a, w: float32(w)})
		}
		for _, p := range a.params {
			for _, w := range p.words {
				ph, err := action.ParsePhrase(w)
				if err != nil {
					continue
				}
				if len(ph) == 1 {
					for _, word := range ph[0].Words {
						entry(word).words = appendParam(entry(word).words, p)
					}
					continue
				}
				addPhrase(&phrase{kind: pWord, elems: ph, param: p})
			}
			for _, vr := range paramValues(p) {
				ph, err := action.ParsePhrase(vr.text)
				if err != nil {
					continue
				}
				if len(ph) == 1 {
					for _, word := range ph[0].Words {
						entry(word).values = append(entry(word).values, valueRef{param: p, value: vr.value, weak: vr.weak})
					}
					continue
				}
				addPhrase(&phrase{kind: pValue, elems: ph, param: p, value: vr.value, weak: vr.weak})
			}
		}
	}
	for _, wi := range lex {
		reads := 0
		for _, c := range wi.cues {
			if !c.act.mutating {
				reads++
			}
		}
		for i := range wi.cues {
			wi.cues[i].shared = reads > 1 && !wi.cues[i].act.mutating
		}
	}
	// longer phrases first, so "kick off" is tried before "kick ... pods"
	for _, wi := range lex {
		slices.SortStableFunc(wi.phrases, func(x, y *phrase) int { return len(y.elems) - len(x.elems) })
	}
	return cat, lex
}

func appendVerb(vs []verbRef, v verbRef) []verbRef {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

func appendParam(ps []*paramInfo, p *paramInfo) []*paramInfo {
	if slices.Contains(ps, p) {
		return ps
	}
	return append(ps, p)
}

type valueText struct {
	text, value string
	weak        bool
}

// paramValues are the words that name a value of an enum or boolean
// parameter: each value (with _ read as - or a space too) and its
// synonyms; a synonym listed under several values is weak.
func paramValues(p *paramInfo) []valueText {
	var out []valueText
	count := map[string]int{}
	for _, syns := range p.p.Synonyms {
		for _, s := range syns {
			count[strings.ToLower(s)]++
		}
	}
	add := func(text, value string) {
		text = strings.ToLower(strings.TrimSpace(text))
		if text == "" {
			return
		}
		for _, o := range out {
			if o.text == text && o.value == value {
				return
			}
		}
		out = append(out, valueText{text: text, value: value, weak: count[text] > 1})
	}
	switch p.p.Type {
	case action.Enum:
		for _, e := range p.p.Enum {
			add(e, e)
			if strings.Contains(e, "_") {
				add(strings.ReplaceAll(e, "_", "-"), e)
				add(strings.ReplaceAll(e, "_", " "), e)
			}
			for _, s := range p.p.Synonyms[e] {
				add(s, e)
			}
		}
	case action.Bool:
		for _, v := range []string{"true", "false"} {
			for _, s := range p.p.Synonyms[v] {
				add(s, v)
			}
		}
	}
	return out
}

// inflect turns a verb phrase into its participle or gerund form: the
// first word is inflected ("roll ... back" -> "rolled ... back").
func inflect(ph action.Phrase, form verbForm) action.Phrase {
	if form == formBase {
		return ph
	}
	out := slices.Clone(ph)
	first := out[0]
	words := make([]string, 0, len(first.Words))
	for _, w := range first.Words {
		if f := inflectWord(w, form); f != "" {
			words = append(words, f)
		}
	}
	first.Words = words
	out[0] = first
	if len(words) == 0 {
		return nil
	}
	return out
}

// inflectWord makes "restart" "restarted" or "restarting".
func inflectWord(w string, form verbForm) string {
	for _, r := range w {
		if r < 'a' || r > 'z' {
			return ""
		}
	}
	if len(w) < 2 {
		return ""
	}
	vowel := func(c byte) bool { return strings.IndexByte("aeiou", c) >= 0 }
	last := w[len(w)-1]
	cvc := len(w) <= 4 && len(w) >= 3 && !vowel(last) && vowel(w[len(w)-2]) && !vowel(w[len(w)-3]) && strings.IndexByte("wxy", last) < 0
	switch form {
	case formParticiple:
		switch {
		case w == "undo":
			return "undone"
		case last == 'e':
			return w + "d"
		case last == 'y' && !vowel(w[len(w)-2]):
			return w[:len(w)-1] + "ied"
		case cvc:
			return w + string(last) + "ed"
		}
		return w + "ed"
	case formGerund:
		switch {
		case strings.HasSuffix(w, "ie"):
			return w[:len(w)-2] + "ying"
		case last == 'e' && !strings.HasSuffix(w, "ee") && len(w) > 2:
			return w[:len(w)-1] + "ing"
		case cvc:
			return w + string(last) + "ing"
		}
		return w + "ing"
	}
	return ""
}

// clampWeight keeps a derived weight in a sane range.
func clampWeight(w float64) float64 {
	return math.Max(0.3, math.Min(3, w))
}
