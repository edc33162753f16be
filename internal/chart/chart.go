// Package chart draws small PNG line charts of time series for chat replies:
// a title, a y axis with unit-formatted labels, time labels, light grid
// lines, one colour per series and a legend. It uses only image/draw and the
// fixed basicfont face, so it adds almost nothing to the binary and draws
// the same bytes for the same input on every machine.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Point is one sample.
type Point struct {
	T time.Time
	V float64 // NaN or ±Inf leaves a gap in the line
}

// Series is one named line.
type Series struct {
	Name   string
	Points []Point // in time order
}

// Options shape a chart. The zero value draws an 800x300 chart in UTC with
// plain numeric labels.
type Options struct {
	Title  string
	Width  int // default 800
	Height int // default 300
	// FormatValue writes a y-axis label, with its unit ("250 ms", "2.5%").
	// Nil writes the number alone.
	FormatValue func(float64) string
	// Location is the time zone of the time labels; nil means UTC.
	Location *time.Location
	// Base2 puts y ticks at round multiples of powers of 1024 (256 MiB,
	// 512 MiB) instead of powers of ten: for bytes.
	Base2 bool
	// MaxSeries caps the lines drawn (default 10); the legend says how
	// many more there were.
	MaxSeries int
}

// ErrNoData is returned when no series has a finite point to draw.
var ErrNoData = errors.New("chart: no data points")

const (
	defaultWidth  = 800
	defaultHeight = 300
	maxDimension  = 4000
)

// Palette is the colour of each series, in order (Tableau 10).
var Palette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0xe1, 0x57, 0x59, 0xff},
	{0x76, 0xb7, 0xb2, 0xff}, {0x59, 0xa1, 0x4f, 0xff}, {0xed, 0xc9, 0x48, 0xff},
	{0xb0, 0x7a, 0xa1, 0xff}, {0xff, 0x9d, 0xa7, 0xff}, {0x9c, 0x75, 0x5f, 0xff},
	{0xba, 0xb0, 0xac, 0xff},
}

var (
	white     = color.RGBA{0xff, 0xff, 0xff, 0xff}
	textColor = color.RGBA{0x33, 0x33, 0x33, 0xff}
	axisColor = color.RGBA{0x99, 0x99, 0x99, 0xff}
	gridColor = color.RGBA{0xe6, 0xe6, 0xe6, 0xff}
	face      = basicfont.Face7x13
)

