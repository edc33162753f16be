package prometheus

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chart"
	"github.com/parley-chatops/parley/internal/chat"
)

// overview are the metrics shown when a request names a service but no
// metric ("how is checkout doing").
var overview = []string{"request_rate", "error_rate", "latency_p99"}

// runMetric answers a named metric of a service: the value now, the value
// one window ago and a chart of the window.
func (q *Query) runMetric(ctx context.Context, p action.Params, window time.Duration) (action.Result, error) {
	service := p.String("service")
	if service == "" {
		return action.Result{}, fmt.Errorf("%w: which service? say for example \"error rate of checkout\", or give PromQL in backticks", action.ErrInvalid)
	}
	if !serviceName.MatchString(service) {
		return action.Result{}, fmt.Errorf("%w: service name %q may only contain letters, digits and _ . : -", action.ErrInvalid, service)
	}
	name := p.String("metric")
	if name == "" {
		return q.runOverview(ctx, service, window)
	}
	m, ok := metrics[name]
	if !ok {
		return action.Result{}, fmt.Errorf("%w: unknown metric %q (known: %s)", action.ErrInvalid, name, metricNames())
	}

	now := q.now()
	step := chartStep(window)
	nowRange := min(RateRange, window)
	if m.total {
		nowRange = window
	}
	chartRange := max(min(RateRange, window), step)
	exprNow, err := q.expr(name, service, nowRange)
	if err != nil {
		return action.Result{}, err
	}
	exprChart, err := q.expr(name, service, chartRange)
	if err != nil {
		return action.Result{}, err
	}

	var (
		cur, then         model.Value
		curErr, thenErr   error
		matrix            model.Value
		matrixErr         error
		curWarn, thenWarn v1.Warnings
	)
	parallel(
		func() { cur, curWarn, curErr = q.instant(ctx, exprNow, now) },
		func() { then, thenWarn, thenErr = q.instant(ctx, exprNow, now.Add(-window)) },
		func() { matrix, _, matrixErr = q.rangeQuery(ctx, exprChart, now.Add(-window), now, step) },
	)
	for _, err := range []error{curErr, thenErr, matrixErr} {
		if err != nil {
			return action.Result{}, q.apiError(ctx, err)
		}
	}

	label := service + " " + m.title
	win := action.FormatDuration(window)
	fields := []chat.Field{{Label: "PromQL", Value: exprNow}}
	if exprChart != exprNow {
		fields = append(fields, chat.Field{Label: "Chart PromQL", Value: exprChart})
	}
	fields = append(fields, chat.Field{Label: "Window", Value: win})
	fields = appendWarnings(fields, curWarn, thenWarn)

	curV, curN := single(cur)
	if curN == 0 {
		return action.Result{
			Text: fmt.Sprintf("No samples for service %s (%s) in the last %s: check the service label or the template for %s.",
				service, m.title, promDuration(nowRange), name),
			Fields:  fields,
			Outcome: map[string]string{"metric": name, "service": service, "samples": "0"},
		}, nil
	}
	thenV, thenN := single(then)

	var text string
	if m.total {
		text = fmt.Sprintf("%s: %s in the last %s", label, m.unit.format(curV), win)
		if thenN > 0 {
			text += fmt.Sprintf(", %s in the %s before", m.unit.format(thenV), win)
		}
	} else {
		text = fmt.Sprintf("%s: %s now", label, m.unit.format(curV))
		text += trend(m.unit, curV, thenV, thenN > 0, win)
	}
	if math.IsNaN(curV) && name == "error_rate" {
		text = fmt.Sprintf("%s: no requests in the last %s, so no error rate", label, promDuration(nowRange))
	}
	if curN > 1 {
		text += fmt.Sprintf(" (highest of %d series: the template for %s should aggregate to one)", curN, name)
	}

	res := action.Result{
		Text:    text,
		Fields:  fields,
		Outcome: map[string]string{"metric": name, "service": service, "value": m.unit.format(curV)},
	}
	if img, ok := q.chartOf(matrix, label+", last "+win, m.unit, service+"-"+name+".png", service); ok {
		res.Images = []chat.Image{img}
	}
	return res, nil
}

// trend words how the value moved over the window.
func trend(u unit, cur, then float64, haveThen bool, win string) string {
	if !haveThen || math.IsNaN(then) {
		return fmt.Sprintf(" (no data %s ago)", win)
	}
	c, t := u.format(cur), u.format(then)
	switch {
	case c == t:
		return fmt.Sprintf(", unchanged from %s ago", win)
	case cur > then:
		return fmt.Sprintf(", up from %s %s ago", t, win)
	default:
		return fmt.Sprintf(", down from %s %s ago", t, win)
	}
}

