package action

import (
	"fmt"
	"math"
	"strings"
)

// Phrase is a parsed vocabulary entry (see Vocabulary): words to match in
// order, each with alternatives, some optional, with gaps between.
type Phrase []PhraseElem

// PhraseElem is one position of a Phrase.
type PhraseElem struct {
	Words    []string // alternatives, lower case; empty for a gap
	Optional bool     // "a?": may be absent
	Gap      bool     // "...": up to MaxGap words of the same clause
}

// MaxGap is how many words a "..." in a phrase may stand for.
const MaxGap = 4

// ParsePhrase parses a vocabulary entry: words separated by spaces, "a|b"
// or "(a|b)" for either word, "a?" for an optional word, "..." for a gap.
// A phrase starts and ends with a word that is not optional.
func ParsePhrase(text string) (Phrase, error) {
	var out Phrase
	for _, f := range strings.Fields(strings.ToLower(text)) {
		if f == "..." {
			if len(out) == 0 || out[len(out)-1].Gap {
				return nil, fmt.Errorf("phrase %q: a gap must follow a word", text)
			}
			out = append(out, PhraseElem{Gap: true})
			continue
		}
		e := PhraseElem{}
		if strings.HasSuffix(f, "?") && len(f) > 1 {
			e.Optional = true
			f = f[:len(f)-1]
		}
		if strings.HasPrefix(f, "(") && strings.HasSuffix(f, ")") {
			f = f[1 : len(f)-1]
		}
		for _, w := range strings.Split(f, "|") {
			if w == "" || strings.ContainsAny(w, "()") {
				return nil, fmt.Errorf("phrase %q: %q is not a word or a list of words", text, f)
			}
			e.Words = append(e.Words, w)
		}
		out = append(out, e)
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("empty phrase")
	case out[0].Optional || out[len(out)-1].Optional:
		return nil, fmt.Errorf("phrase %q: its first and last words may not be optional", text)
	case out[len(out)-1].Gap:
		return nil, fmt.Errorf("phrase %q: a gap must be followed by a word", text)
	}
	return out, nil
}

// checkVocabulary reports a malformed vocabulary, synonyms or words.
func (s Spec) checkVocabulary() error {
	for _, v := range s.Vocabulary.Verbs {
		if _, err := ParsePhrase(v); err != nil {
			return fmt.Errorf("action %s: verb: %v", s.Name, err)
		}
	}
	for cue, w := range s.Vocabulary.Cues {
		if math.IsNaN(w) || w <= 0 || w > 10 {
			return fmt.Errorf("action %s: cue %q: weight %v is not in (0, 10]", s.Name, cue, w)
		}
		if strings.HasPrefix(cue, "<") {
			name := strings.TrimSuffix(strings.TrimPrefix(cue, "<"), ">")
			if _, ok := s.Param(name); !ok && !isSituation(cue) {
				return fmt.Errorf("action %s: cue %q is neither a parameter nor a situation (%s)", s.Name, cue, strings.Join(Situations, ", "))
			}
			continue
		}
		if _, err := ParsePhrase(cue); err != nil {
			return fmt.Errorf("action %s: cue: %v", s.Name, err)
		}
	}
	for _, p := range s.Params {
		for _, w := range p.Words {
			if _, err := ParsePhrase(w); err != nil {
				return fmt.Errorf("action %s: parameter %q: word: %v", s.Name, p.Name, err)
			}
		}
		for value, syns := range p.Synonyms {
			switch p.Type {
			case Enum:
				found := false
				for _, e := range p.Enum {
					found = found || e == value
				}
				if !found {
					return fmt.Errorf("action %s: parameter %q: synonyms for %q, which is not one of its values", s.Name, p.Name, value)
				}
			case Bool:
				if value != "true" && value != "false" {
					return fmt.Errorf("action %s: parameter %q: synonyms of a boolean are for true or false, not %q", s.Name, p.Name, value)
				}
			default:
				return fmt.Errorf("action %s: parameter %q: synonyms apply to enum and boolean parameters", s.Name, p.Name)
			}
			for _, w := range syns {
				if _, err := ParsePhrase(w); err != nil {
					return fmt.Errorf("action %s: parameter %q: synonym: %v", s.Name, p.Name, err)
				}
			}
		}
		if p.Code && p.Type != String {
			return fmt.Errorf("action %s: parameter %q: only a string parameter holds code", s.Name, p.Name)
		}
	}
	return nil
}

func isSituation(cue string) bool {
	for _, s := range Situations {
		if s == cue {
			return true
		}
	}
	return false
}
