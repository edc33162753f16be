package incident

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkWebhookToFirstPost measures the path from an Alertmanager
// webhook request (HTTP on 127.0.0.1, auth, validation, queue) to the
// group's first message reaching a local chat sender, including the
// incidents table write on SQLite. One new group per iteration.
func BenchmarkWebhookToFirstPost(b *testing.B) {
	h := startManager(b, openDB(b, b.TempDir()), Options{QueueSize: 4096})
	labels := map[string]string{"alertname": "HighErrorRate", "service": "checkout", "namespace": "prod"}
	var worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		p := payload(fmt.Sprintf("bench/%d", i), labels, alert("HighErrorRate", fmt.Sprintf("fp%d", i), Firing, "service", "checkout"))
		start := time.Now()
		if code := h.post(b, p); code != 200 {
			b.Fatalf("post = %d", code)
		}
		for r := range h.sender.got {
			if r.UpdateOf == "" && r.Thread == "" {
				break
			}
		}
		worst = max(worst, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
