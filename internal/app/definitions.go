package app

import (
	"fmt"
	"log/slog"

	"github.com/parley-chatops/parley/actions/useraction"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/policies"
)

// definitions are what an instance reads and checks before it connects to
// anything: the action specs (the built-in catalog; user-defined action
// files join here), the policy checked against them, the language model's
// options and prompt templates, and the incident routes. Build takes them
// from loadDefinitions, and so does `parley config validate`: a
// configuration that validate accepts loads the same way in serve, and
// one it refuses fails serve with the same error.
type definitions struct {
	specs  []action.Spec   // built-in and user-defined
	user   []action.Action // the user-defined actions (actions_dir)
	policy *policy.Policy
	routes []incident.Route
	// prompts are the model's prompt templates in use ("router/v1",
	// "summary/v2"); none without a router.llm section.
	prompts []string
}

// loadDefinitions loads and checks the definitions of cfg, with the
// user-defined actions of cfg.ActionsDir loaded with uo (uo.Kube may be
// nil when nothing will run). It makes no network call and opens no
// database.
func loadDefinitions(cfg *config.Config, uo useraction.Options) (*definitions, error) {
	user, err := loadUserActions(cfg.ActionsDir, builtinNames(), uo)
	if err != nil {
		return nil, err
	}
	d := &definitions{specs: append(builtin.Specs(), specsOf(user)...), user: user}
	if err := checkSpecs(d.specs); err != nil {
		return nil, err
	}
	if err := checkConfig(cfg, d.specs); err != nil {
		return nil, err
	}
	if d.policy, err = loadPolicy(cfg.Policy, d.specs); err != nil {
		return nil, err
	}
	if in := cfg.Incidents; in != nil {
		for i, r := range in.Routes {
			rt, err := incident.ParseRoute(r.Match, r.Channel)
			if err != nil {
				return nil, fmt.Errorf("incidents.routes[%d]: %w", i, err)
			}
			d.routes = append(d.routes, rt)
		}
	}
	if l := cfg.Router.LLM; l != nil {
		// The router and the summariser are built as serve builds them
		// (no network call): options and prompt templates are checked.
		o, err := llmOptions(l, nil, nil, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return nil, err
		}
		if _, err := llm.New(o); err != nil {
			return nil, err
		}
		if _, err := llm.NewSummarizer(o); err != nil {
			return nil, err
		}
		if len(l.Variants) == 0 {
			d.prompts = append(d.prompts, "router/"+llm.DefaultVariant)
		}
		for _, v := range l.Variants {
			d.prompts = append(d.prompts, "router/"+v.Name)
		}
		d.prompts = append(d.prompts, "summary/v2")
	}
	return d, nil
}

// loadPolicy reads the policy file, or the embedded default, checked
// against specs (built-in and user-defined).
func loadPolicy(path string, specs []action.Spec) (*policy.Policy, error) {
	if path == "" {
		return policy.Parse(policies.Default(), "policies/default.yaml (embedded)", specs, platforms())
	}
	return policy.Load(path, specs, platforms())
}
