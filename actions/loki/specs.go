package loki

import "github.com/parley-chatops/parley/internal/action"

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
			{Name: "level", Type: action.Enum, Enum: Levels, Description: "log level"},
			{Name: "filter", Type: action.String, Description: "text the log lines must contain"},
			{Name: "window", Type: action.Duration, Description: "time window as a Prometheus duration: 30m, 1h, 1d"},
			{Name: "limit", Type: action.Int, Min: intp(1), Max: intp(5000), Description: "maximum number of lines"},
			{Name: "query", Type: action.String, Description: "raw LogQL, only when the user wrote it literally"},
		},
		Examples: []action.Example{
			{Text: "show error logs for payments", Params: map[string]any{"service": "payments", "level": "error"}},
			{Text: "logs of checkout containing \"timeout\" in the last 15m", Params: map[string]any{"service": "checkout", "filter": "timeout", "window": "15m"}},
		},
	}
}
