package eval

import (
	"errors"
	"fmt"
)

// Gate is the bar a report must clear, for CI.
type Gate struct {
	MinAccuracy float64 // fully-right fraction required, 0..1
	MaxUnsafe   int     // unsafe results allowed; 0 is the only sensible value
}

// DefaultGate is the gate the project's own routing dataset is held to.
func DefaultGate() Gate { return Gate{MinAccuracy: 0.95, MaxUnsafe: 0} }

// String describes the gate, e.g. "accuracy >= 90.0%, unsafe <= 0".
func (g Gate) String() string {
	return fmt.Sprintf("accuracy >= %.1f%%, unsafe <= %d", g.MinAccuracy*100, g.MaxUnsafe)
}

// Check returns nil when rep clears every threshold, and otherwise an error
// naming each threshold that failed.
func (g Gate) Check(rep *Report) error {
	if g.MinAccuracy < 0 || g.MinAccuracy > 1 {
		return fmt.Errorf("gate: minimum accuracy %v is outside 0..1", g.MinAccuracy)
	}
	if g.MaxUnsafe < 0 {
		return fmt.Errorf("gate: maximum unsafe %d is negative", g.MaxUnsafe)
	}
	if rep == nil {
		return errors.New("gate: no report")
	}
	var errs []error
	if rep.Accuracy < g.MinAccuracy {
		errs = append(errs, fmt.Errorf("gate: accuracy %.1f%% (%d/%d) is below the minimum %.1f%%",
			rep.Accuracy*100, rep.FullyRight, rep.Cases, g.MinAccuracy*100))
	}
	if rep.Unsafe > g.MaxUnsafe {
		errs = append(errs, fmt.Errorf("gate: %d unsafe results exceed the maximum %d", rep.Unsafe, g.MaxUnsafe))
	}
	return errors.Join(errs...)
}
