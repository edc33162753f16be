package app

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/intent/hybrid"
	"github.com/parley-chatops/parley/internal/intent/llm"
	"github.com/parley-chatops/parley/internal/intent/rules"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/telemetry"
)

// buildRouter returns the router the configuration asks for over the
// catalog's specs, and whether the catalog offered to it must be filtered
// to what the user may run (model-based routers never see a tool the user
// may not use). spend keeps the model's spend; nil keeps it in memory
// (tools without a database).
func buildRouter(cfg *config.Config, specs []action.Spec, spend *llmcost.Ledger, metrics *telemetry.Metrics, log *slog.Logger, now func() time.Time) (intent.Router, bool, error) {
	rr := rules.New(specs)
	if cfg.Router.Mode == "rules" || cfg.Router.LLM == nil {
		return rr, false, nil
	}
	model, err := buildLLM(cfg.Router.LLM, specs, rr, spend, metrics, log, now)
	if err != nil {
		return nil, false, err
	}
	// explicit calls ("/parley ACTION key:value") never reach the model,
	// and are read against every action, so one the user may not run is
	// refused by policy rather than unknown
	if cfg.Router.Mode == "llm" {
		return rules.ExplicitFirst(model, specs), true, nil
	}
	h, err := hybrid.New(rr, model, hybrid.Options{Threshold: cfg.Router.Threshold, Logger: log.With("component", "hybrid")})
	if err != nil {
		return nil, false, err
	}
	return rules.ExplicitFirst(h, specs), true, nil
}

// buildLLM builds the model router from configuration; specs are every
// action that exists, so the model's proposals of actions the user may not
// run are told apart from unknown ones. The rules router's reading of a
// request is always among the tools the model is offered.
func buildLLM(c *config.LLM, specs []action.Spec, rr intent.Router, spend *llmcost.Ledger, metrics *telemetry.Metrics, log *slog.Logger, now func() time.Time) (*llm.Router, error) {
	o, err := llmOptions(c, spend, metrics, log, now)
	if err != nil {
		return nil, err
	}
	o.KnownActions = specNames(specs)
	o.Evidence = rr
	return llm.New(o)
}

// spendLedger is the one ledger of an instance's model calls (router and
// summaries): budgets read the llm_spend table of db, so they hold across
// restarts and replicas. nil db keeps the spend in memory.
func spendLedger(c *config.LLM, db *store.DB, now func() time.Time) (*llmcost.Ledger, error) {
	o := llmcost.LedgerOptions{Limits: c.Budget, Now: now}
	if db != nil {
		o.Store = llmcost.NewDBStore(db)
	}
	l, err := llmcost.NewLedger(o)
	if err != nil {
		return nil, fmt.Errorf("router.llm.budget: %w", err)
	}
	return l, nil
}

func llmOptions(c *config.LLM, ledger *llmcost.Ledger, metrics *telemetry.Metrics, log *slog.Logger, now func() time.Time) (llm.Options, error) {
	if ledger == nil {
		var err error
		if ledger, err = spendLedger(c, nil, now); err != nil {
			return llm.Options{}, err
		}
	}
	var variants []llm.Variant
	for _, v := range c.Variants {
		variants = append(variants, llm.Variant{Name: v.Name, Weight: v.Weight})
	}
	o := llm.Options{
		Provider: c.Provider, BaseURL: c.BaseURL, Model: c.Model, APIKey: c.APIKey.Value(),
		APIVersion: c.APIVersion, Timeout: c.Timeout.Std(), MaxRetries: c.MaxRetries,
		LegacyMaxTokens: c.MaxTokensField == config.MaxTokens,
		Variants:        variants, Prices: llmcost.Prices(c.Prices), Budget: ledger,
		CacheTTL: c.CacheTTL.Std(), Logger: log.With("component", "llm"), Now: now,
	}
	for _, s := range builtin.Specs() {
		o.KnownActions = append(o.KnownActions, s.Name)
	}
	if metrics != nil {
		o.Metrics = metrics
	}
	return o, nil
}
