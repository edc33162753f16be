package app

import (
	"log/slog"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/redact"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// buildIncidents builds the Alertmanager webhook manager when the
// configuration has an incidents section (nil otherwise). It gathers
// evidence with the same read actions as incident.diagnose, and writes a
// model summary when an LLM is configured.
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
		Sender: sender, DB: p.DB.SQL(), Rebind: p.DB.Dialect().Rebind, Audit: p.Audit, Auth: auth,
		Routes: routes, DefaultChannel: in.DefaultChannel, MaxBody: in.MaxBody, GroupWait: in.GroupWait.Std(),
		Sources: diagnoseSources(p.Actions), Inventory: p.Inventory, Redact: redact.Redact,
		Metrics: metrics.Incidents(), Logger: log, Silence: silenceOffer(p.Config, p.Actions),
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
