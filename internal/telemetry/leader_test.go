package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLeaderGauge(t *testing.T) {
	m := New(Options{})
	for _, c := range []struct {
		leading bool
		want    string
	}{{true, "1"}, {false, "0"}, {true, "1"}} {
		m.IsLeader(c.leading)
		want := `
# HELP parley_leader 1 while this replica leads (holds the chat connections), else 0. Without leader election the only replica always leads.
# TYPE parley_leader gauge
parley_leader ` + c.want + "\n"
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_leader"); err != nil {
			t.Errorf("after IsLeader(%v): %v", c.leading, err)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.IsLeader(true) // must not panic
}
