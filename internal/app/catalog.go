package app

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/parley-chatops/parley/actions/loki"
	"github.com/parley-chatops/parley/actions/prometheus"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/config"
)

// Catalog returns the specs of every action a configuration offers: the
// built-ins (internal/builtin, each declared beside its implementation) and
// then the user-defined ones. It builds no action and needs no server, so
// the offline commands (classify, eval routing, policy check, config
// validate) route and check with exactly the list Build registers; policy
// loading, config validation, routing datasets, help, the LLM tool list
// and evaluations all read it.
func Catalog(cfg *config.Config) ([]action.Spec, error) {
	specs := builtin.Specs()
	userDefined, err := userDefinedSpecs(cfg)
	if err != nil {
		return nil, err
	}
	specs = append(specs, userDefined...)
	if err := checkSpecs(specs); err != nil {
		return nil, err
	}
	return specs, nil
}

// checkSpecs checks each spec and that no two share a name.
func checkSpecs(specs []action.Spec) error {
	seen := map[string]bool{action.None: true}
	for _, s := range specs {
		if err := s.Check(); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("action %q is declared twice", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// userDefinedSpecs are the specs of the actions a configuration adds from
// action files (actions_dir), read without their secrets.
func userDefinedSpecs(cfg *config.Config) ([]action.Spec, error) { return offlineSpecs(cfg.ActionsDir) }

// specNames lists the names of specs, in order.
func specNames(specs []action.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// findSpec returns the spec named name.
func findSpec(specs []action.Spec, name string) (action.Spec, bool) {
	for _, s := range specs {
		if s.Name == name {
			return s, true
		}
	}
	return action.Spec{}, false
}

// checkConfig checks what the configuration file alone cannot: that
// channel bindings name actions of the catalog, and that the integrations'
// options (PromQL templates, the Loki selector) are usable. serve refuses
// to start on these; config validate reports them.
func checkConfig(cfg *config.Config, specs []action.Spec) error {
	if err := cfg.CheckActions(specNames(specs)); err != nil {
		return err
	}
	if _, err := prometheus.New(prometheusOptions(cfg, nil, nil)); err != nil {
		return fmt.Errorf("%s: %w", cfg.File(), err)
	}
	if err := lokiOptions(cfg, nil, nil).Validate(); err != nil {
		// "loki: set both ...": what is wrong with the section, without
		// the "not configured" a request would be answered with
		return fmt.Errorf("%s: %s", cfg.File(), strings.TrimPrefix(err.Error(), action.ErrNotConfigured.Error()+": "))
	}
	return nil
}

// prometheusOptions are prometheus.query's options from the configuration;
// log may be nil.
func prometheusOptions(cfg *config.Config, now func() time.Time, log *slog.Logger) prometheus.Options {
	po := prometheus.Options{
		URL: cfg.Prometheus.URL, Timeout: cfg.Prometheus.Timeout.Std(), BearerToken: cfg.Prometheus.BearerToken.Value(),
		Templates: cfg.Prometheus.Templates, DefaultWindow: cfg.Prometheus.DefaultWindow.Std(),
	}
	po.Now = now
	if log != nil {
		po.Logger = log.With("action", action.PrometheusQuery)
	}
	return po
}

// lokiOptions are loki.query's options from the configuration; log may be
// nil.
func lokiOptions(cfg *config.Config, now func() time.Time, log *slog.Logger) loki.Options {
	lo := loki.Options{
		URL: cfg.Loki.URL, TenantID: cfg.Loki.Tenant, BearerToken: cfg.Loki.BearerToken.Value(),
		Timeout: cfg.Loki.Timeout.Std(), Selector: cfg.Loki.Selector, LevelLabel: cfg.Loki.LevelLabel,
		DefaultWindow: cfg.Loki.DefaultWindow.Std(), DefaultLimit: cfg.Loki.DefaultLimit,
		GrafanaURL: cfg.Loki.GrafanaURL, GrafanaDatasource: cfg.Loki.GrafanaDatasource,
	}
	lo.Now = now
	if log != nil {
		lo.Logger = log.With("action", action.LokiQuery)
	}
	return lo
}
