// Package telemetry holds Parley's own Prometheus metrics: messages,
// routing, actions, policy decisions, confirmations, model calls and
// budgets, rate limiting. Metrics live in their own registry, never the
// global default one, so that tests and several instances in one process
// do not collide; Handler serves it on /metrics.
//
// Every method is safe on a nil *Metrics (it does nothing), so a component
// can take metrics as an optional dependency. Label values are bounded:
// action names come from the catalog, platforms and outcomes from fixed
// sets, models from configuration; user and channel ids never become
// labels.
package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-chatops/parley/internal/llmcost"
)

const namespace = "parley"

// Metrics are the bot's metrics and the registry that holds them.
type Metrics struct {
	reg *prometheus.Registry

	messages        *prometheus.CounterVec
	routes          *prometheus.CounterVec
	routeDuration   *prometheus.HistogramVec
	actionDuration  *prometheus.HistogramVec
	policyDecisions *prometheus.CounterVec
	confirmations   *prometheus.CounterVec
	llmRequests     *prometheus.CounterVec
	llmTokens       *prometheus.CounterVec
	llmCost         *prometheus.CounterVec
	llmDuration     *prometheus.HistogramVec
	llmCacheHits    *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	chatConnected   *prometheus.GaugeVec
	auditFailures   prometheus.Counter
	leader          prometheus.Gauge

	incidentWebhooks   *prometheus.CounterVec
	incidentAlerts     prometheus.Counter
	incidentDuplicates prometheus.Counter
	incidentPosts      prometheus.Counter
	incidentUpdates    prometheus.Counter
	incidentUnrouted   prometheus.Counter
	incidentFirstPost  prometheus.Histogram
	incidentStateFails prometheus.Counter
	incidentSendFails  *prometheus.CounterVec
	incidentExpired    *prometheus.CounterVec
	incidentDigested   prometheus.Counter
	incidentWaiting    prometheus.Gauge
	incidentOldest     prometheus.Gauge
}

// Options configure New.
type Options struct {
	// RuntimeCollectors adds the Go runtime and process collectors
	// (go_*, process_*), as a default registry would have.
	RuntimeCollectors bool
}

