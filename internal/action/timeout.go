package action

import "time"

// LongRunning is implemented by actions that may legitimately run longer
// than the pipeline's default deadline (a Kubernetes Job that waits for
// completion, an HTTP call with a long configured timeout). RunTimeout is
// the whole deadline the action needs, its own cleanup included; the
// pipeline gives a run the larger of this and its default.
type LongRunning interface {
	RunTimeout() time.Duration
}

// RunTimeout is the deadline for one run of a: def, or a's RunTimeout when
// a is LongRunning and asks for more.
func RunTimeout(a Action, def time.Duration) time.Duration {
	if lr, ok := a.(LongRunning); ok && lr.RunTimeout() > def {
		return lr.RunTimeout()
	}
	return def
}
