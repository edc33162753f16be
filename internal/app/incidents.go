package app

import (
	"log/slog"

	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/adapters/webhook"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/redact"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// buildIncidents builds the Alertmanager webhook manager when the
// configuration has an incidents section (nil otherwise). It gathers
// evidence with the same read actions as incident.diagnose (those whose
// backend is configured), and writes a model summary when an LLM is
// configured. Its webhook runs on every replica; its Run on the leader.
func buildIncidents(p *Parley, sender chat.Sender, metrics *telemetry.Metrics, log *slog.Logger) (*incident.Manager, error) {
	in := p.Config.Incidents
	if in == nil {
		return nil, nil
	}
	routes := p.defs.routes // parsed and checked by loadDefinitions
	auth := incident.Auth{BearerToken: in.Auth.BearerToken.Value()}
	if b := in.Auth.Basic; b != nil {
		auth = incident.Auth{Username: b.User, Password: b.Password.Value()}
	}
	o := incident.Options{
		Sender: sender, DB: p.DB, Audit: p.Audit, Auth: auth,
		Routes: routes, DefaultChannel: in.DefaultChannel, MaxBody: in.MaxBody, GroupWait: in.GroupWait.Std(),
		ExpireAfter: in.ExpireAfter.Std(), QueueSize: in.QueueSize, DigestAfter: in.DigestAfter,
		Sources: configuredSources(p.Config, diagnoseSources(p.Actions)), Inventory: p.Inventory, Redact: redact.Redact,
		Metrics: metrics.Incidents(), Logger: log, Silence: silenceOffer(p.Config, p.Actions),
		PodLogs: podLogsOffer(p.Config, p.Actions),
	}
	if kc, err := p.Kube(""); err == nil {
		o.Rollouts = incident.KubeRollouts{Client: kc}
	}
	if l := p.Config.Router.LLM; l != nil {
		lo, err := llmOptions(l, p.Spend, metrics, log, nil)
		if err != nil {
			return nil, err
		}
		s, err := llm.NewSummarizer(lo)
		if err != nil {
			return nil, err
		}
		o.Summarizer = s
	}
	return incident.New(o)
}

// configuredSources leaves out the evidence sources whose backend is not
// configured: without a Loki URL there are no error logs to gather (and
// no "Show error logs" button), rather than a line saying "not
// configured" in every incident.
func configuredSources(cfg *config.Config, all []incident.Source) []incident.Source {
	var out []incident.Source
	for _, s := range all {
		if s.Action == nil {
			continue
		}
		if s.Action.Spec().Name == action.LokiQuery && cfg.Loki.URL == "" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// podLogsOffer is the "Show pod logs" button (kubernetes.logs, which
// reads the pods' logs through the Kubernetes API), offered on incident
// messages when no Loki answers "Show error logs".
func podLogsOffer(cfg *config.Config, acts *action.Registry) *action.Spec {
	if cfg.Loki.URL != "" {
		return nil
	}
	a, ok := acts.Get(kubernetes.LogsName)
	if !ok {
		return nil
	}
	spec := a.Spec()
	return &spec
}

// buildWebhookSink is the outgoing webhook sink of incidents.webhook_sink,
// or nil when none is configured.
func buildWebhookSink(cfg *config.Config, log *slog.Logger) (*webhook.Sink, error) {
	if cfg.Incidents == nil || cfg.Incidents.WebhookSink == nil {
		return nil, nil
	}
	ws := cfg.Incidents.WebhookSink
	return webhook.New(webhook.Options{URL: ws.URL, Secret: ws.Secret.Value(), Timeout: ws.Timeout.Std(),
		Logger: log, UserAgent: "parley/" + Version})
}
