package llm

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Shortlisting: every tool definition is paid for on every call, and a
// model picks better from three plausible tools than from twenty. The
// router offers the actions the request gives evidence for, read from
// what each spec says about itself: its vocabulary (cues with their
// weights, verbs), the words of its name, summary and examples, its enum
// values and their synonyms, and the inventory names its parameters take.
// The offline router's reading (Options.Evidence) and the action of the
// thread's last turn (a follow-up: "and in staging?") are always offered.
// Only actions of the query's catalog (what the user may run) are ever
// considered; a request with no evidence for any of them is offered all.

// Shortlist bounds.
const (
	maxShortlist = 5    // actions offered when the request points at some
	minShare     = 0.25 // an action scoring under this share of the best one is dropped
)

// Weights of the kinds of evidence (a cue carries its own weight).
const (
	weightVerb    = 2.0
	weightName    = 1.5 // a word of the action's name: "cdn", "purge", "oncall"
	weightValue   = 2.0 // an enum value or synonym: "p99", "critical"
	weightWord    = 1.0 // a word that introduces a parameter value
	weightSummary = 0.5 // a word of the summary or of an example
	weightNamed   = 0.5 // an inventory name of a kind one of its parameters takes
)

// stopwords carry no evidence for any action.
var stopwords = wordSet(`a an the and or but of to in on at for from by with without into onto over under
		is are was were be been being am do does did done has have had having it its it's this that these those there here
		i me my we us our you your he she they them their what which who whom whose when where why how
		can could would should will shall may might must not no yes please pls thanks thank
		all any some each every one two three more most less few many much very just only also too
		show me give get tell let lets let's see look find check list now right then than as so if about up down out
		last past since until after before again new old s t`)

func wordSet(list string) map[string]bool {
	m := map[string]bool{}
	for w := range strings.FieldsSeq(list) {
		m[w] = true
	}
	return m
}

