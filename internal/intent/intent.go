// Package intent defines how a message becomes an action: the Router
// interface, the Intent it returns, and the Inventory of names a router
// resolves against. Implementations live in subpackages (rules, llm).
package intent

import (
	"context"
	"sort"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Intent is a router's reading of a message.
type Intent struct {
	Action     string        // a catalog action name, or action.None
	Params     action.Params // only what the user gave (and what the inventory resolved); never guessed
	Confidence float64       // 0..1
	Source     string        // "rules", "llm", ...
	// Note explains the reading for humans and the audit log, e.g.
	// `"chekout" resolved to deployment checkout`, or why nothing fitted.
	Note string
	// Variant is the prompt variant a model router used ("" otherwise);
	// recorded on the audit events of the request.
	Variant string
	// Usage is what a model router spent on this reading (nil when no
	// model was involved), for accounting and evaluation reports.
	Usage *llmcost.Usage
	// OutOfScope is set, with action.None, by a router sure that the
	// message asks for nothing any action does: a greeting, thanks,
	// chit-chat, noise, a change no action makes. The hybrid router does
	// not ask a model about it.
	OutOfScope bool
	// Proposal is what a model answered, as it answered it (nil when no
	// model was asked), for the audit log: accepted, it became this intent; refused, the intent is
	// action.None and Note says why.
	Proposal *Proposal
	// Notice is said to the asker beside the answer, when they should know
	// how their message was read: e.g. that the language model was
	// unavailable and the offline rules read it.
	Notice string
}

// Proposal is a model's answer before Parley checked it. Everything in
// it is the model's, redacted and clipped: untrusted.
type Proposal struct {
	Tool      string // the tool it called, as it named it; "" when it called none (see Text)
	Arguments string // the arguments it sent with it, as sent
	// Text is what it wrote in words. It is never shown as Parley's own
	// words: only quoted, marked as the model's suggestion.
	Text     string
	Accepted bool // it passed validation and became the intent (none included)
}

// Query is everything a router may look at.
type Query struct {
	Text string // raw text as typed (platform markup included)
	// Catalog is the set of actions the router may choose from. The rules
	// router gets every registered action (so a refusal can name what was
	// asked); the LLM router gets only what the user may run.
	Catalog   []action.Spec
	Inventory Inventory // names that exist now
	// History holds the recent turns of the thread, oldest first, so that
	// a follow-up ("and in staging?") can be read; may be empty.
	History []Turn
	// Who asks and where, for per-user/per-channel model budgets and for
	// sticking a user to one prompt variant. Routers that do not need
	// them ignore them; all may be empty.
	RequestID string
	Subject   string // "platform:user"
	Channel   string // "platform:channel"
}

// Turn is an earlier request in the same thread and how it was read.
type Turn struct {
	Text   string
	Action string
	Params action.Params
}

// Router maps a query to an intent. It returns action.None when nothing
// fits; an error only for infrastructure failures (an LLM endpoint down).
type Router interface {
	Route(ctx context.Context, q Query) (Intent, error)
}

// Inventory is what exists: the names a router may resolve to. It has the
// shape of the "inventory" block of a routing dataset (evals/README.md).
type Inventory struct {
	Namespaces   []string            `yaml:"namespaces" json:"namespaces"`
	Deployments  map[string][]string `yaml:"deployments" json:"deployments"` // namespace -> deployments
	Services     []string            `yaml:"services" json:"services"`
	EvalSuites   []string            `yaml:"eval_suites" json:"eval_suites"`
	EvalVariants []string            `yaml:"eval_variants" json:"eval_variants"`
}

// InventorySource provides the live inventory (the cluster, the evals
// folder, configuration).
type InventorySource interface {
	Inventory(ctx context.Context) (Inventory, error)
}

// AllDeployments returns each deployment name once, in namespace order.
func (inv Inventory) AllDeployments() []string {
	seen := map[string]bool{}
	var out []string
	for _, ns := range inv.Namespaces {
		for _, d := range inv.Deployments[ns] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	extra := make([]string, 0, len(inv.Deployments))
	for ns := range inv.Deployments { // namespaces missing from Namespaces
		extra = append(extra, ns)
	}
	sort.Strings(extra)
	for _, ns := range extra {
		for _, d := range inv.Deployments[ns] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}
