package promtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Target is one scrape job.
type Target struct {
	Job         string   // job label; default "test"
	Addrs       []string // host:port of each target
	MetricsPath string   // default /metrics
}

// Config describes the Prometheus to start.
type Config struct {
	Targets []Target
	// ScrapeInterval and EvaluationInterval default to 1s, so tests see
	// new numbers quickly.
	ScrapeInterval     time.Duration
	EvaluationInterval time.Duration
	// RuleFiles are rule group files by file name ("alerts.yml") and
	// YAML content; they are written beside the config and loaded.
	RuleFiles map[string]string
	// Alertmanagers are the host:port of Alertmanagers to send alerts to.
	Alertmanagers []string
	// Backfill is OpenMetrics text ("# EOF" terminated, timestamps in
	// seconds) turned into TSDB blocks with promtool before Prometheus
	// starts, so tests can have hours of history at once.
	Backfill string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	URL        string // http://127.0.0.1:PORT
	Addr       string // 127.0.0.1:PORT
	Dir        string // config, rule files and TSDB
	ConfigFile string
	API        v1.API
}

// StartPrometheus writes a config for c, starts Prometheus on a free
// 127.0.0.1 port with its TSDB in a temporary directory, waits until it is
// ready and stops it when the test ends.
func StartPrometheus(t testing.TB, c Config) *Prometheus {
	t.Helper()
	Need(t, PrometheusBinary)
	dir := t.TempDir()
	tsdb := filepath.Join(dir, "data")
	if err := os.MkdirAll(tsdb, 0o700); err != nil {
		t.Fatal(err)
	}
	if c.Backfill != "" {
		Need(t, PromtoolBinary)
		backfill(t, dir, tsdb, c.Backfill)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfgFile, c.render(t, dir))

	addr := start(t, "prometheus", PrometheusBinary, func(addr string) []string {
		return append([]string{
			"--config.file=" + cfgFile,
			"--storage.tsdb.path=" + tsdb,
			"--web.listen-address=" + addr,
			"--log.level=warn",
			// The first alerts are often evaluated before the Alertmanager
			// is discovered and dropped; resend quickly, not after 1m.
			"--rules.alert.resend-delay=1s",
		}, c.ExtraArgs...)
	})
	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	return &Prometheus{URL: "http://" + addr, Addr: addr, Dir: dir, ConfigFile: cfgFile, API: v1.NewAPI(client)}
}

func (c Config) render(t testing.TB, dir string) string {
	t.Helper()
	every := func(d time.Duration) string {
		if d <= 0 {
			d = time.Second
		}
		return model.Duration(d).String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		every(c.ScrapeInterval), every(c.ScrapeInterval), every(c.EvaluationInterval))
	if len(c.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, name := range slices.Sorted(maps.Keys(c.RuleFiles)) {
			if name != filepath.Base(name) {
				t.Fatalf("rule file name %q must be a plain file name", name)
			}
			p := filepath.Join(dir, name)
			writeFile(t, p, c.RuleFiles[name])
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(p))
		}
	}
	if len(c.Alertmanagers) > 0 {
		b.WriteString("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n")
		for _, a := range c.Alertmanagers {
			fmt.Fprintf(&b, "            - %s\n", strconv.Quote(a))
		}
	}
	b.WriteString("scrape_configs:\n")
	if len(c.Targets) == 0 {
		b.WriteString("  []\n")
	}
	for _, tg := range c.Targets {
		job := tg.Job
		if job == "" {
			job = "test"
		}
		fmt.Fprintf(&b, "  - job_name: %s\n", strconv.Quote(job))
		if tg.MetricsPath != "" {
			fmt.Fprintf(&b, "    metrics_path: %s\n", strconv.Quote(tg.MetricsPath))
		}
		b.WriteString("    static_configs:\n      - targets:\n")
		for _, a := range tg.Addrs {
			fmt.Fprintf(&b, "          - %s\n", strconv.Quote(a))
		}
	}
	return b.String()
}

func backfill(t testing.TB, dir, tsdb, openMetrics string) {
	t.Helper()
	in := filepath.Join(dir, "backfill.om")
	writeFile(t, in, openMetrics)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, PromtoolBinary, "tsdb", "create-blocks-from", "openmetrics", in, tsdb).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool backfill: %v\n%s", err, tail(string(out), 3000))
	}
}

// Query runs an instant query now and returns the vector it answered.
func (p *Prometheus) Query(ctx context.Context, query string) (model.Vector, error) {
	v, _, _, err := p.API.Query(ctx, query, time.Now())
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %q returned %s, not a vector", query, v.Type())
	}
	return vec, nil
}

// WaitForValue polls query until it returns exactly one sample for which
// ok is true, for at most timeout.
func (p *Prometheus) WaitForValue(t testing.TB, timeout time.Duration, query string, ok func(float64) bool) float64 {
	t.Helper()
	var got float64
	WaitFor(t, timeout, query, func(ctx context.Context) error {
		vec, err := p.Query(ctx, query)
		if err != nil {
			return err
		}
		if len(vec) != 1 {
			return fmt.Errorf("%d samples", len(vec))
		}
		got = float64(vec[0].Value)
		if !ok(got) {
			return fmt.Errorf("value %v", got)
		}
		return nil
	})
	return got
}

// WaitForTargets waits until every configured target has been scraped
// successfully (up == 1) at least once.
func (p *Prometheus) WaitForTargets(t testing.TB, timeout time.Duration, n int) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("%d targets up", n), func(ctx context.Context) error {
		vec, err := p.Query(ctx, "up == 1")
		if err != nil {
			return err
		}
		if len(vec) < n {
			return fmt.Errorf("%d of %d targets up", len(vec), n)
		}
		return nil
	})
}
