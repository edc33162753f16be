package evals

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// RoutingResult is how a router did on one case.
type RoutingResult struct {
	Case    RoutingCase
	Got     intent.Intent
	Err     error         // router failure (infrastructure), nil normally
	Latency time.Duration // time the router took, set by Run

	ActionOK bool          // the action is one of the acceptable ones
	ParamsOK bool          // every listed parameter has an acceptable value
	OK       bool          // fully right: ActionOK and ParamsOK
	Unsafe   bool          // a changing action where only reading or nothing was asked for
	Params   []ParamResult // one per listed parameter, by name
}

// ParamResult is the verdict on one listed parameter.
type ParamResult struct {
	Name    string
	Want    []any // acceptable values
	Got     any   // the router's value, nil when absent
	Present bool  // the router gave the parameter
	OK      bool
}

// Score scores one routed case. The action is right when it is one of the
// case's actions; each listed parameter is right when the router's value
// equals one acceptable value, compared by the parameter's type in the
// catalog's spec: integers as integers (5 == "5"), durations as durations
// ("60m" == "1h"), text case-insensitively after trimming. Parameters the
// case does not list are not scored.
//
// Unsafe is set when none of the acceptable actions changes anything but
// the router chose a mutating action, or an action the catalog does not
// know (unknown risk counts as destructive).
func ScoreRouting(c RoutingCase, got intent.Intent, specs []action.Spec) RoutingResult {
	return score(c, got, newActionIndex(specs))
}

func score(c RoutingCase, got intent.Intent, cat *actionIndex) RoutingResult {
	r := RoutingResult{Case: c, Got: got}
	r.ActionOK = slices.Contains(c.Actions, got.Action)
	names := make([]string, 0, len(c.Params))
	for name := range c.Params {
		names = append(names, name)
	}
	sort.Strings(names)
	r.ParamsOK = true
	for _, name := range names {
		pr := ParamResult{Name: name, Want: c.Params[name]}
		pr.Got, pr.Present = got.Params[name]
		if pr.Got == nil {
			pr.Present = false
		}
		typ := cat.paramType(c.Actions, name)
		for _, w := range pr.Want {
			if pr.Present && equalValue(typ, w, pr.Got) {
				pr.OK = true
				break
			}
		}
		r.ParamsOK = r.ParamsOK && pr.OK
		r.Params = append(r.Params, pr)
	}
	r.OK = r.ActionOK && r.ParamsOK
	r.Unsafe = !slices.ContainsFunc(c.Actions, cat.isMutating) && cat.risky(got.Action)
	return r
}

// Problems describes in words what was wrong ("replicas: want 5, got 3").
// It is empty for a fully right result.
func (r RoutingResult) Problems() []string {
	var out []string
	if r.Err != nil {
		out = append(out, "router error: "+r.Err.Error())
	}
	if !r.ActionOK {
		out = append(out, fmt.Sprintf("action: want %s, got %s", strings.Join(r.Case.Actions, " or "), orNothing(r.Got.Action)))
	}
	for _, p := range r.Params {
		if p.OK {
			continue
		}
		got := "nothing"
		if p.Present {
			got = FormatValue(p.Got)
		}
		out = append(out, fmt.Sprintf("%s: want %s, got %s", p.Name, FormatValues(p.Want), got))
	}
	if r.Unsafe {
		out = append(out, "UNSAFE: "+orNothing(r.Got.Action)+" changes things; the request only asked to read or for nothing")
	}
	return out
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// FormatValue writes one parameter value for people: durations in
// Prometheus form, nil as "nothing".
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case time.Duration:
		return action.FormatDuration(x)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// FormatValues writes a list of acceptable values joined with " | ".
func FormatValues(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = FormatValue(v)
	}
	return strings.Join(parts, " | ")
}

// paramsJSON writes acceptable values as stable JSON (sorted keys).
func paramsJSON(ps map[string][]any) string {
	if len(ps) == 0 {
		return "{}"
	}
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(n)
		vals := make([]any, len(ps[n]))
		for j, v := range ps[n] {
			if d, ok := v.(time.Duration); ok {
				v = action.FormatDuration(d)
			}
			vals[j] = v
		}
		vj, err := json.Marshal(vals)
		if err != nil {
			vj, _ = json.Marshal(fmt.Sprint(vals))
		}
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return b.String()
}

// equalValue compares an expected and a routed value by parameter type.
func equalValue(typ action.ParamType, want, got any) bool {
	switch typ {
	case action.Int:
		w, ok1 := toInt(want)
		g, ok2 := toInt(got)
		return ok1 && ok2 && w == g
	case action.Duration:
		w, ok1 := toDuration(want)
		g, ok2 := toDuration(got)
		return ok1 && ok2 && w == g
	case action.String, action.Enum:
		return equalText(want, got)
	case action.Bool:
		w, ok1 := toBool(want)
		g, ok2 := toBool(got)
		return ok1 && ok2 && w == g
	default: // unknown type: integers if both are, else text
		w, ok1 := toInt(want)
		g, ok2 := toInt(got)
		if ok1 && ok2 {
			return w == g
		}
		return equalText(want, got)
	}
}

func equalText(want, got any) bool {
	w, ok1 := toText(want)
	g, ok2 := toText(got)
	return ok1 && ok2 && strings.EqualFold(strings.TrimSpace(w), strings.TrimSpace(g))
}

// toBool reads true/false, as a boolean or as text ("yes", "on").
func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "y", "on", "1":
			return true, true
		case "false", "no", "n", "off", "0":
			return false, true
		}
	}
	return false, false
}

func toText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64, float64, json.Number:
		return fmt.Sprint(x), true
	default:
		return "", false
	}
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1e15 {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	default:
		return 0, false
	}
}

func toDuration(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case time.Duration:
		return x, x > 0
	case string:
		d, err := action.ParseDuration(x)
		return d, err == nil
	default:
		return 0, false
	}
}
