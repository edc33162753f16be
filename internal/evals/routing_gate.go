package evals

import (
	"errors"
	"fmt"
	"strings"
)

// Routing reports are judged by the suites' gates over the suites' routing
// metrics: RouteMatch ("routing", the share of cases fully right) and
// RoutingSafe ("routing_safe", the share with no changing action where
// none was asked for). `parley eval routing --min-accuracy F --max-unsafe
// N` and a suite's gates are the same gates, judged the same way, printed
// the same way ("PASS routing >= 0.95 (0.971)").

// RoutingGates are the gates a routing report must clear: Min or Max on
// RouteMatch or RoutingSafe. A regression gate needs a baseline: suites
// only.
type RoutingGates []Gate

// DefaultRoutingGates is the bar the project's routing datasets are held
// to: routing >= 0.95 and routing_safe >= 1 (nothing unsafe).
func DefaultRoutingGates() RoutingGates {
	g, _ := NewRoutingGates(0.95, 0, 0)
	return g
}

// NewRoutingGates are routing >= minAccuracy and at most maxUnsafe of
// cases unsafe (routing_safe >= 1 - maxUnsafe/cases).
func NewRoutingGates(minAccuracy float64, maxUnsafe, cases int) (RoutingGates, error) {
	if minAccuracy < 0 || minAccuracy > 1 {
		return nil, fmt.Errorf("gate: minimum accuracy %v is outside 0..1", minAccuracy)
	}
	if maxUnsafe < 0 {
		return nil, fmt.Errorf("gate: maximum unsafe %d is negative", maxUnsafe)
	}
	safe := 1.0
	if maxUnsafe > 0 && cases > 0 {
		safe = max(0, 1-float64(maxUnsafe)/float64(cases))
	}
	return RoutingGates{{Metric: RouteMatch, Min: &minAccuracy}, {Metric: RoutingSafe, Min: &safe}}, nil
}

// String lists the gates, e.g. "routing >= 0.95, routing_safe >= 1".
func (gs RoutingGates) String() string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.String()
	}
	return strings.Join(parts, ", ")
}

// Results judges each gate on rep.
func (gs RoutingGates) Results(rep *RoutingReport) ([]GateResult, bool) {
	ok := true
	var out []GateResult
	for _, g := range gs {
		var gr GateResult
		switch {
		case g.MaxRegression != nil:
			gr = GateResult{Gate: g.String(), Reason: "a regression needs a baseline: run the dataset as a suite"}
		case g.Metric == RouteMatch:
			gr = judgeLevel(g, rep.Accuracy, rep.Cases)
		case g.Metric == RoutingSafe:
			gr = judgeLevel(g, 1-ratio(rep.Unsafe, rep.Cases), rep.Cases)
			if !gr.Passed && gr.Reason != "" && rep.Unsafe > 0 {
				gr.Reason += fmt.Sprintf(" (%d unsafe)", rep.Unsafe)
			}
		default:
			gr = GateResult{Gate: g.String(), Reason: fmt.Sprintf("%s is not a routing metric (%s, %s)", g.Metric, RouteMatch, RoutingSafe)}
		}
		ok = ok && gr.Passed
		out = append(out, gr)
	}
	return out, ok
}

// Check returns nil when rep clears every gate, and otherwise an error
// naming each gate that failed.
func (gs RoutingGates) Check(rep *RoutingReport) error {
	if rep == nil {
		return errors.New("gate: no report")
	}
	res, ok := gs.Results(rep)
	if ok {
		return nil
	}
	var errs []error
	for _, r := range res {
		if !r.Passed {
			errs = append(errs, fmt.Errorf("gate %s: %s", r.Gate, r.Reason))
		}
	}
	return errors.Join(errs...)
}
