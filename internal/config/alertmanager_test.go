package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertmanager(t *testing.T) {
	secret := "am-api-" + "SECRETVALUE"
	getenv := env(map[string]string{"AM_API_TOKEN": secret, "AM_PW": secret})

	c, err := Parse([]byte("{}\n"), "empty.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Alertmanager; a.URL != "" || a.Timeout.Std() != DefaultAlertmanagerTimeout || a.ServiceLabel != "service" {
		t.Errorf("defaults = %+v, want no URL, 10s, label service", a)
	}

	c, err = Parse([]byte(`
alertmanager:
  url: http://alertmanager:9093
  external_url: https://alerts.example.com
  timeout: 3s
  auth: {bearer_token: {env: AM_API_TOKEN}}
  service_label: app
`), "parley.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alertmanager
	if a.URL != "http://alertmanager:9093" || a.ExternalURL != "https://alerts.example.com" || a.Timeout.Std() != 3*time.Second ||
		a.Auth.BearerToken.Value() != secret || a.ServiceLabel != "app" {
		t.Errorf("alertmanager = %+v", a)
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), secret) || !strings.Contains(b.String(), "<secret> (env AM_API_TOKEN)") {
		t.Errorf("dump:\n%s", b.String())
	}

	c, err = Parse([]byte("alertmanager: {url: 'https://am:9093', auth: {basic: {user: parley, password: {env: AM_PW}}}}\n"), "basic.yaml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Alertmanager.Auth.Basic.Password.Value() != secret {
		t.Errorf("basic auth password not resolved")
	}

	for src, want := range map[string]string{
		"alertmanager: {url: 'ftp://am'}\n":                                                                                       `alertmanager.url: "ftp://am" is not an http(s) URL`,
		"alertmanager: {url: 'http://u:p@am:9093'}\n":                                                                             "credentials in the URL are not allowed",
		"alertmanager: {url: 'http://am', external_url: 'am.example.com'}\n":                                                      "alertmanager.external_url",
		"alertmanager: {external_url: 'http://am'}\n":                                                                             "alertmanager.url: required",
		"alertmanager: {auth: {bearer_token: {env: AM_API_TOKEN}}}\n":                                                             "alertmanager.url: required",
		"alertmanager: {url: 'http://am', timeout: 0.5s}\n":                                                                       "alertmanager.timeout: 500ms is not between 1s and 2m",
		"alertmanager: {url: 'http://am', timeout: 1h}\n":                                                                         "alertmanager.timeout: 1h0m0s",
		"alertmanager: {url: 'http://am', service_label: 'app-name'}\n":                                                           `alertmanager.service_label: "app-name" is not a label name`,
		"alertmanager: {url: 'http://am', auth: {bearer_token: inline}}\n":                                                        "line 1",
		"alertmanager: {url: 'http://am', auth: {bearer_token: {env: UNSET}}}\n":                                                  "alertmanager.auth.bearer_token: environment variable UNSET is empty or unset",
		"alertmanager: {url: 'http://am', auth: {basic: {user: u}}}\n":                                                            "alertmanager.auth.basic.password: required",
		"alertmanager: {url: 'http://am', auth: {basic: {user: 'a:b', password: {env: AM_PW}}}}\n":                                "without a colon",
		"alertmanager: {url: 'http://am', auth: {bearer_token: {env: AM_API_TOKEN}, basic: {user: u, password: {env: AM_PW}}}}\n": "not both",
		"alertmanager: {url: 'http://am', silence_label: x}\n":                                                                    "field silence_label not found",
	} {
		_, err := Parse([]byte(src), "bad.yaml", getenv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", src, err, want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}
