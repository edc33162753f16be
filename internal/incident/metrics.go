package incident

import "time"

// Metrics receives the incident channels' counters; the application
// connects it to internal/telemetry. Methods are called from several
// goroutines.
type Metrics interface {
	// Webhook counts webhook requests by outcome: accepted, unauthorized,
	// invalid, too_large, queue_full, bad_method.
	Webhook(outcome string)
	// AlertsReceived counts the alerts of accepted notifications.
	AlertsReceived(n int)
	// Duplicate counts notifications that added nothing (re-sends).
	Duplicate()
	// Posted counts a group's first message and observes the time from the
	// webhook request that brought the group to the message being posted.
	Posted(sinceDelivery time.Duration)
	// Updated counts an edit of a group's message.
	Updated()
	// Unrouted counts a group that matched no route with no default channel.
	Unrouted()
	// StateSaveFailed counts a sent message whose state could not be
	// saved in the incidents table.
	StateSaveFailed()
}

type nopMetrics struct{}

func (nopMetrics) Webhook(string)       {}
func (nopMetrics) AlertsReceived(int)   {}
func (nopMetrics) Duplicate()           {}
func (nopMetrics) Posted(time.Duration) {}
func (nopMetrics) Updated()             {}
func (nopMetrics) Unrouted()            {}
func (nopMetrics) StateSaveFailed()     {}