// Line draws the series as a PNG line chart.
func Line(series []Series, o Options) ([]byte, error) {
	if o.Width == 0 {
		o.Width = defaultWidth
	}
	if o.Height == 0 {
		o.Height = defaultHeight
	}
	if o.Width < 200 || o.Height < 120 || o.Width > maxDimension || o.Height > maxDimension {
		return nil, fmt.Errorf("chart: size %dx%d out of range (200x120 to %dx%d)", o.Width, o.Height, maxDimension, maxDimension)
	}
	if o.FormatValue == nil {
		o.FormatValue = formatNumber
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = len(Palette)
	}
	hidden := 0
	if len(series) > o.MaxSeries {
		hidden = len(series) - o.MaxSeries
		series = series[:o.MaxSeries]
	}

	// Data bounds.
	var tMin, tMax time.Time
	vMin, vMax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			if !finite(p.V) {
				continue
			}
			if tMin.IsZero() || p.T.Before(tMin) {
				tMin = p.T
			}
			if tMax.IsZero() || p.T.After(tMax) {
				tMax = p.T
			}
			vMin = math.Min(vMin, p.V)
			vMax = math.Max(vMax, p.V)
		}
	}
	if math.IsInf(vMin, 1) {
		return nil, ErrNoData
	}
	if !tMax.After(tMin) { // a single instant: give it some width
		tMin, tMax = tMin.Add(-30*time.Second), tMax.Add(30*time.Second)
	}
	// Rates, latencies and sizes read honestly from zero.
	if vMin > 0 {
		vMin = 0
	}
	scale := 1.0
	if o.Base2 {
		for m := math.Max(math.Abs(vMin), math.Abs(vMax)); m/scale >= 1024; scale *= 1024 {
		}
	}
	ticks, lo, hi := niceTicks(vMin/scale, vMax/scale, 5)
	for i := range ticks {
		ticks[i] *= scale
	}
	lo, hi = lo*scale, hi*scale

	img := image.NewRGBA(image.Rect(0, 0, o.Width, o.Height))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)

	// Plot area: room for y labels on the left, title and legend on top,
	// time labels below.
	labelW := 0
	for _, v := range ticks {
		labelW = max(labelW, textWidth(o.FormatValue(v)))
	}
	legendRows := legendLayout(series, hidden, o.Width-20)
	top := 28 + 16*len(legendRows)
	plot := image.Rect(labelW+18, top, o.Width-20, o.Height-28)
	if plot.Dx() < 50 || plot.Dy() < 30 {
		return nil, fmt.Errorf("chart: %dx%d is too small for %d series", o.Width, o.Height, len(series))
	}

	drawText(img, 10, 18, o.Title, textColor, true)

	x := func(t time.Time) float64 {
		return float64(plot.Min.X) + float64(t.Sub(tMin))/float64(tMax.Sub(tMin))*float64(plot.Dx()-1)
	}
	y := func(v float64) float64 {
		return float64(plot.Max.Y-1) - (v-lo)/(hi-lo)*float64(plot.Dy()-1)
	}

	// Grid and y labels.
	for _, v := range ticks {
		py := int(math.Round(y(v)))
		hline(img, plot.Min.X, plot.Max.X, py, gridColor)
		label := o.FormatValue(v)
		drawText(img, plot.Min.X-6-textWidth(label), py+4, label, textColor, false)
	}
	// Time labels.
	step, layout := timeStep(tMax.Sub(tMin), plot.Dx())
	for t := tMin.In(o.Location).Truncate(step); !t.After(tMax); t = t.Add(step) {
		if t.Before(tMin) {
			continue
		}
		px := int(math.Round(x(t)))
		vline(img, px, plot.Min.Y, plot.Max.Y, gridColor)
		vline(img, px, plot.Max.Y, plot.Max.Y+4, axisColor)
		label := t.In(o.Location).Format(layout)
		lx := min(max(px-textWidth(label)/2, 0), o.Width-textWidth(label))
		drawText(img, lx, plot.Max.Y+17, label, textColor, false)
	}
	// Axes.
	hline(img, plot.Min.X, plot.Max.X, plot.Max.Y, axisColor)
	vline(img, plot.Min.X, plot.Min.Y, plot.Max.Y, axisColor)

	// Lines, clipped to the plot area. Each series is drawn as coverage
	// first and painted once, so joints are as smooth as the segments.
	clip := plot.Inset(-1)
	for i, s := range series {
		cov := newCoverage(clip)
		var prev *Point
		for j := range s.Points {
			p := &s.Points[j]
			if !finite(p.V) {
				prev = nil
				continue
			}
			if prev == nil {
				cov.line(x(p.T)-1, y(p.V), x(p.T)+1, y(p.V)) // a lone point stays visible
			} else {
				cov.line(x(prev.T), y(prev.V), x(p.T), y(p.V))
			}
			prev = p
		}
		cov.paint(img, Palette[i%len(Palette)])
	}

	// Legend.
	for r, row := range legendRows {
		ly := 30 + 16*r
		for _, it := range row {
			if it.series >= 0 {
				c := Palette[it.series%len(Palette)]
				draw.Draw(img, image.Rect(it.x, ly-4, it.x+14, ly-1), &image.Uniform{c}, image.Point{}, draw.Src)
				drawText(img, it.x+18, ly+1, it.text, textColor, false)
			} else {
				drawText(img, it.x, ly+1, it.text, axisColor, false)
			}
		}
	}

	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("chart: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

type legendItem struct {
	x      int
	text   string
	series int // -1: a note, not a series
}

// legendLayout places one entry per series left to right, wrapping rows,
// right-aligned under the title. Long names are shortened.
func legendLayout(series []Series, hidden int, right int) [][]legendItem {
	if len(series) < 2 && hidden == 0 {
		return nil // the title names a single series
	}
	var rows [][]legendItem
	var row []legendItem
	x := 10
	add := func(text string, idx int) {
		w := textWidth(text) + 30
		if idx < 0 {
			w = textWidth(text) + 12
		}
		if x+w > right && len(row) > 0 {
			rows = append(rows, row)
			row, x = nil, 10
		}
		row = append(row, legendItem{x: x, text: text, series: idx})
		x += w
	}
	for i, s := range series {
		name := s.Name
		if name == "" {
			name = "value"
		}
		if r := []rune(name); len(r) > 48 {
			name = string(r[:47]) + "…"
		}
		add(name, i)
	}
	if hidden > 0 {
		add(fmt.Sprintf("(+%d more not drawn)", hidden), -1)
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	if len(rows) > 4 {
		rows = rows[:4]
	}
	return rows
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) (ticks []float64, tlo, thi float64) {
	if hi == lo {
		d := math.Abs(hi)
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d/2, hi+d/2
	}
	step := niceNumber((hi - lo) / float64(n-1))
	tlo = math.Floor(lo/step) * step
	thi = math.Ceil(hi/step) * step
	for v := tlo; v <= thi+step/2; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, v)
	}
	return ticks, tlo, thi
}