// runOverview answers "how is checkout doing": a few key metrics now.
func (q *Query) runOverview(ctx context.Context, service string, window time.Duration) (action.Result, error) {
	now := q.now()
	nowRange := min(RateRange, window)
	exprs := make([]string, len(overview))
	vals := make([]model.Value, len(overview))
	errs := make([]error, len(overview))
	var fns []func()
	for i, name := range overview {
		e, err := q.expr(name, service, nowRange)
		if err != nil {
			return action.Result{}, err
		}
		exprs[i] = e
		fns = append(fns, func() { vals[i], _, errs[i] = q.instant(ctx, e, now) })
	}
	parallel(fns...)
	var parts []string
	var fields []chat.Field
	found := false
	for i, name := range overview {
		if errs[i] != nil {
			return action.Result{}, q.apiError(ctx, errs[i])
		}
		m := metrics[name]
		v, n := single(vals[i])
		val := "no data"
		if n > 0 {
			val, found = m.unit.format(v), true
		}
		parts = append(parts, m.title+" "+val)
		fields = append(fields, chat.Field{Label: m.title, Value: exprs[i]})
	}
	if !found {
		return action.Result{
			Text:    fmt.Sprintf("No samples for service %s in the last %s: check the service label or the templates.", service, promDuration(nowRange)),
			Fields:  fields,
			Outcome: map[string]string{"service": service, "samples": "0"},
		}, nil
	}
	return action.Result{
		Text:    fmt.Sprintf("%s, last %s: %s", service, promDuration(nowRange), strings.Join(parts, ", ")),
		Fields:  fields,
		Outcome: map[string]string{"service": service},
	}, nil
}

func (q *Query) expr(name, service string, rng time.Duration) (string, error) {
	s, err := render(q.templates[name], TemplateData{Service: service, Window: promDuration(rng)})
	if err != nil {
		return "", fmt.Errorf("template for %s: %v", name, err)
	}
	return s, nil
}

// chartStep is the resolution of a chart of window: about ChartPoints
// points, whole seconds.
func chartStep(window time.Duration) time.Duration {
	return max((window / ChartPoints).Truncate(time.Second), time.Second)
}

func (q *Query) instant(ctx context.Context, expr string, at time.Time) (model.Value, v1.Warnings, error) {
	start := time.Now()
	v, warn, _, err := q.api.Query(ctx, expr, at)
	q.log.DebugContext(ctx, "prometheus query", "kind", "instant", "promql", expr, "took", time.Since(start), "ok", err == nil)
	return v, warn, err
}

func (q *Query) rangeQuery(ctx context.Context, expr string, from, to time.Time, step time.Duration) (model.Value, v1.Warnings, error) {
	start := time.Now()
	v, warn, _, err := q.api.QueryRange(ctx, expr, v1.Range{Start: from, End: to, Step: step})
	q.log.DebugContext(ctx, "prometheus query", "kind", "range", "promql", expr, "took", time.Since(start), "ok", err == nil)
	return v, warn, err
}

// single reads one number from an instant result: the value of a scalar
// or of a one-sample vector, or the highest of several samples. n is how
// many samples there were.
func single(v model.Value) (value float64, n int) {
	switch x := v.(type) {
	case *model.Scalar:
		return float64(x.Value), 1
	case model.Vector:
		if len(x) == 0 {
			return 0, 0
		}
		best := float64(x[0].Value)
		for _, s := range x[1:] {
			if f := float64(s.Value); f > best || math.IsNaN(best) {
				best = f
			}
		}
		return best, len(x)
	}
	return 0, 0
}

// chartOf draws a range result; ok is false when there is nothing to draw.
// name is the series name used when a series has no labels.
func (q *Query) chartOf(v model.Value, title string, u unit, file, name string) (chat.Image, bool) {
	m, ok := v.(model.Matrix)
	if !ok || len(m) == 0 {
		return chat.Image{}, false
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Metric.String() < m[j].Metric.String() })
	series := make([]chart.Series, 0, len(m))
	for _, ss := range m {
		s := chart.Series{Name: seriesName(ss.Metric, name)}
		for _, p := range ss.Values {
			s.Points = append(s.Points, chart.Point{T: p.Timestamp.Time(), V: float64(p.Value)})
		}
		series = append(series, s)
	}
	png, err := chart.Line(series, chart.Options{Title: title, FormatValue: u.format, Base2: u == unitBytes})
	if err != nil {
		// A chart is a nicety: the numbers are in the text.
		q.log.Debug("no chart", "err", err)
		return chat.Image{}, false
	}
	return chat.Image{Name: file, ContentType: "image/png", Data: png, AltText: title}, true
}

func seriesName(m model.Metric, fallback string) string {
	if len(m) == 0 {
		return fallback
	}
	return m.String()
}

func appendWarnings(fields []chat.Field, ws ...v1.Warnings) []chat.Field {
	seen := map[string]bool{}
	for _, w := range ws {
		for _, s := range w {
			if !seen[s] {
				seen[s] = true
				fields = append(fields, chat.Field{Label: "Prometheus warning", Value: s})
			}
		}
	}
	return fields
}
