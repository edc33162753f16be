package rules

import (
	"regexp"

	"github.com/parley-chatops/parley/internal/action"
)

// userSpecs are actions shaped like user-defined action files: a name, a
// summary, a kind, typed parameters and examples with their parameters,
// nothing else (no vocabulary, no words, no synonyms). The router must
// read them from that alone.
func userSpecs() []action.Spec {
	one, fifty := 1, 50
	return []action.Spec{
		{
			Name: "cdn.purge", Kind: action.Mutating,
			Description: "Purge the CDN cache of a site, optionally only under one path.",
			Params: []action.Param{
				{Name: "site", Type: action.Enum, Enum: []string{"shop", "blog", "docs"}, Required: true, Description: "the site"},
				{Name: "path", Type: action.String, Pattern: regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`), Default: "/"},
			},
			Examples: []action.Example{
				{Text: "purge the cdn cache for shop", Params: map[string]any{"site": "shop"}},
				{Text: "flush the docs cache under /assets", Params: map[string]any{"site": "docs", "path": "/assets"}},
			},
		},
		{
			Name: "flags.toggle", Kind: action.Mutating,
			Description: "Turn a feature flag on or off.",
			Params: []action.Param{
				{Name: "flag", Type: action.String, Pattern: regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`), Required: true, Description: "the feature flag"},
				{Name: "enabled", Type: action.Bool, Required: true, Description: "on or off"},
			},
			Examples: []action.Example{
				{Text: "enable the new-checkout flag", Params: map[string]any{"flag": "new-checkout", "enabled": true}},
				{Text: "disable flag dark-mode", Params: map[string]any{"flag": "dark-mode", "enabled": false}},
			},
		},
		{
			Name: "oncall.who", Kind: action.Read,
			Description: "Show who is on call for a team.",
			Params: []action.Param{
				{Name: "team", Type: action.Enum, Enum: []string{"payments", "platform", "data"}, Description: "the team"},
			},
			Examples: []action.Example{
				{Text: "who is on call for payments?", Params: map[string]any{"team": "payments"}},
				{Text: "on-call rota for the platform team", Params: map[string]any{"team": "platform"}},
			},
		},
		{
			Name: "queue.drain", Kind: action.Mutating,
			Description: "Drain a message queue: stop consumers and let it empty.",
			Params: []action.Param{
				{Name: "queue", Type: action.String, Required: true, Description: "the queue name"},
			},
			Examples: []action.Example{
				{Text: "drain the emails queue", Params: map[string]any{"queue": "emails"}},
				{Text: "drain queue webhooks", Params: map[string]any{"queue": "webhooks"}},
			},
		},
		{
			Name: "certs.renew", Kind: action.Mutating,
			Description: "Renew the TLS certificate of a domain.",
			Params: []action.Param{
				{Name: "domain", Type: action.String, Required: true, Pattern: regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]{2,}$`)},
			},
			Examples: []action.Example{
				{Text: "renew the certificate for shop.example.com", Params: map[string]any{"domain": "shop.example.com"}},
			},
		},
		{
			Name: "db.backup", Kind: action.Mutating,
			Description: "Take a backup of a database now.",
			Params: []action.Param{
				{Name: "database", Type: action.Enum, Enum: []string{"orders", "users", "ledger"}, Required: true},
			},
			Examples: []action.Example{
				{Text: "back up the orders database", Params: map[string]any{"database": "orders"}},
				{Text: "take a snapshot of users db", Params: map[string]any{"database": "users"}},
			},
		},
		{
			Name: "runbook.show", Kind: action.Read,
			Description: "Show the runbook for an alert or a topic.",
			Params: []action.Param{
				{Name: "topic", Type: action.Enum, Enum: []string{"high-latency", "disk-full", "oom", "cert-expiry"}, Required: true},
			},
			Examples: []action.Example{
				{Text: "runbook for disk-full", Params: map[string]any{"topic": "disk-full"}},
				{Text: "show me the oom runbook", Params: map[string]any{"topic": "oom"}},
			},
		},
		{
			Name: "costs.report", Kind: action.Read,
			Description: "Report cloud spend per team over a window.",
			Params: []action.Param{
				{Name: "team", Type: action.Enum, Enum: []string{"payments", "platform", "data"}},
				{Name: "window", Type: action.Duration},
			},
			Examples: []action.Example{
				{Text: "cloud costs for data last week", Params: map[string]any{"team": "data", "window": "1w"}},
				{Text: "how much did platform spend", Params: map[string]any{"team": "platform"}},
			},
		},
		{
			Name: "dns.lookup", Kind: action.Read,
			Description: "Resolve a host name through the cluster's DNS.",
			Params: []action.Param{
				{Name: "host", Type: action.String, Required: true, Pattern: regexp.MustCompile(`^[a-z0-9.-]+$`)},
			},
			Examples: []action.Example{
				{Text: "resolve api.internal", Params: map[string]any{"host": "api.internal"}},
				{Text: "dns lookup for shop.example.com", Params: map[string]any{"host": "shop.example.com"}},
			},
		},
		{
			Name: "build.trigger", Kind: action.Mutating,
			Description: "Trigger a CI build of a pipeline.",
			Params: []action.Param{
				{Name: "pipeline", Type: action.Enum, Enum: []string{"web", "api", "mobile"}, Required: true},
				{Name: "branch", Type: action.String, Default: "main"},
			},
			Examples: []action.Example{
				{Text: "trigger a build of web", Params: map[string]any{"pipeline": "web"}},
				{Text: "build api from branch release-2", Params: map[string]any{"pipeline": "api", "branch": "release-2"}},
			},
		},
		{
			Name: "pager.test", Kind: action.Mutating,
			Description: "Send a test page to a team's pager.",
			Params: []action.Param{
				{Name: "team", Type: action.Enum, Enum: []string{"payments", "platform", "data"}, Required: true},
				{Name: "count", Type: action.Int, Min: &one, Max: &fifty},
			},
			Examples: []action.Example{
				{Text: "send a test page to platform", Params: map[string]any{"team": "platform"}},
			},
		},
		{
			Name: "sla.report", Kind: action.Read,
			Description: "Availability against the SLO for a site over a window.",
			Params: []action.Param{
				{Name: "site", Type: action.Enum, Enum: []string{"shop", "blog", "docs"}},
				{Name: "window", Type: action.Duration},
			},
			Examples: []action.Example{
				{Text: "sla for shop this month", Params: map[string]any{"site": "shop", "window": "30d"}},
				{Text: "availability of docs over the last week", Params: map[string]any{"site": "docs", "window": "1w"}},
			},
		},
	}
}
