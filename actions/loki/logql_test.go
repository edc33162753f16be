package loki

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

const errorLineRE = `(?i)\b(?:level|lvl|severity)\s*[=:]\s*"?(?:error|err|fatal|critical|crit|panic)\b|"(?:level|lvl|severity)"\s*:\s*"(?:error|err|fatal|critical|crit|panic)"|\b(?:error|fatal|panic|critical)\b`

// TestLogQL is the golden table of the LogQL built from parameters.
func TestLogQL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(*Options)
		params action.Params
		want   string
	}{
		{"service only", nil, action.Params{"service": "payments"}, `{app="payments"}`},
		{"error level", nil, action.Params{"service": "payments", "level": "error"},
			`{app="payments"} |~ "(?i)\\b(?:level|lvl|severity)\\s*[=:]\\s*\"?(?:error|err|fatal|critical|crit|panic)\\b|\"(?:level|lvl|severity)\"\\s*:\\s*\"(?:error|err|fatal|critical|crit|panic)\"|\\b(?:error|fatal|panic|critical)\\b"`},
		{"filter", nil, action.Params{"service": "checkout", "filter": "timeout", "window": "15m"}, `{app="checkout"} |= "timeout"`},
		{"filter and warn level", nil, action.Params{"service": "checkout", "filter": "timeout", "level": "warn"},
			`{app="checkout"} |= "timeout" |~ "(?i)\\b(?:level|lvl|severity)\\s*[=:]\\s*\"?(?:warn|warning)\\b|\"(?:level|lvl|severity)\"\\s*:\\s*\"(?:warn|warning)\"|\\b(?:warn|warning)\\b"`},
		{"level label", func(o *Options) { o.LevelLabel = "detected_level" }, action.Params{"service": "checkout", "level": "error"},
			`{app="checkout"} | detected_level=~"(?i)error|err|fatal|critical|crit|panic"`},
		{"custom selector", func(o *Options) { o.Selector = `{namespace=~".+", app="{{.Service}}"}` }, action.Params{"service": "checkout", "filter": "5xx"},
			`{namespace=~".+", app="checkout"} |= "5xx"`},
		{"quote in filter", nil, action.Params{"service": "checkout", "filter": `say "hi"`}, `{app="checkout"} |= "say \"hi\""`},
		{"injection in filter", nil, action.Params{"service": "checkout", "filter": `x" or 1=1 |= "`}, `{app="checkout"} |= "x\" or 1=1 |= \""`},
		{"backslashes in filter", nil, action.Params{"service": "checkout", "filter": `C:\temp\" } |~ ".*`}, `{app="checkout"} |= "C:\\temp\\\" } |~ \".*"`},
		{"newline in filter", nil, action.Params{"service": "checkout", "filter": "a\nb"}, `{app="checkout"} |= "a\nb"`},
		{"injection in service", nil, action.Params{"service": `x"} or {app=~".+`}, `{app="x\"} or {app=~\".+"}`},
		{"raw query", nil, action.Params{"query": `{app="checkout"} |= "timeout"`, "service": "ignored"}, `{app="checkout"} |= "timeout"`},
		{"raw query in backticks", nil, action.Params{"query": "`sum(rate({app=\"x\"}[5m]))`"}, `sum(rate({app="x"}[5m]))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLoki(t, jsonAnswer(`{"status":"success","data":{"resultType":"streams","result":[]}}`))
			q, _ := newQuery(t, f, tc.opts)
			pl, err := q.build(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if pl.LogQL != tc.want {
				t.Errorf("LogQL\n got %s\nwant %s", pl.LogQL, tc.want)
			}
			// And it is what Loki receives.
			if _, err := run(q, tc.params); err != nil {
				t.Fatal(err)
			}
			if got := f.last().URL.Query().Get("query"); got != tc.want {
				t.Errorf("Loki received query %s, want %s", got, tc.want)
			}
		})
	}
}

// lineFilterRE finds the string literal of a |= line filter.
var lineFilterRE = regexp.MustCompile(`\|= ("(?:[^"\\]|\\.)*")`)

// TestFilterStaysInItsString reads the filter back the way Loki's lexer
// does (strconv.Unquote of the literal) and checks nothing escaped it.
func TestFilterStaysInItsString(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(`{"status":"success","data":{"resultType":"streams","result":[]}}`))
	q, _ := newQuery(t, f, nil)
	for _, filter := range []string{`"`, `\`, `\"`, `"\`, `\\"} |~ ".*`, "`", "tab\there", "nul\x00byte", "ünïcödé \u2028", `{app="other"}`} {
		pl, err := q.build(action.Params{"service": "checkout", "filter": filter})
		if err != nil {
			t.Fatal(err)
		}
		m := lineFilterRE.FindStringSubmatch(pl.LogQL)
		if m == nil || !strings.HasSuffix(pl.LogQL, m[1]) {
			t.Fatalf("filter %q: LogQL %s does not end in one string literal", filter, pl.LogQL)
		}
		got, err := strconv.Unquote(m[1])
		if err != nil || got != filter {
			t.Errorf("filter %q: literal %s reads back as %q (%v)", filter, m[1], got, err)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	f := newFakeLoki(t, jsonAnswer(`{}`))
	q, _ := newQuery(t, f, nil)
	for _, tc := range []struct {
		name   string
		params action.Params
		want   string
	}{
		{"no service", action.Params{"level": "error"}, "which service"},
		{"empty raw", action.Params{"query": "``"}, "empty"},
		{"bad window", action.Params{"service": "x", "window": "soon"}, "window"},
		{"limit too high", action.Params{"service": "x", "limit": 5001}, "limit"},
		{"unknown level", action.Params{"service": "x", "level": "loud"}, "level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(q, tc.params)
			if !errors.Is(err, action.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 0 {
		t.Errorf("invalid requests reached Loki: %d", len(f.requests))
	}
}

func TestLevelLineRegexpMatches(t *testing.T) {
	re := regexp.MustCompile(errorLineRE)
	if levelLineRegexp("error") != errorLineRE {
		t.Fatalf("error regexp changed: %s", levelLineRegexp("error"))
	}
	for line, want := range map[string]bool{
		`level=error msg="boom"`:                   true,
		`level="ERROR" msg="boom"`:                 true,
		`{"level":"error","msg":"boom"}`:           true,
		`{"level": "fatal"}`:                       true,
		`2026-11-27 ERROR payment declined`:        true,
		`lvl=err caller=x.go:1`:                    true,
		`level=info msg="ok"`:                      false,
		`level=info msg="errors_total=0"`:          false,
		`{"level":"info","msg":"no errors today"}`: false,
	} {
		if got := re.MatchString(line); got != want {
			t.Errorf("error filter on %q = %v, want %v", line, got, want)
		}
	}
}
