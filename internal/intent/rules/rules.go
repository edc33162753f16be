// Package rules is Parley's offline intent router: it turns a chat message
// into an action of the catalog and typed parameters without any model.
//
// It knows no action by name. New compiles the catalog's specs: each
// action's Vocabulary (verbs, cues, phrases, the situations it answers),
// its typed parameters (enum values and their synonyms, the Words that
// introduce a value, patterns, inventory sources, code) and its examples.
// A spec that declares no vocabulary (a user-defined action) gets one
// derived from its name, summary and examples: its verbs are the
// imperative first words of its summary and examples, the verb of its name
// ("cdn.purge": purge) and the verbs that mean the same ("flush", "clear";
// those only in its context); its cues are its distinctive words, weighted
// by how few other actions use them; words for true and false of its
// booleans come from its examples. What stays here is the language: how a
// command, a question, a negation, a polite wrapper, a symptom, a count or
// a window is said, and what is never done.
//
// A message is cleaned of platform markup (Clean, Normalize), tokenised,
// and read in passes that do not depend on word order: key:value pairs and
// kubectl flags (any parameter by its name or word: "site:shop", "rev:3";
// "-n prod", "svc/x", "--since=1h" by kind), durations, quoted text,
// backticked code (to the parameter that takes code, LogQL before PromQL
// by pattern), inventory names (typo tolerant: restricted
// Damerau-Levenshtein, budget by length, ordinary words never become
// names), enum values and their synonyms, numbers bound to the parameter
// whose word stands next to them ("5 pods", "rev 3", "last 50 lines", "run
// #118", "r22"), and every remaining word as evidence for actions (also
// typo tolerant). A change needs an imperative verb of its action (or a
// value of its number set or wanted: "bump x to 6 pods", "we need 12
// checkout pods", "return x to the revision 3"), exactly one value for
// each required parameter that says what it acts on (a deployment; a
// site), and no negation, question, second command, retraction or
// injection; otherwise the best-supported read action wins, or none. A
// word on the danger list (delete, drop, purge, exec...) is allowed only
// as the verb an action declares when the message names that change's
// targets ("purge the shop cdn cache"); otherwise it routes to none ("purge
// the prod database"). A verb of change no action declares ("deploy",
// "silence") is an unsupported change. Explicit calls, "/parley ACTION
// key:value ..." or the same without "/parley", select exactly that
// action and those parameters (Explicit).
//
// A change may be asked without its verb: a wanted count is a change of
// that count, "put x back to rev 3" is the change whose number a revision
// is, "x needs a restart" or "mind restarting x?" use the change's verb as
// a noun or gerund, "I'd like x restarted" its participle; the same words
// asked as a question ("do we need 4 replicas?"), stated as a fact,
// negated or taken back ("but let's not") change nothing. A question about
// a change ("should I restart X?") shows the state of its target instead,
// through the read action that takes the same kind of target.
//
// Terse forms are read too: "15min", "3hrs" and "15-min" are windows;
// slash commands set any parameter by key ("/prom metric:cpu window:1h");
// "frontend staging -> 5 replicas" and "x@prod 4 pods" are a change of a
// count when nothing else is said; "cdn purge shop /img" names the action
// before its verb ("v1.4.2" is an image version, not a revision number). A
// symptom after a diagnosis request ("investigate mailer, emails aren't
// going out") describes the trouble: its negations and change words are
// not the request, and only the actions that answer symptoms read it.
//
// Polite and non-native wrappers around a change are requests: "would you
// be so kind as to scale x to 7", "please make a restart of x"; the same
// words negated, conditional or asked about a change's wisdom are not.
// Chat template and role markers ("<|system|>", "[INST]", "### system"),
// "new policy:", a hand-written tool call naming an action, and requests
// to reveal a kubeconfig or token are injections and route to none. A
// change that names what it acts on but one required name, which is
// another of its inventory names ("run evals for prompt-v8": a variant, no
// suite), routes at low confidence without it: the pipeline asks for it
// before anything runs. Capability questions in odd grammar ("which things
// you can make for me?") go to the action that answers CueCapability;
// "is x ok?" and "are we good on x" to the one that answers CueWellness.
//
// A message may lean on the thread (Query.History: the sender's earlier
// turns there, as the pipeline keeps them; see followup.go): a change
// asked with its verb but no target takes the thread's one target of the
// inventory ("scale it to 4", "roll that back"), a read that refers back
// ("show its pod logs", "and the pods?") takes the thread's thing, and a
// message that only continues the thread ("and in staging?", "same for
// payments") is the last read again with what it names instead. The
// thread never makes a change of a message that is not one, and a change
// is never repeated that way.
//
// Several clauses: a read asked as a command ("show me the billing pods,
// why do they keep restarting") is the request and a question beside it
// context; a clause after a diagnosis request that is itself a read
// command ("why did web crash? show the previous pod logs") is no
// symptom. A change that names no required target must name one of its
// objects, not only put an ordinary word where one goes ("mute
// notifications"), and one word names one object. Boolean flags ("-p",
// "--previous") are switches.
//
// Choices the datasets leave open, and how they are decided: an enum
// synonym shared by several values ("latency") means the first of them
// (latency_p99) only when no other is named; the first of several values
// named is taken for a read ("cpu and memory of cart"); a read needs a
// word of its own when its only evidence is a value that also fits an
// action whose subject the message names ("/cdn site:docs" is not an SLA
// report); cues of weight 1 or less count only beside a stronger cue of
// the same action ("done?" asks nothing of an evaluation); an action
// without parameters (help) loses to anything that names a thing or has
// evidence of 2; greetings and thanks are none; how-to and what-is
// questions that name nothing in the inventory are none; relative changes
// ("add 2 replicas") route without a number at low confidence, never a
// guessed one; a count bound by a singular word counts only when its
// plural is a word of the same parameter ("one revision" is no count). A
// bare "<n>s" is a window only after "last", "over", "for" and the like,
// "502s" is an error count, and a window longer than ten years is no
// window.
package rules

