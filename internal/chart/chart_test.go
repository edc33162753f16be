package chart

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"testing"
	"time"
)

var writeTo = flag.String("chart.out", "", "write the sample chart to this PNG file, to look at it")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ramp(name string, n int, f func(i int) float64) Series {
	s := Series{Name: name}
	for i := range n {
		s.Points = append(s.Points, Point{T: t0.Add(time.Duration(i) * time.Minute), V: f(i)})
	}
	return s
}

func percent(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	return img
}

func TestLineIsPNGOfRequestedSize(t *testing.T) {
	s := []Series{
		ramp("checkout", 60, func(i int) float64 { return 0.004 + 0.0003*float64(i) }),
		ramp("payments", 60, func(i int) float64 { return 0.01 + 0.005*math.Sin(float64(i)/6) }),
	}
	for _, size := range []struct{ w, h int }{{0, 0}, {640, 240}, {1200, 400}} {
		b, err := Line(s, Options{Title: "error rate, last 1h", Width: size.w, Height: size.h, FormatValue: percent})
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, b)
		w, h := size.w, size.h
		if w == 0 {
			w, h = 800, 300
		}
		if got := img.Bounds().Size(); got != (image.Point{w, h}) {
			t.Errorf("size = %v, want %dx%d", got, w, h)
		}
		if size.w == 0 && *writeTo != "" {
			if err := os.WriteFile(*writeTo, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDifferentDataDrawsDifferentPixels(t *testing.T) {
	a, err := Line([]Series{ramp("a", 60, func(i int) float64 { return float64(i) })}, Options{Title: "x"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Line([]Series{ramp("a", 60, func(i int) float64 { return float64(60 - i) })}, Options{Title: "x"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Line([]Series{ramp("a", 60, func(i int) float64 { return float64(i) })}, Options{Title: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, again) {
		t.Error("the same data drew different bytes")
	}
	ia, ib := decode(t, a).(*image.RGBA), decode(t, b)
	diff := 0
	for y := 0; y < ia.Bounds().Dy(); y++ {
		for x := 0; x < ia.Bounds().Dx(); x++ {
			if ia.At(x, y) != ib.At(x, y) {
				diff++
			}
		}
	}
	if diff < 500 {
		t.Errorf("rising and falling lines differ in only %d pixels", diff)
	}
}

func TestSeriesColoursAppear(t *testing.T) {
	s := []Series{
		ramp("one", 30, func(i int) float64 { return 1 }),
		ramp("two", 30, func(i int) float64 { return 2 }),
		ramp("three", 30, func(i int) float64 { return 3 }),
	}
	b, err := Line(s, Options{Title: "three lines"})
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, b)
	count := map[[3]uint32]int{}
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			count[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
		}
	}
	for i := range s {
		c := Palette[i]
		if n := count[[3]uint32{uint32(c.R), uint32(c.G), uint32(c.B)}]; n < 100 {
			t.Errorf("series %d colour %v has %d pixels, want a visible line", i, c, n)
		}
	}
}

func TestGapsAndEdgeCases(t *testing.T) {
	withGap := ramp("a", 20, func(i int) float64 {
		if i > 5 && i < 10 {
			return math.NaN()
		}
		return float64(i)
	})
	if _, err := Line([]Series{withGap}, Options{}); err != nil {
		t.Errorf("series with a gap: %v", err)
	}
	single := Series{Name: "one point", Points: []Point{{T: t0, V: 5}}}
	if _, err := Line([]Series{single}, Options{}); err != nil {
		t.Errorf("single point: %v", err)
	}
	flat := ramp("zero", 10, func(int) float64 { return 0 })
	if _, err := Line([]Series{flat}, Options{}); err != nil {
		t.Errorf("all zero: %v", err)
	}
	negative := ramp("neg", 10, func(i int) float64 { return -float64(i) })
	if _, err := Line([]Series{negative}, Options{}); err != nil {
		t.Errorf("negative: %v", err)
	}
	if _, err := Line(nil, Options{}); !errors.Is(err, ErrNoData) {
		t.Errorf("no series: err = %v, want ErrNoData", err)
	}
	nan := ramp("nan", 5, func(int) float64 { return math.NaN() })
	if _, err := Line([]Series{nan}, Options{}); !errors.Is(err, ErrNoData) {
		t.Errorf("only NaN: err = %v, want ErrNoData", err)
	}
	if _, err := Line([]Series{flat}, Options{Width: 10, Height: 10}); err == nil {
		t.Error("10x10 accepted")
	}
	many := make([]Series, 25)
	for i := range many {
		many[i] = ramp(fmt.Sprintf("series-%d", i), 10, func(j int) float64 { return float64(i * j) })
	}
	if _, err := Line(many, Options{}); err != nil {
		t.Errorf("25 series: %v", err)
	}
}

func TestBase2Ticks(t *testing.T) {
	// 500..770 MiB: ticks are round numbers of MiB (200 MiB), not of
	// bytes (200 MB = 190.7 MiB).
	var labels []string
	format := func(v float64) string {
		s := fmt.Sprintf("%g MiB", v/(1<<20))
		labels = append(labels, s)
		return s
	}
	s := ramp("mem", 10, func(i int) float64 { return float64(500+30*i) * (1 << 20) })
	if _, err := Line([]Series{s}, Options{FormatValue: format, Base2: true}); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		var mib float64
		if _, err := fmt.Sscanf(l, "%g MiB", &mib); err != nil || math.Mod(mib, 100) != 0 {
			t.Errorf("tick %q is not a round number of MiB", l)
		}
	}
}

func TestTimeStepLayouts(t *testing.T) {
	for _, c := range []struct {
		span   time.Duration
		layout string
	}{
		{2 * time.Minute, "15:04:05"},
		{time.Hour, "15:04"},
		{3 * 24 * time.Hour, "Jan 2 15:04"},
		{30 * 24 * time.Hour, "Jan 2"},
	} {
		step, layout := timeStep(c.span, 760)
		if layout != c.layout {
			t.Errorf("span %s: layout %q, want %q", c.span, layout, c.layout)
		}
		if n := int(c.span / step); n > 8 || n < 2 {
			t.Errorf("span %s: step %s gives %d labels", c.span, step, n)
		}
	}
}

func BenchmarkLine(b *testing.B) {
	s := []Series{ramp("a", 60, func(i int) float64 { return float64(i) }), ramp("b", 60, func(i int) float64 { return float64(i * i) })}
	for b.Loop() {
		if _, err := Line(s, Options{Title: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
