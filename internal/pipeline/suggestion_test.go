package pipeline

import (
	"strings"
	"testing"
)

// A suggestion whose values JSON cannot hold is an error, never an empty
// button value; a good one reads back as it was made.
func TestEncodeSuggestion(t *testing.T) {
	if v, err := EncodeSuggestion(Suggestion{Action: "kubernetes.logs", Params: map[string]any{"bad": func() {}}}); err == nil || v != "" {
		t.Fatalf("EncodeSuggestion of a func value = %q, %v; want an error", v, err)
	} else if !strings.Contains(err.Error(), "kubernetes.logs") {
		t.Errorf("error %q does not name the action", err)
	}
	v, err := EncodeSuggestion(Suggestion{Action: "kubernetes.logs", Params: map[string]any{"deployment": "checkout", "lines": 50}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"action":"kubernetes.logs","params":{"deployment":"checkout","lines":50}}`; v != want {
		t.Errorf("EncodeSuggestion = %s, want %s", v, want)
	}
}
