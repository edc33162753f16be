// Package rules is Parley's offline intent router: it turns a chat message
// into a catalog action and typed parameters without any model.
//
// A message is cleaned of platform markup (Clean, Normalize), tokenised,
// and read in independent passes that do not depend on word order: typed
// slots (kubectl flags, key:value pairs, durations, numbers, quoted
// filters, raw PromQL/LogQL) are extracted; words are resolved against the
// inventory with typo tolerance (restricted Damerau-Levenshtein, budget by
// length, ordinary words never become names); every remaining word adds
// evidence for actions from a small lexicon (also typo tolerant). Mutating
// actions need an imperative verb, exactly one target and no negation,
// question or second command; otherwise the best-supported read action
// wins, or none.
//
// A change may be asked without its verb: a wanted replica count ("we
// need 12 checkout pods", "run 4 replicas of x") is a scale, "put x back to
// rev 3" a rollback, "x needs a restart" or "mind restarting x?" a restart;
// the same words asked as a question ("do we need 4 replicas?"), stated as
// a fact, negated or taken back ("but let's not") change nothing.
//
// Terse forms are read too: "15min", "3hrs" and "15-min" are windows;
// slash commands set any parameter by key ("/prom metric:cpu window:1h");
// "frontend staging -> 5 replicas" and "x@prod 4 pods" are a scale when
// nothing else is said; "rb x rev 104", "rev back x" and "to r22" are
// rollbacks ("v1.4.2" is an image version, not a revision); "run #118"
// is an evaluation run. A symptom after a diagnosis request
// ("investigate mailer, emails aren't going out") describes the trouble:
// its negations and change words are not the request.
//
// Polite and non-native wrappers around a change are requests: "would you
// be so kind as to scale x to 7", "please make a restart of x", "I'd like x
// restarted", "return x to the revision 3" (a rollback); the same words
// negated, conditional or asked about a change's wisdom are not. Chat
// template and role markers ("<|system|>", "[INST]", "### system"), "new
// policy:" and requests to reveal a kubeconfig or token are injections and
// route to none. An evaluation run that names a variant but no suite is
// evaluation.run without suite: the pipeline asks for it before anything
// runs. Capability questions in odd grammar ("which things you can make
// for me?") are help; "is x ok?" and "are we good on x" are a diagnosis.
//
// Choices the dataset leaves open: "latency" alone means latency_p99;
// "how slow is X" is incident.diagnose; greetings and thanks are none while
// capability questions are help; how-to and what-is questions that name
// nothing in the inventory are none; pod counts are kubernetes.status;
// relative scaling ("add 2 replicas") is kubernetes.scale without replicas
// at low confidence, never a guessed number. A bare "<n>s" is a window only
// after "last", "over", "for" and the like, and "502s" is an error count.
package rules

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync/atomic"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Source is the Intent.Source of this router.
const Source = "rules"

// Router is the rules router. It is safe for concurrent use.
type Router struct {
	lex     map[string]*wordInfo
	targets []string // lexicon words a typo may be corrected to
	seed    maphash.Seed
	cache   atomic.Pointer[index] // index of the last inventory seen
}

var _ intent.Router = (*Router)(nil)

// New returns a rules router for the given action specs.
func New(specs []action.Spec) *Router {
	r := &Router{lex: buildLexicon(), seed: maphash.MakeSeed()}
	for w, wi := range r.lex {
		if len(w) < 4 || strings.ContainsAny(w, "0123456789_") {
			continue
		}
		if wi.mut != aNone || wi.danger || wi.metric != "" || wi.evalCtx || wi.evalRun || wi.filterVerb ||
			wi.weakScale || maxCue(wi) >= 2 {
			r.targets = append(r.targets, w)
		}
	}
	return r
}

func maxCue(wi *wordInfo) float32 {
	var m float32
	for _, c := range wi.cue {
		m = max(m, c)
	}
	return m
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
	a := r.analyse(q.Text, r.indexFor(q.Inventory))
	d := a.decide()
	return d.intent(q.Catalog), nil
}

// decision is the router's answer before it is fitted to the catalog.
type decision struct {
	act    act
	params action.Params
	conf   float64
	notes  []string
	top    float64 // evidence for a read action
}

func (d decision) intent(catalog []action.Spec) intent.Intent {
	name := actNames[d.act]
	out := intent.Intent{Action: name, Params: action.Params{}, Confidence: clamp01(d.conf), Source: Source}
	if d.act != aNone {
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
			out.Params[k] = v
		}
	}
	out.Note = strings.Join(d.notes, "; ")
	if out.Note == "" {
		if d.act == aNone {
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
