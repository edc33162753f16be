// Package incident turns trouble into diagnoses in chat.
//
// The incident.diagnose action (Diagnose) answers "what's wrong with
// checkout": it gathers a service's metrics, error logs and Kubernetes
// state in parallel, each under its own deadline, and summarises them.
//
// The incident channels (Manager) do the same for Alertmanager. Its
// webhook (Handler, payload version 4) runs on every replica: it checks
// the credentials before it reads anything, bounds and validates the
// notification, redacts it and stores it in the inbox table before it
// answers 200. Run, on the one replica that posts, merges the stored
// notifications by Alertmanager's group key (re-sends that add nothing
// are dropped) and keeps one message per group in the routed channel,
// posted first with what the alert itself says, then edited in place as
// the sources answer (key metrics and a chart, error log lines or the
// pods' logs, Kubernetes state, a rollout or restart shortly before the
// alert, a diagnosis written by a model when one is configured,
// deterministic otherwise), with suggested next steps as buttons that
// enter the pipeline's normal policy and confirmation path, each offered
// only where its backend is configured. New alerts and resolutions edit
// the same message and add a short note in its thread; edits of one group
// are coalesced.
//
// Delivery is durable: a group whose message is behind has an outbox row,
// written in the same transaction as its state and the removal of the
// notifications it came from, and is retried until it is delivered or,
// after ExpireAfter, given up with a metric and an incident.expired audit
// event, across restarts and changes of leader. A first post is recorded
// as begun, with an idempotency key, before it is made, and looked for
// (Finder) before it is made again. When a channel backs up, new groups
// are listed in an alert-storm digest edited in place, so a storm of
// hundreds of groups becomes a few messages and every group is shown
// once. Every summary, update, suggestion and expiry is an audit event.
package incident
