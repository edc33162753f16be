package incident

import "time"

// Metrics receives the incident channels' counters; the application
// connects it to internal/telemetry. Methods are called from several
// goroutines.
type Metrics interface {
	// Webhook counts webhook requests by outcome: accepted, unauthorized,
	// invalid, too_large, bad_method, busy (no request slot), queue_full
	// (the inbox is full), store_failed.
	Webhook(outcome string)
	// AlertsReceived counts the alerts of accepted notifications.
	AlertsReceived(n int)
	// Duplicate counts notifications that added nothing (re-sends).
	Duplicate()
	// Posted counts a group's first message (its own, or its line in a
	// digest) and observes the time from the webhook request that brought
	// the group to the message being delivered.
	Posted(sinceDelivery time.Duration)
	// Updated counts an edit of a group's message.
	Updated()
	// Unrouted counts a group that matched no route with no default channel.
	Unrouted()
	// StateSaveFailed counts a write of incident state that failed (it is
	// retried; a post is not made before it is recorded as begun).
	StateSaveFailed()
	// SendFailed counts a failed try to deliver an incident message on a
	// platform; it is tried again until it expires.
	SendFailed(platform string)
	// Expired counts an incident message given up after ExpireAfter.
	Expired(platform string)
	// Digested counts a group listed in an alert-storm digest instead of
	// a message of its own.
	Digested()
	// Outbox reports the groups whose message is not up to date on this
	// replica and how long the oldest has waited (0, 0 when it does not
	// post).
	Outbox(waiting int, oldest time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) Webhook(string)            {}
func (nopMetrics) AlertsReceived(int)        {}
func (nopMetrics) Duplicate()                {}
func (nopMetrics) Posted(time.Duration)      {}
func (nopMetrics) Updated()                  {}
func (nopMetrics) Unrouted()                 {}
func (nopMetrics) StateSaveFailed()          {}
func (nopMetrics) SendFailed(string)         {}
func (nopMetrics) Expired(string)            {}
func (nopMetrics) Digested()                 {}
func (nopMetrics) Outbox(int, time.Duration) {}