func niceNumber(x float64) float64 {
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	var nf float64
	switch {
	case f <= 1:
		nf = 1
	case f <= 2:
		nf = 2
	case f <= 2.5:
		nf = 2.5
	case f <= 5:
		nf = 5
	default:
		nf = 10
	}
	return nf * math.Pow(10, exp)
}

var timeSteps = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// timeStep picks a label interval that keeps labels about 90 pixels apart.
func timeStep(span time.Duration, width int) (time.Duration, string) {
	want := max(width/90, 2)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if int(span/s) <= want {
			step = s
			break
		}
	}
	switch {
	case step < time.Minute:
		return step, "15:04:05"
	case span <= 36*time.Hour:
		return step, "15:04"
	case step < 24*time.Hour:
		return step, "Jan 2 15:04"
	default:
		return step, "Jan 2"
	}
}

func formatNumber(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func textWidth(s string) int {
	return font.MeasureString(face, s).Ceil()
}

func drawText(img draw.Image, x, y int, s string, c color.Color, bold bool) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
	if bold {
		d.Dot = fixed.P(x+1, y)
		d.DrawString(s)
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

// coverage is how much of each pixel of a rectangle one series covers.
type coverage struct {
	r image.Rectangle
	a []float32
}

func newCoverage(r image.Rectangle) *coverage {
	return &coverage{r: r, a: make([]float32, r.Dx()*r.Dy())}
}

// line covers the pixels near a segment, about two pixels wide, by how
// close they are to it (anti-aliased).
func (c *coverage) line(x0, y0, x1, y1 float64) {
	const half = 1.0 // half width
	minX, maxX := int(math.Floor(math.Min(x0, x1)-half-1)), int(math.Ceil(math.Max(x0, x1)+half+1))
	minY, maxY := int(math.Floor(math.Min(y0, y1)-half-1)), int(math.Ceil(math.Max(y0, y1)+half+1))
	minX, minY = max(minX, c.r.Min.X), max(minY, c.r.Min.Y)
	maxX, maxY = min(maxX, c.r.Max.X-1), min(maxY, c.r.Max.Y-1)
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for py := minY; py <= maxY; py++ {
		for px := minX; px <= maxX; px++ {
			fx, fy := float64(px), float64(py)
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((fx-x0)*dx+(fy-y0)*dy)/l2))
			}
			ex, ey := x0+t*dx-fx, y0+t*dy-fy
			cv := float32(math.Min(1, half+0.5-math.Sqrt(ex*ex+ey*ey)))
			i := (py-c.r.Min.Y)*c.r.Dx() + (px - c.r.Min.X)
			if cv > c.a[i] {
				c.a[i] = cv
			}
		}
	}
}

// paint blends col over img where the series covers it.
func (c *coverage) paint(img *image.RGBA, col color.RGBA) {
	for py := c.r.Min.Y; py < c.r.Max.Y; py++ {
		for px := c.r.Min.X; px < c.r.Max.X; px++ {
			a := float64(c.a[(py-c.r.Min.Y)*c.r.Dx()+(px-c.r.Min.X)])
			if a <= 0 {
				continue
			}
			o := img.RGBAAt(px, py)
			mix := func(f, b uint8) uint8 { return uint8(math.Round(float64(f)*a + float64(b)*(1-a))) }
			img.SetRGBA(px, py, color.RGBA{mix(col.R, o.R), mix(col.G, o.G), mix(col.B, o.B), 0xff})
		}
	}
}
