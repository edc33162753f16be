package rules

import (
	"slices"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// The catalog compiled for routing: every action's verbs, cues and typed
// parameter slots, from its spec (declared, or derived from its examples
// when the spec declares no vocabulary). The router reads only this; it
// names no action.

// actInfo is one action as the router sees it.
type actInfo struct {
	idx      int
	name     string
	spec     action.Spec
	mutating bool
	params   []*paramInfo
	// situation cues: capability, wellness, symptom, named
	situations [nSituations]float32
	// nameWords are the parts of the action's name ("cdn", "purge"): they
	// may stand before its verb ("cdn purge shop").
	nameWords []string
	derived   bool // its vocabulary was derived from its examples
}

type situation uint8

const (
	sCapability situation = iota
	sWellness
	sSymptom
	sNamed
	nSituations
)

var situationCue = [nSituations]string{action.CueCapability, action.CueWellness, action.CueSymptom, action.CueNamed}

// paramInfo is one parameter of an action.
type paramInfo struct {
	act  *actInfo
	p    action.Param
	flat int // index in catalog.params
	// cue is the weight of "<name>" in the action's cues: how much a value
	// for the parameter points at the action.
	cue float32
	// accepts are the inventory kinds whose names fill it.
	accepts kinds
	// target: a required value that says what a change acts on (not its
	// scope, the namespace, and not a number or a duration).
	target bool
	scope  bool // a namespace
	// freeText: a string with no inventory, enum or pattern.
	freeText bool
	// selective: its pattern refuses ordinary words, so a word it accepts
	// is evidence ("/img" for a path).
	selective bool
	words     []string // lower case
}

func (p *paramInfo) name() string { return p.p.Name }

func (p *paramInfo) is(t action.ParamType) bool { return p.p.Type == t }

// catalog is the compiled action list.
type catalog struct {
	acts   []*actInfo
	params []*paramInfo
	byName map[string]*actInfo
}

func (c *catalog) act(name string) *actInfo { return c.byName[name] }

// kindsFor are the inventory kinds a parameter of a source accepts: a
// deployment is usually also the service of the same name, so each takes
// the other.
func kindsFor(src action.Source) kinds {
	switch src {
	case action.Deployments:
		return kDeployment | kService
	case action.Services:
		return kService | kDeployment
	case action.Namespaces:
		return kNamespace
	case action.EvalSuites:
		return kSuite
	case action.EvalVariants:
		return kVariant
	}
	return 0
}

// compileParam fills what the router needs of a parameter.
func compileParam(a *actInfo, p action.Param) *paramInfo {
	pi := &paramInfo{act: a, p: p, accepts: kindsFor(p.Source)}
	pi.scope = p.Source == action.Namespaces
	switch p.Type {
	case action.String:
		pi.freeText = p.Source == action.NoSource && p.Pattern == nil && !p.Code
		if p.Pattern != nil {
			pi.selective = true
			for _, w := range []string{"the", "database", "prod", "it", "everything", "all"} {
				if p.Pattern.MatchString(w) {
					pi.selective = false
				}
			}
		}
		pi.target = p.Required && !pi.scope && !p.Code
	case action.Enum:
		pi.target = p.Required
	}
	for _, w := range p.Words {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" {
			continue
		}
		pi.words = append(pi.words, w)
	}
	return pi
}

// splitName are the words of an action or parameter name.
func splitName(name string) []string {
	return strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == '.' || r == '_' || r == '-' || r == '/' || r == ' '
	})
}

// param returns the action's parameter of the name, or nil.
func (a *actInfo) param(name string) *paramInfo {
	for _, p := range a.params {
		if p.name() == name {
			return p
		}
	}
	return nil
}

// targets are the parameters that say what a change acts on.
func (a *actInfo) targets() []*paramInfo {
	var out []*paramInfo
	for _, p := range a.params {
		if p.target {
			out = append(out, p)
		}
	}
	return out
}

// objects are the parameters that may name what the action acts on:
// targets, and optional parameters of the same shape (an alert name, a
// service) when it has no required one.
func (a *actInfo) objects() []*paramInfo {
	var out []*paramInfo
	for _, p := range a.params {
		if p.scope || p.p.Code {
			continue
		}
		switch p.p.Type {
		case action.String, action.Enum:
			out = append(out, p)
		}
	}
	return out
}

// requiredInt is the action's one required whole-number parameter (a
// replica count), or nil.
func (a *actInfo) requiredInt() *paramInfo {
	var out *paramInfo
	for _, p := range a.params {
		if p.is(action.Int) && p.p.Required {
			if out != nil {
				return nil
			}
			out = p
		}
	}
	return out
}

func (a *actInfo) intParams() []*paramInfo {
	var out []*paramInfo
	for _, p := range a.params {
		if p.is(action.Int) {
			out = append(out, p)
		}
	}
	return out
}

func (a *actInfo) hasNameWord(w string) bool { return slices.Contains(a.nameWords, w) }

// capabilityExample is the first example of the action that answers what
// the bot can do ("help"), or "".
func (c *catalog) capabilityExample() string {
	var best *actInfo
	for _, a := range c.acts {
		if a.situations[sCapability] > 0 && (best == nil || a.situations[sCapability] > best.situations[sCapability]) {
			best = a
		}
	}
	if best == nil || len(best.spec.Examples) == 0 {
		return ""
	}
	return best.spec.Examples[0].Text
}
