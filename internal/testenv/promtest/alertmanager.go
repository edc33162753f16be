package promtest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"
)

// AlertmanagerConfig describes the Alertmanager to start.
type AlertmanagerConfig struct {
	// WebhookURL receives every alert (a single "webhook" receiver on the
	// root route), unless Config is set.
	WebhookURL string
	// GroupWait, GroupInterval and RepeatInterval of the root route;
	// defaults 1s, 1s and 1h so tests see notifications quickly.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// GroupBy of the root route; default ["alertname"].
	GroupBy []string
	// Config, when set, is the whole alertmanager.yml, used as is.
	Config string
	// BasicAuth, when set, makes Alertmanager demand these credentials on
	// every endpoint (its web configuration, --web.config.file, with a
	// bcrypt hash of the password).
	BasicAuth *BasicAuth
}

// BasicAuth is a user and password for AlertmanagerConfig.BasicAuth.
type BasicAuth struct {
	User, Password string
}

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	URL        string // http://127.0.0.1:PORT
	Addr       string // 127.0.0.1:PORT, for Config.Alertmanagers
	Dir        string
	ConfigFile string
}

// StartAlertmanager starts Alertmanager on a free 127.0.0.1 port with
// clustering disabled, waits until it is ready and stops it when the test
// ends.
func StartAlertmanager(t testing.TB, c AlertmanagerConfig) *Alertmanager {
	t.Helper()
	Need(t, AlertmanagerBinary)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfgFile, c.render(t))
	var web []string
	var auth []func(*http.Request)
	if b := c.BasicAuth; b != nil {
		hash, err := bcrypt.GenerateFromPassword([]byte(b.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		webFile := filepath.Join(dir, "web.yml")
		writeFile(t, webFile, fmt.Sprintf("basic_auth_users:\n  %s: %s\n", strconv.Quote(b.User), strconv.Quote(string(hash))))
		web = []string{"--web.config.file=" + webFile}
		auth = append(auth, func(r *http.Request) { r.SetBasicAuth(b.User, b.Password) })
	}
	addr := start(t, "alertmanager", AlertmanagerBinary, func(addr string) []string {
		return append([]string{
			"--config.file=" + cfgFile,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--cluster.listen-address=",
			"--log.level=warn",
		}, web...)
	}, auth...)
	return &Alertmanager{URL: "http://" + addr, Addr: addr, Dir: dir, ConfigFile: cfgFile}
}

func (c AlertmanagerConfig) render(t testing.TB) string {
	t.Helper()
	if c.Config != "" {
		return c.Config
	}
	if c.WebhookURL == "" {
		t.Fatal("promtest: AlertmanagerConfig needs WebhookURL or Config")
	}
	d := func(v, def time.Duration) string {
		if v <= 0 {
			v = def
		}
		return model.Duration(v).String()
	}
	groupBy := c.GroupBy
	if len(groupBy) == 0 {
		groupBy = []string{"alertname"}
	}
	by := ""
	for i, g := range groupBy {
		if i > 0 {
			by += ", "
		}
		by += strconv.Quote(g)
	}
	return fmt.Sprintf(`route:
  receiver: webhook
  group_by: [%s]
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: webhook
    webhook_configs:
      - url: %s
        send_resolved: true
`, by, d(c.GroupWait, time.Second), d(c.GroupInterval, time.Second), d(c.RepeatInterval, time.Hour), strconv.Quote(c.WebhookURL))
}
