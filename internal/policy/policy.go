// Package policy loads Parley's policy files and decides, for each request,
// whether a subject may run an action in a channel with given parameters:
// allow, deny with a reason, or confirm by named approvers within a TTL.
//
// A policy is an ordered list of rules; the first rule whose subjects,
// channels, actions and optional CEL condition (`when`) all match decides,
// and the file's default decides when none does. Files are checked strictly
// when loaded (unknown keys, unknown groups, malformed ids, unknown actions,
// conditions that do not compile are errors with file:line), so a policy
// that loads behaves as written.
//
// One invariant holds whatever the file says: a mutating action is never
// allowed outright. An allow for a mutating action becomes a confirmation by
// the requester; a policy can demand more than that, never less.
//
// A *Policy is immutable once loaded and safe for concurrent use.
package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/interpreter"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Effect is what a rule or a decision says about a request.
type Effect string

// Effects.
const (
	Allow   Effect = "allow"
	Deny    Effect = "deny"
	Confirm Effect = "confirm"
)

// Approver kinds besides ids and groups.
const (
	// Requester, as an approver, is the person who asked.
	Requester = "requester"
	// groupPrefix introduces a policy group: group:sre.
	groupPrefix = "group"
)

// TTL bounds of a confirmation.
const (
	DefaultTTL = 10 * time.Minute
	MaxTTL     = 24 * time.Hour
)

// DefaultRule is Decision.Rule when no rule matched.
const DefaultRule = "default"

// Input is one request as the policy sees it.
type Input struct {
	Subject string   // "platform:user" of the requester
	Groups  []string // platform-provided groups of the requester (slack-group:S…, discord-role:…)
	Channel string   // "platform:channel"
	Action  string   // catalog action name
	// Kind of the action. When empty it is taken from the catalog; an
	// action the catalog does not know counts as mutating.
	Kind   action.Kind
	Params action.Params
}

// Decision is the policy's answer for one Input.
type Decision struct {
	Effect Effect
	Rule   string // name of the deciding rule, or DefaultRule
	Reason string // human text for the chat and the audit log
	// Approvers who may confirm (Effect Confirm only): Requester,
	// "group:NAME", a platform group, or a "platform:id".
	Approvers        []string
	DistinctApprover bool          // the approver must not be the requester
	TTL              time.Duration // how long the confirmation stays valid (Effect Confirm only)
	// Warnings are conditions that could not be evaluated (a parameter
	// absent, a type mismatch) and so did not match. Worth logging: a
	// warning usually means a condition should use has(params.NAME).
	Warnings []string
}

// Policy is a loaded policy file.
type Policy struct {
	file   string
	groups []*group
	rules  []*rule
	def    Effect
	kinds  map[string]action.Kind // action name -> kind, from the specs it was loaded with
	// platforms are the chat platforms it was loaded with: which ids and
	// platform groups exist.
	platforms chat.Platforms
}

type group struct {
	name    string
	line    int
	members map[string]bool
}

// rule is one entry of rules. Nil subjects, channels or actions match any.
type rule struct {
	name      string
	line      int
	subjects  []subjectPattern
	channels  []channelPattern
	actions   []actionPattern
	when      *condition
	effect    Effect
	approvers []string
	distinct  bool
	ttl       time.Duration
	reason    string
}

// File is the name the policy was loaded from.
func (p *Policy) File() string { return p.file }

// Default is the effect when no rule matches (Allow or Deny).
func (p *Policy) Default() Effect { return p.def }

// Decide returns the decision for in.
func (p *Policy) Decide(in Input) Decision {
	return p.evaluate(in, nil)
}

// kindOf returns the kind of the request's action; unknown risk is treated
// as mutating.
func (p *Policy) kindOf(in Input) action.Kind {
	if in.Kind == action.Read || in.Kind == action.Mutating {
		return in.Kind
	}
	if k, ok := p.kinds[in.Action]; ok {
		return k
	}
	return action.Mutating
}