// New returns metrics registered in a new registry.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_total",
			Help: "Chat messages handled, by platform and outcome (routed, duplicate, rate_limited, rejected, error).",
		}, []string{"platform", "outcome"}),
		routes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "routes_total",
			Help: "Messages routed, by resulting action and by the router that answered (rules, llm, rules-fallback).",
		}, []string{"action", "router"}),
		routeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "route_duration_seconds",
			Help:    "Time to route one message, by router.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"router"}),
		actionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "action_duration_seconds",
			Help:    "Action run time, by action and outcome (success, error, timeout).",
			Buckets: prometheus.DefBuckets,
		}, []string{"action", "outcome"}),
		policyDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "policy_decisions_total",
			Help: "Policy decisions, by action and effect (allow, deny, confirm).",
		}, []string{"action", "effect"}),
		confirmations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "confirmations_total",
			Help: "Confirmations, by outcome (requested, granted, denied, expired, cancelled).",
		}, []string{"outcome"}),
		llmRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_requests_total",
			Help: "Model calls, by provider, model, prompt variant and outcome (ok, error, timeout).",
		}, []string{"provider", "model", "variant", "outcome"}),
		llmTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_tokens_total",
			Help: "Tokens reported by the model provider, by provider, model, variant and kind (prompt, completion).",
		}, []string{"provider", "model", "variant", "kind"}),
		llmCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_cost_usd_total",
			Help: "Model spend in US dollars from the configured price table, by provider, model and variant.",
		}, []string{"provider", "model", "variant"}),
		llmDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "llm_request_duration_seconds",
			Help:    "Model call latency, retries included, by provider and model.",
			Buckets: []float64{.1, .25, .5, 1, 2, 4, 8, 15, 30, 60},
		}, []string{"provider", "model"}),
		llmCacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_cache_hits_total",
			Help: "Questions answered from the response cache without calling the model, by variant.",
		}, []string{"variant"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_budget_exhausted_total",
			Help: "Model calls refused because a daily budget was used up, by scope (channel, user).",
		}, []string{"scope"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "chat_rate_limited_total",
			Help: "Chat messages refused by the per-user or per-channel rate limit, by platform.",
		}, []string{"platform"}),
		chatConnected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "chat_connected",
			Help: "1 while this replica's adapter for the platform is running and connected, else 0.",
		}, []string{"platform"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_write_failures_total",
			Help: "Audit events that could not be written (a mutating action is then not run).",
		}),
		incidentWebhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_webhooks_total",
			Help: "Alertmanager webhook requests, by outcome (accepted, unauthorized, invalid, too_large, bad_method, busy, queue_full, store_failed).",
		}, []string{"outcome"}),
		incidentAlerts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_alerts_total", Help: "Alerts received from Alertmanager.",
		}),
		incidentDuplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_duplicates_total", Help: "Alertmanager re-sends that added nothing new (not posted).",
		}),
		incidentPosts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_posts_total", Help: "Alert groups shown in their channel: by a message of their own, or listed in an alert-storm digest.",
		}),
		incidentUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_updates_total", Help: "Incident messages updated in place.",
		}),
		incidentUnrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_unrouted_total", Help: "Alert groups no route or default channel matched.",
		}),
		incidentFirstPost: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "incident_first_post_seconds",
			Help:    "Time from Alertmanager's delivery to the group's first message (or digest line) in the channel.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
		}),
		incidentStateFails: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_state_save_failures_total",
			Help: "Writes of incident state that failed; they are retried, and a post is not made before it is recorded as begun.",
		}),
		incidentSendFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_send_failures_total",
			Help: "Failed tries to deliver an incident message, by platform; each is tried again until it is delivered or expires.",
		}, []string{"platform"}),
		incidentExpired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_expired_total",
			Help: "Incident messages given up after incidents.expire_after without delivery, by platform (each is an incident.expired audit event).",
		}, []string{"platform"}),
		incidentDigested: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "incident_digested_total",
			Help: "Alert groups listed in an alert-storm digest instead of a message of their own.",
		}),
		incidentWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "incident_outbox_waiting",
			Help: "Alert groups whose message is not up to date yet (on the replica that posts; 0 elsewhere).",
		}),
		incidentOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "incident_outbox_oldest_seconds",
			Help: "How long the oldest undelivered incident change has waited (on the replica that posts; 0 elsewhere).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leader",
			Help: "1 while this replica leads (holds the chat connections), else 0. Without leader election the only replica always leads.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.messages, m.routes, m.routeDuration, m.actionDuration, m.policyDecisions, m.confirmations,
		m.llmRequests, m.llmTokens, m.llmCost, m.llmDuration, m.llmCacheHits, m.budgetExhausted, m.rateLimited,
		m.chatConnected, m.auditFailures, m.leader,
		m.incidentWebhooks, m.incidentAlerts, m.incidentDuplicates, m.incidentPosts, m.incidentUpdates,
		m.incidentUnrouted, m.incidentFirstPost, m.incidentStateFails,
		m.incidentSendFails, m.incidentExpired, m.incidentDigested, m.incidentWaiting, m.incidentOldest,
	} {
		f(c)
	}
	if o.RuntimeCollectors {
		f(collectors.NewGoCollector())
		f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Message counts a handled chat message.
func (m *Metrics) Message(platform, outcome string) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(platform, outcome).Inc()
}

// Routed counts a routed message and how long routing took.
func (m *Metrics) Routed(router, action string, took time.Duration) {
	if m == nil {
		return
	}
	m.routes.WithLabelValues(action, router).Inc()
	m.routeDuration.WithLabelValues(router).Observe(took.Seconds())
}

// ActionFinished records an action's run time and outcome.
func (m *Metrics) ActionFinished(action, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.actionDuration.WithLabelValues(action, outcome).Observe(took.Seconds())
}

// PolicyDecided counts a policy decision.
func (m *Metrics) PolicyDecided(action, effect string) {
	if m == nil {
		return
	}
	m.policyDecisions.WithLabelValues(action, effect).Inc()
}

// Confirmation counts a confirmation event.
func (m *Metrics) Confirmation(outcome string) {
	if m == nil {
		return
	}
	m.confirmations.WithLabelValues(outcome).Inc()
}

