package rules

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/parley-chatops/parley/internal/action"
)

// derive makes a vocabulary for an action that declares none (a
// user-defined action file has a name, a summary, typed parameters and
// examples): its verbs are the imperative first words of its examples and
// the verb of its name ("cdn.purge": purge), when it changes something;
// its cues are the distinctive words of its name, summary and examples,
// weighted by how few other actions use them; a value for one of its
// parameters points at it as much as the parameter is specific (an enum
// value more than a free-text one).
func derive(a *actInfo, cat *catalog, vocab []action.Vocabulary, lex map[string]*wordInfo) action.Vocabulary {
	v := action.Vocabulary{Cues: map[string]float64{}}
	known := func(w string) bool {
		wi := lex[w]
		return wi.has(wKnown|wGreet|wNeg|wRel|wDesire|wSet|wOpen|wRead) || preverb[w] || len(w) < 3
	}
	values := map[string]bool{} // parameter values in the examples: values, not cues
	for _, ex := range a.spec.Examples {
		for _, val := range ex.Params {
			for _, w := range contentWords(fmt.Sprint(val)) {
				values[w] = true
			}
		}
	}
	for _, p := range a.params {
		for _, e := range p.p.Enum {
			values[strings.ToLower(e)] = true
		}
	}
	verbs := map[string]bool{}
	if a.mutating {
		if n := len(a.nameWords); n > 1 {
			if w := a.nameWords[n-1]; !lex[w].has(wKnown) || lex[w].has(wSet|wReturn|wDesire|wOpen) {
				verbs[w] = true // "cdn.purge": purge; "build.trigger": trigger
			}
		}
		// the imperative first words of the examples and of the summary
		// ("Purge the CDN cache...", "Turn a feature flag on or off")
		texts := []string{a.spec.Description}
		for _, ex := range a.spec.Examples {
			texts = append(texts, ex.Text)
		}
		for _, text := range texts {
			for _, w := range contentWords(text) {
				if preverb[w] && !lex[w].has(wOpen) || lex[w].has(wGreet) {
					continue // "please", "can you"
				}
				generic := lex[w].has(wSet | wReturn | wDesire | wOpen) // "take a backup": a verb of many things
				if !values[w] && len(w) > 2 && (!lex[w].has(wKnown) || generic) {
					verbs[w] = true
				}
				break
			}
		}
		for w := range verbs {
			v.Verbs = append(v.Verbs, w)
			for _, s := range synonymsOf(w) {
				if !verbs[s] {
					v.Verbs = append(v.Verbs, s) // in its context only: see compile
				}
			}
		}
	}
	// how many actions use each word: a word of many is a weak cue
	uses := func(w string) int {
		n := 1
		for i, o := range cat.acts {
			if o == a {
				continue
			}
			if vocabHas(vocab[i], w) || (o.derived && o.hasNameWord(w)) {
				n++
			}
		}
		return n
	}
	addCue := func(w string, base float64) {
		if known(w) || values[w] || verbs[w] || lex[w].has(wDanger) {
			return
		}
		weight := clampWeight(base / float64(uses(w)))
		// the word and its forms: "spend", "spends", "spending"
		for _, f := range []string{w, w + "s", inflectWord(w, formGerund), inflectWord(w, formParticiple)} {
			if f == "" || f != w && (len(w) < 4 || known(f) || values[f] || verbs[f]) {
				continue
			}
			if weight > v.Cues[f] {
				v.Cues[f] = weight
			}
		}
	}
	for _, w := range a.nameWords {
		addCue(w, 3)
		if strings.HasSuffix(w, "s") && len(w) > 3 { // "flags": "flag"
			addCue(strings.TrimSuffix(w, "s"), 3)
		} else {
			addCue(w+"s", 3)
		}
	}
	for _, w := range contentWords(a.spec.Description) {
		addCue(w, 2)
	}
	for _, ex := range a.spec.Examples {
		for _, w := range contentWords(ex.Text) {
			addCue(w, 2)
		}
	}
	for _, p := range a.params {
		switch {
		case p.is(action.Enum):
			v.Cues["<"+p.name()+">"] = 2.5
		case p.p.Source != action.NoSource:
			v.Cues["<"+p.name()+">"] = 0.3
		case p.selective, p.is(action.Bool):
			v.Cues["<"+p.name()+">"] = 1.5
		case p.is(action.Duration):
			v.Cues["<"+p.name()+">"] = 0.3
		default:
			v.Cues["<"+p.name()+">"] = 1
		}
		// a parameter is introduced by its name: "site shop", "queue emails"
		for _, w := range append([]string{strings.ToLower(p.name())}, splitName(p.name())...) {
			if (w == strings.ToLower(p.name()) || !known(w)) && !containsWord(p.words, w) {
				p.words = append(p.words, w)
			}
		}
		if p.is(action.Bool) {
			deriveBool(a, p, lex)
		}
	}
	return v
}

// deriveBool reads words for true and false from the examples: a word
// used only in examples where the value is true ("enable") is a word for
// true.
func deriveBool(a *actInfo, p *paramInfo, lex map[string]*wordInfo) {
	seen := map[string][2]bool{}
	other := map[string]bool{}
	for _, ex := range a.spec.Examples {
		for _, v := range ex.Params {
			for _, w := range contentWords(fmt.Sprint(v)) {
				other[w] = true
			}
		}
	}
	for _, ex := range a.spec.Examples {
		b, ok := ex.Params[p.name()].(bool)
		if !ok {
			continue
		}
		for _, w := range contentWords(ex.Text) {
			if other[w] || preverb[w] || len(w) < 3 || containsWord(a.nameWords, w) || containsWord(p.words, w) || lex[w].has(wKnown) {
				continue
			}
			s := seen[w]
			if b {
				s[1] = true
			} else {
				s[0] = true
			}
			seen[w] = s
		}
	}
	syns := map[string][]string{} // a copy: the spec's own map is not changed
	for k, v := range p.p.Synonyms {
		syns[k] = append([]string(nil), v...)
	}
	p.p.Synonyms = syns
	for w, s := range seen {
		value := "true"
		switch {
		case s[1] && !s[0]:
		case s[0] && !s[1]:
			value = "false"
		default:
			continue
		}
		p.p.Synonyms[value] = append(p.p.Synonyms[value], w)
		p.p.Synonyms[value] = append(p.p.Synonyms[value], synonymsOf(w)...)
	}
}

func vocabHas(v action.Vocabulary, w string) bool {
	if _, ok := v.Cues[w]; ok {
		return true
	}
	for _, verb := range v.Verbs {
		if verb == w {
			return true
		}
	}
	return false
}

func containsWord(ws []string, w string) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// contentWords are the lower-case words of a text, in order.
func contentWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')
	})
}