// evaluate walks the rules. With a non-nil ex it records every step.
func (p *Policy) evaluate(in Input, ex *Explanation) Decision {
	kind := p.kindOf(in)
	w := p.who(in.Subject, in.Groups)
	if ex != nil {
		ex.File, ex.Input, ex.Kind, ex.Groups = p.file, in, kind, append([]string(nil), w.groupList...)
		ex.Rules = make([]RuleTrace, 0, len(p.rules))
	}
	var (
		d        Decision
		decided  bool
		warnings []string
		vars     interpreter.Activation // built on first use
		varsErr  error
	)
	for i, r := range p.rules {
		var tr *RuleTrace
		if ex != nil {
			ex.Rules = append(ex.Rules, RuleTrace{Index: i + 1, Name: r.name, Line: r.line, Effect: r.effect})
			tr = &ex.Rules[len(ex.Rules)-1]
			tr.When = Check{Matched: true, Detail: "no condition"}
			if r.when != nil {
				tr.When = Check{Skipped: true, Detail: "not evaluated: " + r.when.src}
			}
		}
		if !r.matchStatic(w, in, tr) || decided { // decided: explaining the rules after the deciding one
			continue
		}
		if r.when != nil {
			if vars == nil && varsErr == nil {
				vars, varsErr = activation(in, kind, w)
			}
			ok, err := false, varsErr
			if err == nil {
				ok, err = r.when.eval(vars)
			}
			switch {
			case err != nil && r.effect == Deny:
				// Fail closed: a deny rule whose condition cannot be
				// evaluated (a parameter absent) still denies, so a
				// missing value can never slip past a guard.
				warnings = append(warnings, fmt.Sprintf("rule %q: condition %s: %v; a deny rule fails closed, so it applies", r.name, r.when.src, err))
				if tr != nil {
					tr.When = Check{Matched: true, Err: err.Error(), Detail: r.when.src + " could not be evaluated; deny rules fail closed"}
				}
			case err != nil:
				warnings = append(warnings, fmt.Sprintf("rule %q: condition %s: %v; treated as not matching", r.name, r.when.src, err))
				if tr != nil {
					tr.When = Check{Err: err.Error(), Detail: r.when.src}
				}
				continue
			case !ok:
				if tr != nil {
					tr.When = Check{Detail: r.when.src + " is false"}
				}
				continue
			}
			if tr != nil && err == nil {
				tr.When = Check{Matched: true, Detail: r.when.src + " is true"}
			}
		}
		d, decided = r.decide(in, kind, p.platforms.IsGroup), true
		if tr != nil {
			tr.Decided = true
		}
		if ex == nil {
			break
		}
	}
	if !decided {
		d = p.defaultDecision(in, kind)
	}
	d.Warnings = warnings
	if ex != nil {
		ex.Decision = d
	}
	return d
}

// matchStatic matches subjects, channels and actions. When tracing it
// checks all three so the explanation is complete.
func (r *rule) matchStatic(w *who, in Input, tr *RuleTrace) bool {
	if tr == nil {
		return r.applies(w, in.Channel, in.Action)
	}
	var c [3]Check
	c[0].Matched, c[0].Detail = r.matchSubjects(w)
	c[1].Matched, c[1].Detail = r.matchChannels(in.Channel)
	c[2].Matched, c[2].Detail = r.matchActions(in.Action)
	tr.Subjects, tr.Channels, tr.Actions = c[0], c[1], c[2]
	return c[0].Matched && c[1].Matched && c[2].Matched
}

// decide turns a matching rule into a decision, applying the
// mutating-never-allow invariant.
func (r *rule) decide(in Input, kind action.Kind, isGroup func(string) bool) Decision {
	switch r.effect {
	case Deny:
		reason := r.reason
		if reason == "" {
			reason = fmt.Sprintf("rule %q does not let %s run %s in %s", r.name, quoteEmpty(in.Subject), quoteEmpty(in.Action), quoteEmpty(in.Channel))
		}
		return Decision{Effect: Deny, Rule: r.name, Reason: reason}
	case Confirm:
		d := Decision{
			Effect:           Confirm,
			Rule:             r.name,
			Approvers:        append([]string(nil), r.approvers...),
			DistinctApprover: r.distinct,
			TTL:              r.ttl,
		}
		d.Reason = r.reason
		if d.Reason == "" {
			d.Reason = fmt.Sprintf("rule %q: %s must confirm", r.name, describeApprovers(d.Approvers, d.DistinctApprover, in.Subject, isGroup))
		}
		return d
	default:
		return allowDecision(r.name, r.reason, fmt.Sprintf("allowed by rule %q", r.name), in, kind)
	}
}

