package app

import (
	"github.com/parley-chatops/parley/actions/alertmanager"
	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/incident"
)

// onCallSpecs are the specs of the on-call actions, declared next to their
// implementations.
func onCallSpecs() []action.Spec {
	return []action.Spec{
		alertmanager.AlertsSpec(), alertmanager.SilenceSpec(), alertmanager.ExpireSpec(),
		kubernetes.PodsSpec(), kubernetes.LogsSpec(), kubernetes.ChangesSpec(),
	}
}

// builtinSpecs are the specs of every built-in action: what policies,
// channel bindings and the command line are checked against.
func builtinSpecs() []action.Spec { return append(action.Catalog(), onCallSpecs()...) }

// onCallActions are the on-call actions, one line each: Alertmanager's
// alerts and silences, and the pods, logs and recent changes of the
// cluster the kubernetes actions use. Without an alertmanager URL the
// alertmanager actions answer how to configure one.
func onCallActions(cfg *config.Config, k8s kubernetes.Options) ([]action.Action, error) {
	am := cfg.Alertmanager
	o := alertmanager.Options{URL: am.URL, ExternalURL: am.ExternalURL, Timeout: am.Timeout.Std(),
		BearerToken: am.Auth.BearerToken.Value(), ServiceLabel: am.ServiceLabel, Now: k8s.Now}
	if b := am.Auth.Basic; b != nil {
		o.BasicUser, o.BasicPassword = b.User, b.Password.Value()
	}
	amc, err := alertmanager.NewClient(o)
	if err != nil {
		return nil, err
	}
	pods, err := kubernetes.NewPods(k8s)
	if err != nil {
		return nil, err
	}
	logs, err := kubernetes.NewLogs(k8s, kubernetes.LogsOptions{NoLogStore: cfg.Loki.URL == ""})
	if err != nil {
		return nil, err
	}
	changes, err := kubernetes.NewChanges(k8s)
	if err != nil {
		return nil, err
	}
	return []action.Action{
		alertmanager.NewAlerts(amc),
		alertmanager.NewSilencer(amc),
		alertmanager.NewExpirer(amc),
		pods,
		logs,
		changes,
	}, nil
}

// silenceOffer is the incident messages' "Silence 1h" button, offered when
// Alertmanager's API is configured and alertmanager.silence registered.
func silenceOffer(cfg *config.Config, acts *action.Registry) *incident.SilenceOffer {
	a, ok := acts.Get(alertmanager.SilenceName)
	if !ok || cfg.Alertmanager.URL == "" {
		return nil
	}
	return &incident.SilenceOffer{Spec: a.Spec(), ServiceLabel: cfg.Alertmanager.ServiceLabel,
		Duration: action.FormatDuration(alertmanager.DefaultSilence)}
}
