package loki

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// plan is one query, ready to send.
type plan struct {
	LogQL   string
	Raw     bool // LogQL as the user typed it
	Service string
	Level   string
	Window  time.Duration
	Start   time.Time
	End     time.Time
	Limit   int
}

// selectorData is what the selector template sees.
type selectorData struct {
	// Service is escaped for use inside a double-quoted LogQL string.
	Service string
}

// levelWords describe each level: the values a level field takes in
// structured logs, and the bare words that mark a line of that level.
var levelWords = map[string]struct{ values, words string }{
	"error": {values: "error|err|fatal|critical|crit|panic", words: "error|fatal|panic|critical"},
	"warn":  {values: "warn|warning", words: "warn|warning"},
	"info":  {values: "info|information|notice", words: "info"},
	"debug": {values: "debug|trace", words: "debug"},
}

// levelLineRegexp is the RE2 expression a line filter uses for level: a
// logfmt or JSON level field with one of the level's values, or one of its
// words on its own, any case.
func levelLineRegexp(level string) string {
	lw := levelWords[level]
	return `(?i)\b(?:level|lvl|severity)\s*[=:]\s*"?(?:` + lw.values + `)\b` +
		`|"(?:level|lvl|severity)"\s*:\s*"(?:` + lw.values + `)"` +
		`|\b(?:` + lw.words + `)\b`
}

// quote writes s as a double-quoted LogQL string literal. Loki's lexer
// reads string literals with Go's strconv.Unquote, so Go quoting is exact:
// quotes, backslashes and control characters are escaped and the value
// cannot end the string early.
func quote(s string) string { return strconv.Quote(s) }

// build turns validated parameters into a plan.
func (q *Query) build(p action.Params) (plan, error) {
	pl := plan{Service: p.String("service"), Level: p.String("level")}
	pl.Window = q.o.DefaultWindow
	if w := p.String("window"); w != "" {
		d, err := action.ParseDuration(w)
		if err != nil {
			return plan{}, fmt.Errorf("%w: window: %v", action.ErrInvalid, err)
		}
		pl.Window = d
	}
	pl.Limit = q.o.DefaultLimit
	if n, ok := p.Int("limit"); ok {
		if n < 1 || n > MaxLimit {
			return plan{}, fmt.Errorf("%w: limit must be between 1 and %d, got %d", action.ErrInvalid, MaxLimit, n)
		}
		pl.Limit = n
	}
	pl.End = q.o.Now()
	pl.Start = pl.End.Add(-pl.Window)

	if raw := strings.TrimSpace(p.String("query")); raw != "" {
		raw = strings.TrimSpace(strings.Trim(raw, "`"))
		if raw == "" {
			return plan{}, fmt.Errorf("%w: the LogQL query is empty", action.ErrInvalid)
		}
		pl.LogQL, pl.Raw = raw, true
		return pl, nil
	}
	if pl.Service == "" {
		return plan{}, fmt.Errorf("%w: say which service's logs to search (for example \"error logs for payments\"), or give LogQL in backticks", action.ErrInvalid)
	}
	if pl.Level != "" {
		if _, ok := levelWords[pl.Level]; !ok {
			return plan{}, fmt.Errorf("%w: level must be one of %s", action.ErrInvalid, strings.Join(Levels, ", "))
		}
	}
	sel, err := q.streamSelector(pl.Service)
	if err != nil {
		return plan{}, err
	}
	var b strings.Builder
	b.WriteString(sel)
	if f := p.String("filter"); f != "" {
		b.WriteString(" |= " + quote(f))
	}
	if pl.Level != "" {
		if q.o.LevelLabel != "" {
			b.WriteString(" | " + q.o.LevelLabel + `=~` + quote(`(?i)`+levelWords[pl.Level].values))
		} else {
			b.WriteString(" |~ " + quote(levelLineRegexp(pl.Level)))
		}
	}
	pl.LogQL = b.String()
	return pl, nil
}

// streamSelector fills the selector template for service.
func (q *Query) streamSelector(service string) (string, error) {
	esc := quote(service)
	var b bytes.Buffer
	if err := q.selector.Execute(&b, selectorData{Service: esc[1 : len(esc)-1]}); err != nil {
		return "", fmt.Errorf("%w: loki selector template: %v", action.ErrNotConfigured, err)
	}
	return strings.TrimSpace(b.String()), nil
}
