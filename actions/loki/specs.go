package loki

import (
	"regexp"

	"github.com/parley-chatops/parley/internal/action"
)

// Levels are the log levels of loki.query's level parameter.
var Levels = []string{"error", "warn", "info", "debug"}

// Specs is loki.query's public contract: its typed parameters, how people
// ask for it (the offline router reads Vocabulary, Examples and the
// parameters' Words and Synonyms) and what help and the LLM tools show.
func Specs() []action.Spec { return []action.Spec{querySpec()} }

func intp(n int) *int { return &n }

func querySpec() action.Spec {
	return action.Spec{
		Name: action.LokiQuery, Kind: action.Read,
		Description: "Search a service's logs in Loki by level and text, or run raw LogQL.",
		Params: []action.Param{
			{Name: "service", Type: action.String, Source: action.Services, Description: "service name, e.g. payments"},
			{Name: "level", Type: action.Enum, Enum: Levels, Description: "log level", Words: []string{"level", "lvl"},
				Synonyms: map[string][]string{
					"error": {"errors", "error-level"},
					"warn":  {"warning", "warnings", "warns", "warn-level", "warning-level"},
					"info":  {"info-level"},
					"debug": {"debug-level"},
				}},
			{Name: "filter", Type: action.String, Description: "text the log lines must contain",
				Words: []string{"containing", "contains", "matching", "match", "mentioning", "mention", "including", "grep", "pattern"}},
			{Name: "window", Type: action.Duration, Description: "time window as a Prometheus duration: 30m, 1h, 1d"},
			{Name: "limit", Type: action.Int, Min: intp(1), Max: intp(5000), Description: "maximum number of lines",
				Words: []string{"lines", "line", "entries", "entry", "messages", "logs", "errors", "warnings", "warns", "exceptions",
					"panics", "stacktraces", "tracebacks", "tail", "limit", "top", "first", "last"}},
			{Name: "query", Type: action.String, Code: true, Pattern: logQL, Description: "raw LogQL, only when the user wrote it literally"},
		},
		Examples: []action.Example{
			{Text: "show error logs for payments", Params: map[string]any{"service": "payments", "level": "error"}},
			{Text: "logs of checkout containing \"timeout\" in the last 15m", Params: map[string]any{"service": "checkout", "filter": "timeout", "window": "15m"}},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"logs": 3, "log": 3, "logging": 3, "logged": 3, "loki": 3, "logql": 3, "logz": 3, "lgos": 3, "grep": 3,
			"tail": 2.5, "tailing": 2.5,
			"stacktrace": 2, "stacktraces": 2, "stack-trace": 2, "exceptions": 2, "exception": 2, "traceback": 2,
			"tracebacks": 2, "panics": 2,
			"warnings": 1.5, "warning": 1.5, "warn": 1.5, "warns": 1.5,
			"errors": 1.2,
			"lines":  1, "line": 1, "entries": 1, "messages": 1, "output": 1,
			"info-level": 1, "debug-level": 1, "error-level": 1, "warn-level": 1, "warning-level": 1,
			"(kubectl|k) (logs|log)": 2,
			"<filter>":               1, // text to match: beside a log word, a log search
			"<limit>":                1.5,
			"<service>":              0.3,
			"<window>":               0.3,
		}},
	}
}

// logQL is what LogQL looks like, unlike PromQL: a stream selector opening
// the query or inside a range function, or a line filter or parser stage.
var logQL = regexp.MustCompile(`^\s*\{|\|[=~]|!~"|\|\s*(json|logfmt|pattern|regexp|line_format|label_format|unwrap)\b|_over_time\(\s*\{|rate\(\s*\{`)