// LLMRequest records a model call: outcome ok, error or timeout; tokens
// and cost from u. Cached answers are counted by LLMCacheHit instead.
func (m *Metrics) LLMRequest(outcome string, u llmcost.Usage) {
	if m == nil {
		return
	}
	m.llmRequests.WithLabelValues(u.Provider, u.Model, u.Variant, outcome).Inc()
	if u.PromptTokens > 0 {
		m.llmTokens.WithLabelValues(u.Provider, u.Model, u.Variant, "prompt").Add(float64(u.PromptTokens))
	}
	if u.CompletionTokens > 0 {
		m.llmTokens.WithLabelValues(u.Provider, u.Model, u.Variant, "completion").Add(float64(u.CompletionTokens))
	}
	if u.Cost > 0 {
		m.llmCost.WithLabelValues(u.Provider, u.Model, u.Variant).Add(u.Cost)
	}
	if u.Latency > 0 {
		m.llmDuration.WithLabelValues(u.Provider, u.Model).Observe(u.Latency.Seconds())
	}
}

// LLMCacheHit counts a question answered from the response cache.
func (m *Metrics) LLMCacheHit(variant string) {
	if m == nil {
		return
	}
	m.llmCacheHits.WithLabelValues(variant).Inc()
}

// BudgetExhausted counts a model call refused for budget; scope is
// "channel" or "user".
func (m *Metrics) BudgetExhausted(scope string) {
	if m == nil {
		return
	}
	m.budgetExhausted.WithLabelValues(scope).Inc()
}

// RateLimited counts a chat message refused by the rate limiter.
func (m *Metrics) RateLimited(platform string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(platform).Inc()
}

// ChatConnected sets whether the platform's adapter is connected.
func (m *Metrics) ChatConnected(platform string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.chatConnected.WithLabelValues(platform).Set(v)
}

// AuditWriteFailed counts an audit event that could not be written.
func (m *Metrics) AuditWriteFailed() {
	if m == nil {
		return
	}
	m.auditFailures.Inc()
}

// IsLeader sets whether this replica leads.
func (m *Metrics) IsLeader(leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}

// Incidents returns the incident manager's metrics (nil-safe).
func (m *Metrics) Incidents() *IncidentMetrics { return &IncidentMetrics{m: m} }

// IncidentMetrics records the Alertmanager webhook path.
type IncidentMetrics struct{ m *Metrics }

// Webhook counts a webhook request by outcome.
func (i *IncidentMetrics) Webhook(outcome string) {
	if i.m != nil {
		i.m.incidentWebhooks.WithLabelValues(outcome).Inc()
	}
}

// AlertsReceived counts alerts in an accepted notification.
func (i *IncidentMetrics) AlertsReceived(n int) {
	if i.m != nil {
		i.m.incidentAlerts.Add(float64(n))
	}
}

// Duplicate counts a re-send that added nothing.
func (i *IncidentMetrics) Duplicate() {
	if i.m != nil {
		i.m.incidentDuplicates.Inc()
	}
}

// Posted counts a first post and how long after delivery it came.
func (i *IncidentMetrics) Posted(sinceDelivery time.Duration) {
	if i.m != nil {
		i.m.incidentPosts.Inc()
		i.m.incidentFirstPost.Observe(sinceDelivery.Seconds())
	}
}

// Updated counts an in-place update.
func (i *IncidentMetrics) Updated() {
	if i.m != nil {
		i.m.incidentUpdates.Inc()
	}
}

// Unrouted counts a group with no channel.
func (i *IncidentMetrics) Unrouted() {
	if i.m != nil {
		i.m.incidentUnrouted.Inc()
	}
}

// StateSaveFailed counts a sent message whose state was not saved.
func (i *IncidentMetrics) StateSaveFailed() {
	if i.m != nil {
		i.m.incidentStateFails.Inc()
	}
}

// SendFailed counts a failed try to deliver an incident message.
func (i *IncidentMetrics) SendFailed(platform string) {
	if i.m != nil {
		i.m.incidentSendFails.WithLabelValues(platform).Inc()
	}
}

// Expired counts an incident message given up.
func (i *IncidentMetrics) Expired(platform string) {
	if i.m != nil {
		i.m.incidentExpired.WithLabelValues(platform).Inc()
	}
}

// Digested counts a group listed in an alert-storm digest.
func (i *IncidentMetrics) Digested() {
	if i.m != nil {
		i.m.incidentDigested.Inc()
	}
}

// Outbox sets the undelivered groups and the age of the oldest change.
func (i *IncidentMetrics) Outbox(waiting int, oldest time.Duration) {
	if i.m != nil {
		i.m.incidentWaiting.Set(float64(waiting))
		i.m.incidentOldest.Set(oldest.Seconds())
	}
}
