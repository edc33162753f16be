package evals

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runToy runs the toy suite (worse against baseline) and returns the
// summary, the report folder and the answers.
func runToy(t *testing.T) (*Summary, []CaseResult, *env) {
	t.Helper()
	e := newEnv(t, toyHandler)
	run, sum, err := e.runner.Run(ctxT(t), RunRequest{Suite: "toy", Variant: "worse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	results, err := e.st.Cases(ctxT(t), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sum, results, e
}

func TestReportsEscapeModelOutput(t *testing.T) {
	sum, _, _ := runToy(t)
	page, err := os.ReadFile(sum.HTML)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("model output is not escaped in the HTML report")
	}
	for _, want := range []string{"<svg", "McNemar", "worse", "FAIL", "Worst regressions", "<del>", "<ins>", `id="case-c00"`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	f, err := os.Open(sum.CSV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+2*toyCases || rows[0][0] != "case" || rows[0][7] != "mentions" {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
}

func TestCSVDefusesFormulas(t *testing.T) {
	s := &Suite{Metrics: []MetricSpec{{Name: "m"}}}
	var b bytes.Buffer
	err := WriteCSV(&b, s, &Dataset{Cases: []Case{{ID: "a"}}}, []CaseResult{{CaseID: "a", Variant: "v", Output: "=HYPERLINK(\"x\")", Scores: map[string]Score{"m": {Value: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `'=HYPERLINK`) {
		t.Fatalf("formula not defused: %s", b.String())
	}
}

// TestReportScreenshot renders the HTML report in headless Chromium and
// checks that a real, non-trivial page came out. It is skipped when
// Chromium is not installed, unless PARLEY_REQUIRE_INTEGRATION=1.
func TestReportScreenshot(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("PARLEY_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	sum, _, _ := runToy(t)
	shot := filepath.Join(t.TempDir(), "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
		"--screenshot="+shot, "--window-size=1280,2000", "file://"+sum.HTML)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if dst := os.Getenv("PARLEY_REPORT_SCREENSHOT"); dst != "" { // keep it to look at
		b, _ := os.ReadFile(shot)
		_ = os.WriteFile(dst, b, 0o644)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Fatalf("screenshot is %v", b)
	}
	// A rendered report has text, tables and coloured bars: many distinct
	// colours, and not a blank page.
	colours := map[uint32]bool{}
	nonWhite := 0
	for y := 0; y < 2000; y += 4 {
		for x := 0; x < 1280; x += 4 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
			if r < 0xf000 || g < 0xf000 || b < 0xf000 {
				nonWhite++
			}
		}
	}
	if len(colours) < 20 || nonWhite < 2000 {
		t.Fatalf("screenshot looks blank: %d colours, %d non-white samples", len(colours), nonWhite)
	}
}
