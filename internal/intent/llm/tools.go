package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// Notes of the answers the router refuses to pass on; each is followed
// by what the model named.
const (
	NoteUnknownAction = "model proposed an unknown action"
	NoteNotAllowed    = "model proposed an action you may not run"
	NoteNotOffered    = "model proposed an action it was not offered"
	NoteMalformed     = "model proposed malformed arguments"
	NoteSeveral       = "model proposed more than one action"
	NoteNoAction      = "model chose no action"
)

// NoneTool is the tool a model calls when nothing fits (offered when the
// prompt says so, and understood from every prompt).
const NoneTool = action.None

// offeredSpecs are the catalog's actions except none.
func offeredSpecs(catalog []action.Spec) []action.Spec {
	out := make([]action.Spec, 0, len(catalog))
	seen := map[string]bool{}
	for _, s := range catalog {
		if s.Name == action.None || s.Name == "" || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out
}

// toolName maps an action name to a tool name: providers allow only
// [a-zA-Z0-9_-] in tool names, so "kubernetes.scale" is offered as
// "kubernetes_scale".
func toolName(action string) string { return strings.ReplaceAll(action, ".", "_") }

// buildTools offers each spec as a function tool, and the none tool when
// noneTool is set. names maps what a model may call an action back to
// the action: the tool name and, as models sometimes answer with it, the
// action's own dotted name.
func buildTools(specs []action.Spec, askConfidence, noneTool bool) ([]llms.Tool, map[string]string) {
	tools := make([]llms.Tool, 0, len(specs)+1)
	names := make(map[string]string, 2*len(specs))
	for _, s := range specs {
		n := toolName(s.Name)
		names[n], names[s.Name] = s.Name, s.Name
		tools = append(tools, llms.Tool{Type: "function", Function: &llms.FunctionDefinition{
			Name:        n,
			Description: terse(s.Description),
			Parameters:  compactSchema(s, askConfidence),
		}})
	}
	if noneTool {
		tools = append(tools, llms.Tool{Type: "function", Function: &llms.FunctionDefinition{
			Name:        NoneTool,
			Description: "Nothing fits: chit-chat, off-topic, unclear",
			Parameters:  map[string]any{"type": "object", "properties": map[string]any{}},
		}})
	}
	return tools, names
}

var parenthetical = regexp.MustCompile(`\s*\([^)]*\)`)

// terse shortens a description for a tool definition: no parenthetical
// asides, no examples, nothing after the first comma, at most maxToolDesc bytes. Every
// byte here is paid on every call.
func terse(desc string) string {
	d := parenthetical.ReplaceAllString(desc, "")
	for _, cut := range []string{", e.g.", " e.g.", "; ", ": ", ", "} {
		if i := strings.Index(d, cut); i > 0 {
			d = d[:i]
		}
	}
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if len(d) > maxToolDesc {
		i := strings.LastIndexByte(d[:maxToolDesc], ' ')
		d = strings.TrimRight(d[:max(i, 1)], ",;")
	}
	return d
}

const maxToolDesc = 72

// compactSchema is Spec.JSONSchema cut to what helps the model choose:
// parameter names, types and enums. Validation (Spec.Validate) enforces the rest
// (unknown parameters, ranges, duration syntax) on the answer, so
// additionalProperties, minimum/maximum and pattern are not sent, and a
// description is kept only for free-text parameters whose meaning the
// name does not carry (raw query, filter). Durations are explained once,
// in the system prompt. askConfidence adds an optional "confidence"
// number to mutating actions (where the pipeline weighs it) that the
// router strips before validation.
func compactSchema(s action.Spec, askConfidence bool) map[string]any {
	sch := s.JSONSchema()
	delete(sch, "additionalProperties")
	props, _ := sch["properties"].(map[string]any)
	for name, p := range props {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		delete(pm, "minimum")
		delete(pm, "maximum")
		delete(pm, "pattern")
		delete(pm, "default") // the action applies it; the model need not know it
		sp, _ := s.Param(name)
		d := terse(sp.Description)
		if sp.Type != action.String || sp.Source != action.NoSource || d == "" || selfExplanatory(name, d) {
			delete(pm, "description")
		} else {
			pm["description"] = d
		}
	}
	// No "required": a required namespace would push the model to guess
	// one, where the pipeline fills it from the channel binding, and a
	// missing replica count is asked for by the pipeline, not invented.
	delete(sch, "required")
	if askConfidence && s.Kind == action.Mutating && props != nil {
		if _, taken := props["confidence"]; !taken {
			props["confidence"] = map[string]any{"type": "number"}
		}
	}
	return sch
}

// selfExplanatory: the description only repeats the name ("log level"
// for level, "evaluation suite" for suite).
func selfExplanatory(name, desc string) bool {
	w := strings.Fields(strings.ToLower(desc))
	return len(w) <= 2 && slices.Contains(w, strings.ToLower(name))
}

// toolsFingerprint is the exact tool definitions, for the cache key.
func toolsFingerprint(tools []llms.Tool) string {
	b, _ := json.Marshal(tools) // maps marshal in key order: stable
	return string(b)
}

// answerCtx is what a model's answer is checked against.
type answerCtx struct {
	shortlist     []action.Spec     // the actions offered as tools for this request
	names         map[string]string // tool or action name -> action, of the shortlist
	permitted     []action.Spec     // every action the user may run here (the query's catalog)
	known         []string          // every action that exists
	inv           intent.Inventory
	askConfidence bool
	red           func(string) string
}

// shownName is a name a model wrote, fit for a note: redacted, clipped,
// quoted.
func (ac answerCtx) shownName(n string) string { return fmt.Sprintf("%q", Defang(clip(ac.red(n), 60))) }

// resolve maps a called name to an offered action, or says why it is not
// one.
func (ac answerCtx) resolve(called string) (string, string) {
	if name, ok := ac.names[called]; ok {
		return name, ""
	}
	is := func(k string) bool { return k == called || toolName(k) == called }
	switch {
	case slices.ContainsFunc(ac.permitted, func(s action.Spec) bool { return is(s.Name) }):
		return "", NoteNotOffered + ": " + ac.shownName(called)
	case slices.ContainsFunc(ac.known, is):
		return "", NoteNotAllowed + ": " + ac.shownName(called)
	}
	return "", NoteUnknownAction + ": " + ac.shownName(called)
}

// Bounds on what a proposal keeps of the model's answer.
const (
	maxProposalArgs = 500
	maxProposalText = 300
)

// interpret turns the model's answer into an intent, with the answer as
// the model gave it in Intent.Proposal. clean is false when the answer
// was refused (worth asking again rather than caching).
func interpret(resp *llms.ContentResponse, ac answerCtx) (in intent.Intent, clean bool) {
	red := ac.red
	pr := &intent.Proposal{}
	var calls []llms.ToolCall
	var text []string
	for _, ch := range resp.Choices {
		calls = append(calls, ch.ToolCalls...)
		if t := strings.TrimSpace(ch.Content); t != "" {
			text = append(text, t)
		}
	}
	// the model's words, made inert: shown only quoted, as its suggestion
	pr.Text = Defang(clip(red(strings.Join(strings.Fields(strings.Join(text, " ")), " ")), maxProposalText))
	var tools, args []string
	for _, c := range calls {
		if c.FunctionCall != nil {
			tools = append(tools, c.FunctionCall.Name)
			args = append(args, c.FunctionCall.Arguments)
		}
	}
	pr.Tool = clip(red(strings.Join(tools, ", ")), 200)
	pr.Arguments = clip(red(strings.Join(args, "; ")), maxProposalArgs)
	refuse := func(note string) (intent.Intent, bool) {
		return intent.Intent{Action: action.None, Params: action.Params{}, Confidence: 0, Note: note, Proposal: pr}, false
	}
	noAction := func() (intent.Intent, bool) {
		pr.Accepted = true
		return intent.Intent{Action: action.None, Params: action.Params{}, Confidence: DefaultConfidence, Note: NoteNoAction, Proposal: pr}, true
	}
	if len(calls) == 0 {
		return noAction()
	}
	if len(calls) > 1 {
		var named []string
		for _, n := range tools {
			named = append(named, ac.shownName(n))
		}
		return refuse(fmt.Sprintf("%s (%d calls: %s)", NoteSeveral, len(calls), strings.Join(named, ", ")))
	}
	fc := calls[0].FunctionCall
	if fc == nil || strings.TrimSpace(fc.Name) == "" {
		return refuse(NoteMalformed + " (a tool call without a name)")
	}
	if fc.Name == NoneTool {
		return noAction()
	}
	name, why := ac.resolve(fc.Name)
	if why != "" {
		return refuse(why)
	}
	spec := ac.shortlist[slices.IndexFunc(ac.shortlist, func(s action.Spec) bool { return s.Name == name })]
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(cmpOr(strings.TrimSpace(fc.Arguments), "{}"))))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return refuse(fmt.Sprintf("%s for %s (not a JSON object)", NoteMalformed, name))
	}
	conf := DefaultConfidence
	if _, declared := spec.Param("confidence"); ac.askConfidence && !declared {
		if c, ok := confidenceOf(raw["confidence"]); ok {
			conf = c
		}
		delete(raw, "confidence")
	}
	params, err := spec.Validate(raw)
	if err != nil && params == nil {
		return refuse(fmt.Sprintf("%s for %s: %s", NoteMalformed, name, Defang(clip(red(err.Error()), 200))))
	}
	var notes []string
	if err != nil { // only required parameters are missing: the pipeline asks for them
		notes = append(notes, "missing "+strings.Join(spec.Missing(params), ", "))
	}
	if note, ok := resolveNames(spec, params, ac.inv, red); !ok {
		return refuse(note)
	}
	pr.Accepted = true
	in = intent.Intent{Action: name, Params: params, Confidence: conf, Note: strings.Join(append([]string{"read as " + name}, notes...), "; "), Proposal: pr}
	return in, true
}

func confidenceOf(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	case float64:
		f = x
	default:
		return 0, false
	}
	if math.IsNaN(f) || f < 0 || f > 1 {
		return 0, false
	}
	return f, true
}

// resolveNames checks names against the inventory (when it lists any of
// that kind) and puts them in the inventory's spelling.
func resolveNames(spec action.Spec, params action.Params, inv intent.Inventory, red func(string) string) (string, bool) {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		p, _ := spec.Param(k)
		var list []string
		switch p.Source {
		case action.Deployments:
			list = inv.AllDeployments()
		case action.Namespaces:
			list = inv.Namespaces
		case action.Services:
			list = inv.Services
		case action.EvalSuites:
			list = inv.EvalSuites
		case action.EvalVariants:
			list = inv.EvalVariants
		default:
			continue
		}
		if len(list) == 0 {
			continue
		}
		v, _ := params[k].(string)
		i := slices.IndexFunc(list, func(n string) bool { return strings.EqualFold(n, v) })
		if i < 0 {
			return fmt.Sprintf("model proposed %s %q, which is not in the inventory", k, Defang(clip(red(v), 60))), false
		}
		params[k] = list[i]
	}
	return "", true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
