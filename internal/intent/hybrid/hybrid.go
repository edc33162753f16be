// Package hybrid combines the offline rules router with a model router:
// the rules answer when they are sure, the model is asked only when they
// are not, and when the model cannot answer (down, too slow, over budget)
// the rules answer stands, and the asker is told. The model is not asked
// about a message the rules router is sure asks for nothing any action
// does (Intent.OutOfScope: greetings, thanks, chit-chat, noise): offered
// the same actions it could only answer none. The model is an aid to
// reading, never a dependency: Parley keeps working without it.
package hybrid

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/llmcost"
)

// Intent.Source values set by the hybrid router.
const (
	SourceRules    = "rules"
	SourceLLM      = "llm"
	SourceFallback = "rules-fallback"
)

// DefaultThreshold is the rules confidence at or above which the model is
// not asked.
const DefaultThreshold = 0.75

// Options configure a Router.
type Options struct {
	// Threshold: a rules reading at least this confident is final;
	// default DefaultThreshold. Must be in (0, 1].
	Threshold float64
	Logger    *slog.Logger // nil = discard
}

// Router is the hybrid router.
type Router struct {
	rules, model intent.Router
	threshold    float64
	log          *slog.Logger
}

var _ intent.Router = (*Router)(nil)

// New returns a hybrid of a rules router and a model router.
func New(rules, model intent.Router, o Options) (*Router, error) {
	if rules == nil || model == nil {
		return nil, fmt.Errorf("hybrid router: both a rules and a model router are needed")
	}
	o.Threshold = cmp.Or(o.Threshold, DefaultThreshold)
	if o.Threshold <= 0 || o.Threshold > 1 {
		return nil, fmt.Errorf("hybrid router: threshold %v is outside (0, 1]", o.Threshold)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{rules: rules, model: model, threshold: o.Threshold, log: o.Logger.With("router", "hybrid")}, nil
}

// Route implements intent.Router. It fails only when the rules router
// fails (the context is done).
func (r *Router) Route(ctx context.Context, q intent.Query) (intent.Intent, error) {
	ri, err := r.rules.Route(ctx, q)
	if err != nil {
		return intent.Intent{}, fmt.Errorf("hybrid route: %w", err)
	}
	if ri.Confidence >= r.threshold || ri.OutOfScope {
		ri.Source = SourceRules
		return ri, nil
	}
	mi, err := r.model.Route(ctx, q)
	if err == nil {
		mi.Source = SourceLLM
		return mi, nil
	}
	if ctx.Err() != nil { // the caller gave up: no answer is wanted
		return intent.Intent{}, fmt.Errorf("hybrid route: %w", ctx.Err())
	}
	r.log.Warn("model router failed; using the rules reading", "err", err)
	in := fallback(ri, err)
	if ce := (*llmcost.CallError)(nil); errors.As(err, &ce) { // what the failed call spent, for the audit log
		u := ce.Usage
		in.Usage = &u
	}
	return in, nil
}

// fallback is the rules reading, noted with why the model was not used.
// When the rules found nothing, the note (which the asker sees) asks them
// to rephrase; when they found an action, the asker is told beside its
// answer that the offline reading was used, and why (Intent.Notice).
func fallback(ri intent.Intent, err error) intent.Intent {
	ri.Source = SourceFallback
	why := "the language model is unavailable"
	var be *llmcost.BudgetError
	switch {
	case errors.As(err, &be) && be.Scope == llmcost.ScopeUser:
		why = "your language model budget for today is used up"
	case errors.As(err, &be):
		why = "this channel's language model budget for today is used up"
	case errors.Is(err, context.DeadlineExceeded):
		why = "the language model did not answer in time"
	}
	if ri.Action == action.None || ri.Action == "" {
		why += "; using the rules router. I am not sure what you mean: please say it plainly, e.g. \"status of checkout in prod\" or \"help\""
	} else {
		ri.Notice = fmt.Sprintf("Note: %s, so this was read without it, by the offline rules (as %s). If that is not what you meant, say it more plainly.", why, ri.Action)
		why += "; using the rules router"
	}
	if ri.Note != "" {
		ri.Note = why + "; " + ri.Note
	} else {
		ri.Note = why
	}
	return ri
}