// words splits text into lower-case words: letters, digits, '-' and '_'
// inside a word; a leading "--" (kubectl flags) is kept as a second form.
func words(text string) []string {
	f := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_'
	})
	out := f[:0]
	for _, w := range f {
		if t := strings.Trim(w, "-_"); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// stem folds the common English endings, so that "restarts",
// "restarting" and "restarted" meet "restart".
func stem(w string) string {
	if len(w) <= 4 {
		return w
	}
	for _, suf := range []string{"ing", "ed", "es", "s"} {
		if s, ok := strings.CutSuffix(w, suf); ok && len(s) >= 3 {
			return s
		}
	}
	return w
}

// bag is the weighted evidence words of one action: each stem maps to
// the strongest weight it has for the action; phrases are several stems
// that must all be present.
type bag struct {
	stems   map[string]float64
	phrases []weightedPhrase
	sources []action.Source // inventory kinds its parameters take
}

type weightedPhrase struct {
	stems []string
	w     float64
}

func (b *bag) add(w string, weight float64) {
	if w == "" || stopwords[w] {
		return
	}
	s := stem(w)
	b.stems[s] = max(b.stems[s], weight)
}

// addText adds each word of a phrase: a single word at weight, several
// as a phrase at weight (and each of them, weaker, as itself).
func (b *bag) addText(text string, weight float64) {
	ws := words(strings.NewReplacer("|", " ", "(", " ", ")", " ", "?", " ", "...", " ").Replace(text))
	var content []string
	for _, w := range ws {
		if !stopwords[w] {
			content = append(content, stem(w))
		}
	}
	switch len(content) {
	case 0:
	case 1:
		b.add(content[0], weight)
	default:
		b.phrases = append(b.phrases, weightedPhrase{stems: content, w: weight})
		for _, s := range content {
			b.add(s, weight/float64(len(content)))
		}
	}
}

func newBag(s action.Spec) *bag {
	b := &bag{stems: map[string]float64{}}
	for part := range strings.FieldsFuncSeq(s.Name, func(r rune) bool { return r == '.' || r == '_' }) {
		b.add(part, weightName)
	}
	for _, w := range words(s.Description) {
		b.add(w, weightSummary)
	}
	for _, ex := range s.Examples {
		for _, w := range words(ex.Text) {
			b.add(w, weightSummary)
		}
	}
	for _, v := range s.Vocabulary.Verbs {
		b.addText(v, weightVerb)
	}
	for cue, w := range s.Vocabulary.Cues {
		if strings.HasPrefix(cue, "<") {
			continue // a situation or a parameter's value: read below
		}
		b.addText(cue, w)
	}
	for _, p := range s.Params {
		for _, v := range p.Enum {
			b.addText(v, weightValue)
		}
		for k, syns := range p.Synonyms {
			b.addText(k, weightValue)
			for _, syn := range syns {
				b.addText(syn, weightValue)
			}
		}
		for _, w := range p.Words {
			b.addText(w, weightWord)
		}
		if p.Source != action.NoSource && !slices.Contains(b.sources, p.Source) {
			b.sources = append(b.sources, p.Source)
		}
	}
	return b
}

// score is the evidence of the message (its stems, and the inventory
// kinds it names) for the action.
func (b *bag) score(msg map[string]bool, named []action.Source) float64 {
	total := 0.0
	for s := range msg {
		total += b.stems[s]
	}
	for _, ph := range b.phrases {
		all := true
		for _, s := range ph.stems {
			all = all && msg[s]
		}
		if all {
			total += ph.w / 2 // its words already counted the other half
		}
	}
	for _, src := range named {
		if slices.Contains(b.sources, src) {
			w := weightNamed
			if src == action.Namespaces {
				w /= 2 // nearly every Kubernetes action takes one
			}
			total += w
		}
	}
	return total
}

// namedKinds are the inventory kinds the message names.
func namedKinds(ws []string, inv intent.Inventory) []action.Source {
	var out []action.Source
	has := func(list []string) bool {
		return slices.ContainsFunc(ws, func(w string) bool {
			return slices.ContainsFunc(list, func(n string) bool { return strings.EqualFold(n, w) })
		})
	}
	for src, list := range map[action.Source][]string{
		action.Namespaces: inv.Namespaces, action.Deployments: inv.AllDeployments(), action.Services: inv.Services,
		action.EvalSuites: inv.EvalSuites, action.EvalVariants: inv.EvalVariants,
	} {
		if has(list) {
			out = append(out, src)
		}
	}
	return out
}

// shortlist returns the actions of offered to show the model for q, in
// the catalog's order. hint is the offline router's reading (action.None
// or "" when it has none).
func shortlist(q intent.Query, offered []action.Spec, hint string) []action.Spec {
	ws := words(q.Text)
	msg := map[string]bool{}
	for _, w := range ws {
		if !stopwords[w] {
			msg[stem(w)] = true
		}
	}
	named := namedKinds(ws, q.Inventory)
	type scored struct {
		i int
		s float64
	}
	var ranked []scored
	for i, s := range offered {
		if sc := newBag(s).score(msg, named); sc > 0 {
			ranked = append(ranked, scored{i, sc})
		}
	}
	keep := map[int]bool{}
	must := func(name string) {
		if i := slices.IndexFunc(offered, func(s action.Spec) bool { return s.Name == name }); i >= 0 {
			keep[i] = true
		}
	}
	must(hint)
	if n := len(q.History); n > 0 {
		must(q.History[n-1].Action)
	}
	if len(ranked) == 0 {
		return offered // nothing in the words: the model reads it against everything
	}
	slices.SortStableFunc(ranked, func(a, b scored) int { return cmp.Compare(b.s, a.s) })
	for _, r := range ranked {
		if len(keep) >= maxShortlist || r.s < minShare*ranked[0].s {
			break
		}
		keep[r.i] = true
	}
	out := make([]action.Spec, 0, len(keep))
	for i, s := range offered {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}
