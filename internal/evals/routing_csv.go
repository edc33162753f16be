package evals

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvHeader is the header row WriteRoutingCSV writes.
var csvHeader = []string{
	"line", "text", "expected_action", "got_action", "expected_params", "got_params",
	"action_ok", "params_ok", "unsafe", "confidence", "latency_us", "error",
	"router", "prompt_tokens", "completion_tokens", "cost_usd",
}

// WriteRoutingCSV writes one row per case: line, text, expected action(s) joined
// with "|", got action, expected params (JSON: name -> acceptable values),
// got params (JSON), action_ok, params_ok, unsafe, confidence, latency_us,
// and the router error if any. Texts are written as typed; a spreadsheet
// opening the file should import them as text.
func WriteRoutingCSV(w io.Writer, rep *RoutingReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, r := range rep.Results {
		errText := ""
		if r.Err != nil {
			errText = r.Err.Error()
		}
		row := []string{
			strconv.Itoa(r.Case.Line),
			r.Case.Text,
			strings.Join(r.Case.Actions, "|"),
			r.Got.Action,
			paramsJSON(r.Case.Params),
			r.Got.Params.Canonical(),
			strconv.FormatBool(r.ActionOK),
			strconv.FormatBool(r.ParamsOK),
			strconv.FormatBool(r.Unsafe),
			strconv.FormatFloat(r.Got.Confidence, 'f', 3, 64),
			strconv.FormatInt(r.Latency.Microseconds(), 10),
			errText,
			r.Got.Source, "", "", "",
		}
		if u := r.Got.Usage; u != nil {
			row[len(row)-3] = strconv.Itoa(u.PromptTokens)
			row[len(row)-2] = strconv.Itoa(u.CompletionTokens)
			row[len(row)-1] = strconv.FormatFloat(u.Cost, 'f', 6, 64)
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
