package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/console"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/store"
)

// BenchmarkPipeline plays the benchmark command script
// (scripts/bench/commands.txt: scale, status, rollback, restart, logs,
// metrics, eval, each request from its own user so that no rate limit
// applies) through the whole path: console adapters reading transcript
// lines, the pipeline with the default policy and the rules router, the
// sandbox cluster, the audit log and the confirmation store on a durable
// SQLite file (synchronous=FULL) or on :memory:, and the console renderer
// writing every reply.
//
// One op is one request. Besides ns/op and the allocations it reports
// req/s and the p50 and p99 latency of a request (from the line read to
// the last reply written). "sequential" is one conversation, a request
// answered before the next is read, as `parley chat --transcript`;
// "conversations=64" is 64 console conversations at once on one
// pipeline.
//
// make bench runs it; scripts/bench-vs-hubot.sh measures the binary on
// the same script, wall time and peak RSS.
func BenchmarkPipeline(b *testing.B) {
	templates := benchTemplates(b)
	for _, bc := range []struct {
		name          string
		db            string
		conversations int
	}{
		{"sqlite/sequential", "file", 1},
		{"sqlite/conversations=64", "file", 64},
		{"memory/sequential", store.Memory, 1},
		{"memory/conversations=64", store.Memory, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := config.Default()
			cfg.Database = bc.db
			if bc.db == "file" {
				cfg.Database = filepath.Join(b.TempDir(), "parley.db")
			}
			// As `parley chat` run in the repository: the eval suites
			// are known, so "run the intent-routing eval" is routed.
			cfg.Evals.Dir = filepath.Join("..", "..", "evals")
			cfg.Evals.ReportsDir = filepath.Join(b.TempDir(), "reports")
			ctx := context.Background()
			out := &countingWriter{}
			sender := console.New(console.Config{Out: out})
			p, err := Build(ctx, Options{Config: cfg}, sender)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := p.Close(ctx); err != nil {
					b.Error(err)
				}
			}()
			// Each conversation plays its share of the script through its
			// own console adapter.
			scripts := make([]strings.Builder, bc.conversations)
			for i := range b.N {
				scripts[i%bc.conversations].WriteString(benchLine(templates, i))
			}
			lat := make([][]time.Duration, bc.conversations)
			seq0, _, err := p.Audit.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			commits0 := p.Audit.Commits()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, bc.conversations)
			for c := range bc.conversations {
				wg.Go(func() {
					con := console.New(console.Config{In: strings.NewReader(scripts[c].String()), Out: io.Discard, Transcript: true})
					h := &timedHandler{next: p.Pipeline, conv: c, lat: make([]time.Duration, 0, b.N/bc.conversations+1)}
					if err := con.Run(ctx, h); err != nil {
						errs <- err
					}
					lat[c] = h.lat
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			all := slices.Concat(lat...)
			if len(all) != b.N {
				b.Fatalf("%d requests handled, want %d", len(all), b.N)
			}
			if out.lines() < b.N {
				b.Fatalf("%d reply lines for %d requests", out.lines(), b.N)
			}
			seq, _, err := p.Audit.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			slices.Sort(all)
			b.ReportMetric(float64(seq-seq0)/float64(max(p.Audit.Commits()-commits0, 1)), "events/commit")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// timedHandler hands each message on, timing it, and gives it an event id
// of its conversation (each console adapter numbers its own lines).
type timedHandler struct {
	next chat.Handler
	conv int
	lat  []time.Duration
}

func (h *timedHandler) Handle(ctx context.Context, msg chat.Message) {
	msg.EventID = fmt.Sprintf("c%d-%s", h.conv, msg.EventID)
	start := time.Now()
	h.next.Handle(ctx, msg)
	h.lat = append(h.lat, time.Since(start))
}

// countingWriter counts the reply lines written, so a run that answered
// nothing fails.
type countingWriter struct {
	mu sync.Mutex
	n  int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

// WriteString is there as it is on the *os.File the console writes to:
// without it, io.WriteString would copy every reply into a []byte that
// the real process does not make.
func (w *countingWriter) WriteString(s string) (int, error) {
	w.mu.Lock()
	w.n += strings.Count(s, "\n")
	w.mu.Unlock()
	return len(s), nil
}

func (w *countingWriter) lines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// benchTemplates reads scripts/bench/commands.txt.
func benchTemplates(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "..", "scripts", "bench", "commands.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Fatal("scripts/bench/commands.txt has no commands")
	}
	return out
}

// benchLine is request i of the script, expanded as
// scripts/bench/transcript.sh does, from user u<i+1>.
func benchLine(templates []string, i int) string {
	k := len(templates)
	r := strings.NewReplacer(
		"{deployment}", []string{"checkout", "payments", "auth", "cart"}[(i/k)%4],
		"{namespace}", []string{"prod", "staging"}[(i/(4*k))%2],
		"{replicas}", fmt.Sprint(2+(i/k)%7),
	)
	return fmt.Sprintf("u%05d@ops: %s\n", i+1, r.Replace(templates[i%k]))
}

// TestBenchLineMatchesTranscriptScript: the Go benchmark and
// scripts/bench/transcript.sh play the same requests.
func TestBenchLineMatchesTranscriptScript(t *testing.T) {
	const n = 120
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "bench", "transcript.sh"), fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatalf("scripts/bench/transcript.sh: %v", err)
	}
	templates := benchTemplates(t)
	var want strings.Builder
	for i := range n {
		want.WriteString(benchLine(templates, i))
	}
	if string(out) != want.String() {
		t.Errorf("transcript.sh %d:\n%s\nwant (benchLine):\n%s", n, out, want.String())
	}
}
