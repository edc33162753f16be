// Package incident turns trouble into diagnoses in chat.
//
// The incident.diagnose action (Diagnose) answers "what's wrong with
// checkout": it gathers a service's metrics, error logs and Kubernetes
// state in parallel, each under its own deadline, and summarises them.
//
// The incident channels (Manager) do the same for Alertmanager: its
// webhook (Handler, payload version 4) is authenticated, size-limited and
// validated, answered at once and queued; the Manager groups notifications
// by Alertmanager's group key, drops re-sends that add nothing, and keeps
// one message per group in the routed channel. The message is posted
// first with what the alert itself says, then edited in place as the
// sources answer (key metrics and a chart, error log lines, Kubernetes
// state, a rollout shortly before the alert, a diagnosis written by a model
// when one is configured, deterministic otherwise), with suggested next
// steps as buttons that enter the pipeline's normal policy and
// confirmation path. New alerts and resolutions edit the same message and
// add a short note in its thread; edits of one group are coalesced, so a
// storm stays readable. What was posted survives a restart (the incidents
// table), and every summary and suggestion is an audit event.
package incident