import (
	"context"
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Source is the Intent.Source of this router.
const Source = "rules"

// Router is the rules router. It is safe for concurrent use.
type Router struct {
	cat        *catalog
	lex        map[string]*wordInfo
	kvKeys     map[string]kvKey
	targets    []typoTarget // words a typo may be corrected to
	hashParams []*paramInfo // numbers written "#42" may be these
	seed       maphash.Seed
	cache      atomic.Pointer[index] // index of the last inventory seen
}

var _ intent.Router = (*Router)(nil)

// New returns a rules router over the given action specs: the built-ins
// and the user-defined ones. Each spec's vocabulary, examples and typed
// parameters are all it knows of the action; a spec without vocabulary
// gets one derived from its name, summary and examples. Specs that do not
// pass Spec.Check are routed as well as their content allows.
func New(specs []action.Spec) *Router {
	cat, lex := compile(specs)
	r := &Router{cat: cat, lex: lex, kvKeys: buildKeys(cat), seed: maphash.MakeSeed()}
	for w, wi := range lex {
		if len(w) < 4 || strings.ContainsAny(w, "0123456789_ /") {
			continue
		}
		if len(wi.verbOf(formBase)) > 0 || wi.has(wDanger|wSet|wOpen) || len(wi.values) > 0 || wi.maxCue() >= 2 || introducesFreeText(wi) {
			r.targets = append(r.targets, typoTarget{w: w, mask: letterMask(w)})
		}
	}
	// a stable order: ties between typo readings are refused, not raced
	sort.Slice(r.targets, func(i, j int) bool { return r.targets[i].w < r.targets[j].w })
	for _, p := range cat.params {
		if p.is(action.Int) && containsWord(p.words, "#") {
			r.hashParams = append(r.hashParams, p)
		}
	}
	return r
}

// typoTarget is a word a typo may stand for, with its letter mask.
type typoTarget struct {
	w    string
	mask uint64
}

func introducesFreeText(wi *wordInfo) bool {
	for _, p := range wi.words {
		if p.freeText {
			return true
		}
	}
	return false
}

// indexFor returns the prepared index of an inventory, reusing the last
// one when the inventory is unchanged.
func (r *Router) indexFor(inv intent.Inventory) *index {
	fp := fingerprint(r.seed, inv)
	if ix := r.cache.Load(); ix != nil && ix.fp == fp {
		return ix
	}
	ix := buildIndex(r.seed, fp, inv)
	r.cache.Store(ix)
	return ix
}

// Route reads a message. It returns an error only when ctx is done.
func (r *Router) Route(ctx context.Context, q intent.Query) (intent.Intent, error) {
	if err := ctx.Err(); err != nil {
		return intent.Intent{}, fmt.Errorf("rules route: %w", err)
	}
	if in, ok := Explicit(q.Text, q.Catalog); ok {
		return in, nil
	}
	a := r.analyse(q.Text, r.indexFor(q.Inventory))
	a.history = q.History
	d := a.decide()
	in := d.intent(q.Catalog)
	in.OutOfScope = d.act == nil && a.offTopic()
	return in, nil
}

// decision is the router's answer before it is fitted to the catalog.
type decision struct {
	act    *actInfo // nil: none
	params action.Params
	conf   float64
	notes  []string
	top    float64 // evidence for a read action
}

func (d decision) intent(catalog []action.Spec) intent.Intent {
	name := action.None
	if d.act != nil {
		name = d.act.name
	}
	out := intent.Intent{Action: name, Params: action.Params{}, Confidence: clamp01(d.conf), Source: Source}
	if d.act != nil {
		spec, ok := findSpec(catalog, name)
		if !ok {
			out.Action = action.None
			out.Confidence = 0.3
			out.Note = fmt.Sprintf("read as %s, which is not available here", name)
			return out
		}
		for k, v := range d.params {
			p, ok := spec.Param(k)
			if !ok {
				continue
			}
			if n, isInt := v.(int); isInt && spec.Kind == action.Read && (p.Min != nil && n < *p.Min || p.Max != nil && n > *p.Max) {
				// an impossible number in a read is noise; a change keeps it
				// so validation can tell the user what is allowed
				d.notes = append(d.notes, fmt.Sprintf("%s %d ignored", k, n))
				continue
			}
			if s, isStr := v.(string); isStr && p.Type == action.Duration && spec.Kind == action.Read {
				// likewise a window no query may have ("700w": over ten
				// years): the read runs with its default window, and says so
				if _, err := action.ParseDuration(s); err != nil {
					d.notes = append(d.notes, fmt.Sprintf("%s %s ignored: %v", k, s, err))
					continue
				}
			}
			if spec.Kind == action.Read && (p.Pattern != nil || p.Type == action.Enum || p.Type == action.Bool) {
				// any other value a read's parameter refuses ("-c A": no
				// container is named so) is dropped, and said
				p.Required = false
				one := action.Spec{Name: spec.Name, Kind: action.Read, Params: []action.Param{p}}
				if _, err := one.Validate(map[string]any{k: v}); err != nil {
					d.notes = append(d.notes, fmt.Sprintf("%s %v ignored: %v", k, v, err))
					continue
				}
			}
			out.Params[k] = v
		}
	}
	out.Note = strings.Join(d.notes, "; ")
	if out.Note == "" {
		if d.act == nil {
			out.Note = "no action fits"
		} else {
			out.Note = "read as " + name
		}
	}
	return out
}

func findSpec(catalog []action.Spec, name string) (action.Spec, bool) {
	for _, s := range catalog {
		if s.Name == name {
			return s, true
		}
	}
	return action.Spec{}, false
}

func clamp01(f float64) float64 {
	switch {
	case f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}