func (p *Policy) defaultDecision(in Input, kind action.Kind) Decision {
	if p.def == Allow {
		return allowDecision(DefaultRule, "", fmt.Sprintf("no rule matched %s running %s in %s (default allow)",
			quoteEmpty(in.Subject), quoteEmpty(in.Action), quoteEmpty(in.Channel)), in, kind)
	}
	return Decision{Effect: Deny, Rule: DefaultRule,
		Reason: fmt.Sprintf("no rule allows %s to run %s in %s (default deny)", quoteEmpty(in.Subject), quoteEmpty(in.Action), quoteEmpty(in.Channel))}
}

// allowDecision is an allow, or for a mutating action a confirmation by the
// requester.
func allowDecision(ruleName, reason, fallback string, in Input, kind action.Kind) Decision {
	if kind != action.Read {
		if reason == "" {
			reason = fmt.Sprintf("%s; %s is a mutating action, so the requester must confirm it", fallback, quoteEmpty(in.Action))
		}
		return Decision{Effect: Confirm, Rule: ruleName, Reason: reason, Approvers: []string{Requester}, TTL: DefaultTTL}
	}
	if reason == "" {
		reason = fallback
	}
	return Decision{Effect: Allow, Rule: ruleName, Reason: reason}
}

// Permitted reports whether subject could run the named action in channel
// for some parameters: some allow or confirm rule applies before any
// unconditional deny. A rule with a condition may or may not match, so a
// conditional allow counts and a conditional deny does not stop the search.
// help uses it to list only what the user may do.
func (p *Policy) Permitted(subject string, groups []string, channel, actionName string) bool {
	w := p.who(subject, groups)
	for _, r := range p.rules {
		if !r.applies(w, channel, actionName) {
			continue
		}
		if r.effect != Deny {
			return true
		}
		if r.when == nil {
			return false
		}
	}
	return p.def == Allow
}

// GroupsOf returns the policy groups subject belongs to, directly or
// through one of its platform groups, in file order.
func (p *Policy) GroupsOf(subject string, platformGroups []string) []string {
	return p.who(subject, platformGroups).groupList
}

// ErrCannotApprove is wrapped by every CanApprove refusal.
var ErrCannotApprove = errors.New("cannot confirm")

// CanApprove reports whether approver (with its platform groups) may
// confirm the decision d that requester asked for. The error says why not,
// in words fit for the chat.
func (p *Policy) CanApprove(d Decision, requester, approver string, approverGroups []string) error {
	if d.Effect != Confirm {
		return fmt.Errorf("%w: the decision is %s, there is nothing to confirm", ErrCannotApprove, d.Effect)
	}
	if len(d.Approvers) == 0 {
		return fmt.Errorf("%w: the decision names no approvers", ErrCannotApprove)
	}
	if approver == "" {
		return fmt.Errorf("%w: unknown approver", ErrCannotApprove)
	}
	who := describeApprovers(d.Approvers, d.DistinctApprover, requester, p.platforms.IsGroup)
	if d.DistinctApprover && approver == requester {
		return fmt.Errorf("%w: %s must confirm; the requester cannot", ErrCannotApprove, who)
	}
	w := p.who(approver, approverGroups)
	for _, a := range d.Approvers {
		switch {
		case a == Requester:
			if approver == requester {
				return nil
			}
		case strings.HasPrefix(a, groupPrefix+":"):
			if ok, _ := w.inGroup(strings.TrimPrefix(a, groupPrefix+":")); ok {
				return nil
			}
		case a == approver || w.inPlatformGroup(a):
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not confirm this; %s must", ErrCannotApprove, approver, who)
}

// describeApprovers words an approver list: "the requester (console:alice)",
// "a second member of group sre", "console:bob or a member of slack-group:S1".
// isGroup tells platform groups from user ids.
func describeApprovers(approvers []string, distinct bool, requester string, isGroup func(string) bool) string {
	parts := make([]string, 0, len(approvers))
	for _, a := range approvers {
		switch {
		case a == Requester:
			if requester != "" {
				parts = append(parts, "the requester ("+requester+")")
			} else {
				parts = append(parts, "the requester")
			}
		case strings.HasPrefix(a, groupPrefix+":"):
			g := strings.TrimPrefix(a, groupPrefix+":")
			if distinct {
				parts = append(parts, "a second member of group "+g)
			} else {
				parts = append(parts, "a member of group "+g)
			}
		case isGroup(a):
			parts = append(parts, "a member of "+a)
		default:
			parts = append(parts, a)
		}
	}
	if distinct && len(parts) > 0 && !strings.Contains(strings.Join(parts, ""), "second member") {
		parts[len(parts)-1] += " (not the requester)"
	}
	return strings.Join(parts, " or ")
}
