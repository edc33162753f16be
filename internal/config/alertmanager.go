package config

import (
	"fmt"
	"strings"
	"time"
)

// Alertmanager is the Alertmanager API (v2) that alertmanager.alerts reads
// and alertmanager.silence and alertmanager.expire write. Without a URL
// those actions stay registered and answer that Alertmanager is not
// configured.
//
//	alertmanager:
//	  url: http://alertmanager:9093
//	  external_url: https://alerts.example.com   # links in replies
//	  timeout: 10s
//	  auth: {bearer_token: {env: ALERTMANAGER_API_TOKEN}}   # or basic: {user, password}
//	  service_label: service
type Alertmanager struct {
	// URL is where Parley reaches Alertmanager's API.
	URL string `yaml:"url"`
	// ExternalURL is Alertmanager's address for people, used in links;
	// empty means URL.
	ExternalURL string `yaml:"external_url"`
	// Timeout bounds each API call (default 10s).
	Timeout Duration `yaml:"timeout"`
	// Auth is sent with every call: a bearer token (Alertmanager behind an
	// authenticating proxy) or basic auth (Alertmanager's web config).
	// Optional.
	Auth ClientAuth `yaml:"auth"`
	// ServiceLabel is the alert label the actions' service parameter
	// matches (default "service").
	ServiceLabel string `yaml:"service_label"`
}

// ClientAuth is the credentials Parley sends to a backend: a bearer token
// or basic auth, at most one.
type ClientAuth struct {
	BearerToken Secret     `yaml:"bearer_token"`
	Basic       *BasicAuth `yaml:"basic"`
}

// Alertmanager defaults and bounds.
const (
	DefaultAlertmanagerTimeout      = 10 * time.Second
	DefaultAlertmanagerServiceLabel = "service"
)

func (a *Alertmanager) defaults() {
	if a.Timeout == 0 {
		a.Timeout = Duration(DefaultAlertmanagerTimeout)
	}
	if a.ServiceLabel == "" {
		a.ServiceLabel = DefaultAlertmanagerServiceLabel
	}
}

func (a *Alertmanager) resolveSecrets(resolve func(string, *Secret)) {
	resolve("alertmanager.auth.bearer_token", &a.Auth.BearerToken)
	if a.Auth.Basic != nil {
		resolve("alertmanager.auth.basic.password", &a.Auth.Basic.Password)
	}
}

func (a *Alertmanager) validate(checkURL func(name, u string)) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkURL("alertmanager.url", a.URL)
	checkURL("alertmanager.external_url", a.ExternalURL)
	auth := a.Auth.BearerToken.Env != "" || a.Auth.BearerToken.File != "" || a.Auth.Basic != nil
	if a.URL == "" && (a.ExternalURL != "" || auth) {
		bad("alertmanager.url: required when the alertmanager section sets anything else")
	}
	if t := a.Timeout.Std(); t < time.Second || t > 2*time.Minute {
		bad("alertmanager.timeout: %s is not between 1s and 2m", t)
	}
	if !labelNameRE.MatchString(a.ServiceLabel) {
		bad("alertmanager.service_label: %q is not a label name", a.ServiceLabel)
	}
	switch b := a.Auth.Basic; {
	case b != nil && (a.Auth.BearerToken.Env != "" || a.Auth.BearerToken.File != ""):
		bad("alertmanager.auth: give bearer_token or basic, not both")
	case b != nil:
		if b.User == "" || strings.Contains(b.User, ":") {
			bad("alertmanager.auth.basic.user: required, without a colon")
		}
		if b.Password.Env == "" && b.Password.File == "" {
			bad("alertmanager.auth.basic.password: required (env or file)")
		}
	}
	return errs
}
