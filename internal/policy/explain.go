package policy

import (
	"fmt"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// Explanation is a step-by-step account of a decision, for
// `parley policy check` and for debugging a policy.
type Explanation struct {
	File     string
	Input    Input
	Kind     action.Kind // the kind the policy used (unknown actions count as mutating)
	Groups   []string    // policy groups of the subject
	Rules    []RuleTrace // every rule, in file order
	Decision Decision

	isGroup func(string) bool // tells platform groups from user ids
}

// RuleTrace is how one rule fared against the input.
type RuleTrace struct {
	Index  int // 1-based position in the file
	Name   string
	Line   int
	Effect Effect
	// Subjects, Channels and Actions are always checked. When is checked
	// only when the three match and no earlier rule decided.
	Subjects, Channels, Actions, When Check
	Decided                           bool // this rule made the decision
}

// Check is the outcome of one part of a rule.
type Check struct {
	Matched bool
	Skipped bool   // not evaluated
	Err     string // the condition failed to evaluate (Matched is false)
	Detail  string // why
}

// Explain decides in as Decide does and records why.
func (p *Policy) Explain(in Input) Explanation {
	ex := Explanation{isGroup: p.platforms.IsGroup}
	p.evaluate(in, &ex)
	return ex
}

// Matched reports whether subjects, channels and actions all matched.
func (t RuleTrace) Matched() bool {
	return t.Subjects.Matched && t.Channels.Matched && t.Actions.Matched
}

func (c Check) mark() string {
	switch {
	case c.Skipped:
		return "skip "
	case c.Err != "":
		return "error"
	case c.Matched:
		return "yes  "
	default:
		return "no   "
	}
}

// String renders the explanation for a terminal.
func (e Explanation) String() string {
	var b strings.Builder
	in := e.Input
	fmt.Fprintf(&b, "policy:  %s\n", e.File)
	fmt.Fprintf(&b, "request: %s runs %s (%s) in %s\n", quoteEmpty(in.Subject), quoteEmpty(in.Action), e.Kind, quoteEmpty(in.Channel))
	if len(in.Params) > 0 {
		fmt.Fprintf(&b, "params:  %s\n", in.Params.Canonical())
	}
	groups := "none"
	if len(e.Groups) > 0 {
		groups = strings.Join(e.Groups, ", ")
	}
	if len(in.Groups) > 0 {
		groups += " (platform groups: " + strings.Join(in.Groups, ", ") + ")"
	}
	fmt.Fprintf(&b, "groups:  %s\n", groups)

	decidedAt := 0
	for _, t := range e.Rules {
		if t.Decided {
			decidedAt = t.Index
		}
	}
	for _, t := range e.Rules {
		var verdict string
		switch {
		case t.Decided:
			verdict = "MATCH, decides"
		case decidedAt != 0 && t.Index > decidedAt:
			if t.Matched() {
				verdict = "not reached (would apply, but an earlier rule decided)"
			} else {
				verdict = "not reached"
			}
		case t.When.Err != "":
			verdict = "no match (condition failed)"
		default:
			verdict = "no match"
		}
		fmt.Fprintf(&b, "\nrule %d %q (line %d, %s): %s\n", t.Index, t.Name, t.Line, t.Effect, verdict)
		fmt.Fprintf(&b, "  subjects  %s %s\n", t.Subjects.mark(), t.Subjects.Detail)
		fmt.Fprintf(&b, "  channels  %s %s\n", t.Channels.mark(), t.Channels.Detail)
		fmt.Fprintf(&b, "  actions   %s %s\n", t.Actions.mark(), t.Actions.Detail)
		if t.When.Err != "" {
			fmt.Fprintf(&b, "  when      %s %s: %s\n", t.When.mark(), t.When.Detail, t.When.Err)
		} else {
			fmt.Fprintf(&b, "  when      %s %s\n", t.When.mark(), t.When.Detail)
		}
	}

	d := e.Decision
	fmt.Fprintf(&b, "\ndecision: %s", d.Effect)
	if d.Rule == DefaultRule {
		b.WriteString(" (no rule matched: policy default)\n")
	} else {
		fmt.Fprintf(&b, " (rule %q)\n", d.Rule)
	}
	if d.Effect == Confirm {
		fmt.Fprintf(&b, "  approvers: %s\n", describeApprovers(d.Approvers, d.DistinctApprover, in.Subject, e.groupTest()))
		fmt.Fprintf(&b, "  ttl:       %s\n", action.FormatDuration(d.TTL))
	}
	fmt.Fprintf(&b, "  reason:    %s\n", d.Reason)
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, "  warning:   %s\n", w)
	}
	return b.String()
}

func (e Explanation) groupTest() func(string) bool {
	if e.isGroup == nil {
		return func(string) bool { return false }
	}
	return e.isGroup
}
