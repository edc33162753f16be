package prometheus

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// runRaw runs PromQL as the user wrote it and answers by result type:
// scalar or string -> text; instant vector -> table (and, with a window, a
// chart of the window); range vector -> chart.
func (q *Query) runRaw(ctx context.Context, expr string, window time.Duration, windowGiven bool) (action.Result, error) {
	expr = strings.TrimSpace(strings.Trim(strings.TrimSpace(expr), "`"))
	if expr == "" {
		return action.Result{}, fmt.Errorf("%w: empty PromQL", action.ErrInvalid)
	}
	now := q.now()
	v, warn, err := q.instant(ctx, expr, now)
	if err != nil {
		return action.Result{}, q.apiError(ctx, err)
	}
	code := "`" + strings.ReplaceAll(expr, "`", "'") + "`"
	fields := appendWarnings([]chat.Field{{Label: "PromQL", Value: expr}}, warn)
	res := action.Result{Fields: fields, Outcome: map[string]string{"result": v.Type().String()}}

	switch x := v.(type) {
	case *model.Scalar:
		res.Text = fmt.Sprintf("%s = %s", code, number(float64(x.Value)))
		return res, nil
	case *model.String:
		res.Text = fmt.Sprintf("%s = %q", code, x.Value)
		return res, nil
	case model.Matrix:
		n := len(x)
		res.Outcome["series"] = strconv.Itoa(n)
		if n == 0 {
			res.Text = fmt.Sprintf("%s: no samples.", code)
			return res, nil
		}
		res.Text = fmt.Sprintf("%s: %s.", code, plural(n, "series", "series"))
		if img, ok := q.chartOf(x, shorten(expr, 90), unitNone, "promql.png", "value"); ok {
			res.Images = []chat.Image{img}
		}
		return res, nil
	case model.Vector:
		res.Outcome["series"] = strconv.Itoa(len(x))
		if len(x) == 0 {
			res.Text = fmt.Sprintf("%s: no samples at %s. Check the metric and label names.", code, now.UTC().Format("15:04:05 UTC"))
			return res, nil
		}
		if len(x) == 1 && len(x[0].Metric) == 0 {
			res.Text = fmt.Sprintf("%s = %s", code, number(float64(x[0].Value)))
		} else {
			res.Text, res.Table = vectorTable(code, x)
		}
		if windowGiven {
			step := chartStep(window)
			m, _, err := q.rangeQuery(ctx, expr, now.Add(-window), now, step)
			if err != nil {
				return action.Result{}, q.apiError(ctx, err)
			}
			if img, ok := q.chartOf(m, shorten(expr, 70)+", last "+action.FormatDuration(window), unitNone, "promql.png", "value"); ok {
				res.Images = []chat.Image{img}
			}
		}
		return res, nil
	default:
		return action.Result{}, fmt.Errorf("%w: Prometheus returned an unexpected %s result", action.ErrUnavailable, v.Type())
	}
}

// vectorTable lists an instant vector, highest value first, at most
// MaxRows rows.
func vectorTable(code string, vec model.Vector) (string, *chat.Table) {
	rows := make(model.Vector, len(vec))
	copy(rows, vec)
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Value != rows[j].Value {
			return rows[i].Value > rows[j].Value
		}
		return rows[i].Metric.String() < rows[j].Metric.String()
	})
	t := &chat.Table{Header: []string{"series", "value"}}
	for i, s := range rows {
		if i == MaxRows {
			break
		}
		t.Rows = append(t.Rows, []string{s.Metric.String(), number(float64(s.Value))})
	}
	text := fmt.Sprintf("%s: %s.", code, plural(len(vec), "series", "series"))
	if len(vec) > MaxRows {
		text = fmt.Sprintf("%s: %d series; showing the %d highest, %d cut. Narrow the query (topk, a label matcher) to see the rest.",
			code, len(vec), MaxRows, len(vec)-MaxRows)
	}
	return text, t
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
