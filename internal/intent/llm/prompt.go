package llm

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Bounds on what is sent.
const (
	maxRequestBytes = 4000
	maxTurnBytes    = 500
	maxTurns        = 5
	maxNames        = 200 // per inventory list
)

// plainName is what an inventory name may look like to be shown to the
// model: Kubernetes-style identifiers, nothing that could read as prose.
var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$`)

func names(list []string) string {
	out := make([]string, 0, min(len(list), maxNames))
	for _, n := range list {
		if plainName.MatchString(n) && !slices.Contains(out, n) && len(out) < maxNames {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}

// inventoryText renders, compactly for the system prompt, the kinds of
// inventory names the offered actions take: a deployment once however
// many namespaces hold it (the namespace is a parameter of its own).
func inventoryText(inv intent.Inventory, offered []action.Spec) string {
	takes := map[action.Source]bool{}
	for _, s := range offered {
		for _, p := range s.Params {
			takes[p.Source] = true
		}
	}
	var b strings.Builder
	line := func(src action.Source, label string, list []string) {
		if takes[src] {
			b.WriteString(label + ": " + names(list) + "\n")
		}
	}
	line(action.Namespaces, "namespaces", inv.Namespaces)
	line(action.Deployments, "deployments", inv.AllDeployments())
	line(action.Services, "services", inv.Services)
	line(action.EvalSuites, "eval suites", inv.EvalSuites)
	line(action.EvalVariants, "eval variants", inv.EvalVariants)
	if b.Len() == 0 {
		return "-"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

type turn struct {
	Text   string        `json:"text"`
	Action string        `json:"action,omitempty"`
	Params action.Params `json:"params,omitempty"`
}

// userMessage is the only place user text goes: a JSON object, so that
// nothing in the text can end the data and start instructions.
func userMessage(q intent.Query, red func(string) string) string {
	var m struct {
		History []turn `json:"history,omitempty"`
		Request string `json:"request"`
	}
	hist := q.History
	if len(hist) > maxTurns {
		hist = hist[len(hist)-maxTurns:]
	}
	for _, t := range hist {
		p := action.Params{}
		for k, v := range t.Params {
			if s, ok := v.(string); ok {
				v = clip(red(s), 200)
			}
			p[k] = v
		}
		m.History = append(m.History, turn{Text: clip(red(t.Text), maxTurnBytes), Action: t.Action, Params: p})
	}
	m.Request = clip(red(q.Text), maxRequestBytes)
	b, _ := json.Marshal(m) // strings and ints only
	return string(b)
}
