package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/policy"
)

// permitted returns the specs the sender may run in this channel.
func (p *Pipeline) permitted(msg chat.Message) []action.Spec {
	var out []action.Spec
	p.eachPermitted(msg, func(s *action.Spec) bool {
		out = append(out, *s)
		return true
	})
	return out
}

// eachPermitted calls fn with each spec the sender may run in this
// channel, in registration order, until fn returns false.
func (p *Pipeline) eachPermitted(msg chat.Message, fn func(*action.Spec) bool) {
	subject, channel := msg.Subject(), msg.ChannelRef()
	b, bound := p.cfg.Bindings[channel]
	for i := range p.catalog {
		s := &p.catalog[i]
		if s.Name == action.Help {
			continue
		}
		if bound && len(b.Actions) > 0 && !slices.Contains(b.Actions, s.Name) {
			continue
		}
		if p.deps.Policy.Permitted(subject, msg.Groups, channel, s.Name) && !fn(s) {
			return
		}
	}
}

// canDoLine is a short list of example requests the sender may make.
func (p *Pipeline) canDoLine(msg chat.Message) string {
	var b strings.Builder
	n, some := 0, false
	p.eachPermitted(msg, func(s *action.Spec) bool {
		some = true
		if len(s.Examples) == 0 {
			return true
		}
		if n == 0 {
			b.WriteString("You can ask, for example: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString("\"" + s.Examples[0].Text + "\"")
		n++
		return n < 5
	})
	if !some {
		return "You may not run anything here; ask an admin to add you to the policy."
	}
	if n == 0 { // permitted actions without examples
		b.WriteString("You can ask, for example: ")
	}
	b.WriteString(". Say \"help\" for everything you may do here.")
	return b.String()
}

func (p *Pipeline) replyNone(ctx context.Context, req *request, in intent.Intent) {
	text := "I did not understand that as something I can do, so nothing was run."
	if in.Note != "" {
		text = fmt.Sprintf("I did not take that as something to do (%s), so nothing was run.", in.Note)
	}
	if pr := in.Proposal; pr != nil && pr.Text != "" {
		text += "\n" + modelSuggestion(pr.Text)
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text + "\n" + p.canDoLine(req.msg), Visibility: chat.Private})
}

// modelSuggestion shows what a model wrote as what it is: its words,
// quoted, not Parley's. The router has already defanged them (links and
// commands inert, no markup).
func modelSuggestion(text string) string {
	return "The language model replied (its suggestion, not Parley's answer; links and commands in it are disabled):\n> " +
		strings.ReplaceAll(text, "\n", "\n> ")
}

func (p *Pipeline) replyDenied(ctx context.Context, req *request, spec action.Spec, d policy.Decision) {
	text := fmt.Sprintf("You (%s) may not run %s here: %s.", req.msg.Subject(), spec.Name, strings.TrimSuffix(d.Reason, "."))
	p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: text + "\n" + p.canDoLine(req.msg), Context: []string{"policy rule: " + d.Rule}, Visibility: chat.Private})
}

// askForMissing answers a request whose parameters did not validate: it
// asks for the missing ones, or says which value is not allowed and what
// is (an enum's values, a pattern, a range), before any policy decision.
func (p *Pipeline) askForMissing(ctx context.Context, req *request, spec action.Spec, params action.Params, err error, inv intent.Inventory) {
	var miss []string
	if errors.Is(err, action.ErrMissing) {
		miss = spec.Missing(params)
	}
	var text string
	// A value that is not allowed (params nil) is said as such, with what
	// is allowed; only a request that lacks a parameter is asked for it.
	if len(miss) > 0 && params != nil {
		var asks []string
		for _, m := range miss {
			ask := m
			if m == "namespace" && len(inv.Namespaces) > 0 {
				ask += " (" + strings.Join(inv.Namespaces, ", ") + ")"
			}
			if m == "suite" && len(inv.EvalSuites) > 0 {
				ask += " (" + strings.Join(inv.EvalSuites, ", ") + ")"
			}
			if m == "deployment" {
				if ds := inv.AllDeployments(); len(ds) > 0 && len(ds) <= 12 {
					ask += " (" + strings.Join(ds, ", ") + ")"
				}
			}
			asks = append(asks, ask)
		}
		text = fmt.Sprintf("To run %s I also need the %s. Nothing was run; say it again with that, for example: %q.",
			spec.Name, strings.Join(asks, " and the "), exampleOf(spec))
	} else {
		text = fmt.Sprintf("I cannot run that: %v. Nothing was run.", err)
	}
	if _, aerr := p.record(ctx, req, audit.Event{Type: audit.InputRejected, Action: spec.Name, Params: params, Error: err.Error()}); aerr != nil {
		text += auditNote(aerr)
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text, Visibility: chat.Private})
}

// Help is the help action: it lists only what the asking user may do in
// the channel. specs returns the registered actions.
type Help struct {
	Specs  func() []action.Spec
	Policy Policy
	// Bindings limit what a bound channel offers.
	Bindings map[string]Binding
}

// Spec implements action.Action.
func (h *Help) Spec() action.Spec { return helpSpec() }

// Run implements action.Action.
func (h *Help) Run(_ context.Context, req action.Request) (action.Result, error) {
	b, bound := h.Bindings[req.Channel]
	t := &chat.Table{Header: []string{"action", "what it does", "say for example"}}
	call := ""
	for _, s := range h.Specs() {
		if s.Name == action.Help || (bound && len(b.Actions) > 0 && !slices.Contains(b.Actions, s.Name)) {
			continue
		}
		if !h.Policy.Permitted(req.Subject, req.Groups, req.Channel, s.Name) {
			continue
		}
		what := s.Description
		if s.Kind == action.Mutating {
			what += " (asks for confirmation)"
		}
		ex := ""
		if len(s.Examples) > 0 {
			ex = s.Examples[0].Text
		}
		t.Rows = append(t.Rows, []string{s.Name, what, ex})
		if call == "" {
			call = s.ExampleCall()
		}
	}
	if len(t.Rows) == 0 {
		return action.Result{Text: fmt.Sprintf("You (%s) may not run anything in %s. Ask an admin to add you to the policy.", req.Subject, req.Channel)}, nil
	}
	text := fmt.Sprintf("Here is what you (%s) can do in %s:", req.Subject, req.Channel)
	if call != "" {
		text += fmt.Sprintf(" say it in your words, or call an action with its parameters as key:value (%s).", call)
	}
	return action.Result{Text: text, Table: t}, nil
}

// helpSpecs is the help action's spec, always offered to the router.
func (p *Pipeline) helpSpecs() []action.Spec {
	if s, ok := p.deps.Actions.Spec(action.Help); ok {
		return []action.Spec{s}
	}
	return nil
}
