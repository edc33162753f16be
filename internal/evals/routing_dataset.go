// Routing datasets (the format is evals/README.md): loaded and
// validated against the action specs, every case routed and scored on its
// action and each listed parameter, unsafe answers flagged (a mutating
// action where only reading or nothing was asked for), and the results
// written as a text summary, CSV and a self-contained HTML page, judged by
// RoutingGates.

package evals

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// RoutingDataset is a routing dataset: the inventory the router resolves names
// against, and the cases it is scored on.
type RoutingDataset struct {
	Inventory intent.Inventory
	Cases     []RoutingCase
	// Catalog is the action specs the dataset was checked against; Run
	// routes and scores with them.
	Catalog []action.Spec
}

// RoutingCase is one request with its acceptable answers.
type RoutingCase struct {
	Text string // the request as typed, markup included
	// Actions are the acceptable actions; any of them is right. The first
	// is the primary one.
	Actions []string
	// Params maps each scored parameter to its acceptable values, normalised
	// by the parameter's type: int for integers, a canonical duration string
	// ("1h") for durations, the canonical enum value, trimmed text. Parameters
	// not listed are not scored.
	Params map[string][]any
	Tags   []string
	Note   string // why the expectation is what it is (optional)
	Line   int    // line of the case in the dataset file, 0 when built in code
	// History is what the same user said earlier in the thread, oldest
	// first, and how each was read: the router sees it as the pipeline
	// gives it, for follow-ups ("status of checkout in prod", then "scale
	// it to 4").
	History []intent.Turn

	cat *actionIndex // the catalog it was checked against (nil when built in code)
}

// Label names the expected action(s) of the case: the action, or the
// acceptable actions in catalog order joined with "|", so the same set
// always has the same label (a case built in code, without a catalog,
// orders them by name, none last). Per-action statistics group by it.
func (c RoutingCase) Label() string {
	acts := slices.Clone(c.Actions)
	slices.SortFunc(acts, func(a, b string) int { return cmp.Or(c.cat.rank(a)-c.cat.rank(b), strings.Compare(a, b)) })
	return strings.Join(acts, "|")
}

// Known keys of a dataset file.
var (
	topKeys       = []string{"inventory", "cases"}
	inventoryKeys = []string{"namespaces", "deployments", "services", "eval_suites", "eval_variants"}
	caseKeys      = []string{"text", "action", "params", "tags", "note", "history"}
	turnKeys      = []string{"text", "action", "params"}
)

// maxErrors caps how many problems ParseRoutingDataset reports at once.
const maxErrors = 25

// LoadRoutingDataset reads the dataset file at path and validates it against the
// action specs of the catalog (the registry's, built-in and user-defined).
func LoadRoutingDataset(path string, specs []action.Spec) (*RoutingDataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	ds, err := ParseRoutingDataset(data, specs)
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: %w", path, err)
	}
	return ds, nil
}

// ParseRoutingDataset parses a dataset and validates it against the action specs.
// It is strict: unknown keys, actions not in specs, parameters an action
// does not have, values of the wrong type and names missing from the
// inventory are errors, each naming its line. Several problems are
// reported together.
func ParseRoutingDataset(data []byte, specs []action.Spec) (*RoutingDataset, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse dataset: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("parse dataset: empty document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: dataset must be a mapping with keys %s", root.Line, strings.Join(topKeys, ", "))
	}
	p := &datasetParser{cat: newActionIndex(specs)}
	ds := &RoutingDataset{Catalog: specs}
	var casesNode, invNode *yaml.Node
	p.eachKey(root, "top-level", topKeys, func(key string, v *yaml.Node) {
		switch key {
		case "inventory":
			invNode = v
		case "cases":
			casesNode = v
		}
	})
	if invNode == nil {
		p.errorf(root.Line, "missing inventory")
	} else {
		ds.Inventory = p.inventory(invNode)
	}
	if casesNode == nil {
		p.errorf(root.Line, "missing cases")
	} else if casesNode.Kind != yaml.SequenceNode {
		p.errorf(casesNode.Line, "cases must be a list")
	} else if len(casesNode.Content) == 0 {
		p.errorf(casesNode.Line, "cases is empty")
	} else {
		v := newValidator(ds.Inventory)
		seen := map[string]int{}
		for i, n := range casesNode.Content {
			c, ok := p.caseAt(i+1, n, v)
			if !ok {
				continue
			}
			key := c.Text
			for _, t := range c.History {
				key += "\x00" + t.Text // a follow-up may be asked after different turns
			}
			if first, dup := seen[key]; dup {
				p.errorf(n.Line, "case %d: duplicate text %q (first at line %d)", i+1, c.Text, first)
				continue
			}
			seen[key] = n.Line
			ds.Cases = append(ds.Cases, c)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return ds, nil
}

// datasetParser collects problems with their lines.
type datasetParser struct {
	cat  *actionIndex
	errs []error
}

func (p *datasetParser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
}

func (p *datasetParser) err() error {
	if len(p.errs) > maxErrors {
		n := len(p.errs) - maxErrors
		p.errs = append(p.errs[:maxErrors], fmt.Errorf("... and %d more problems", n))
	}
	return errors.Join(p.errs...)
}

// eachKey walks a mapping, rejecting unknown and repeated keys.
func (p *datasetParser) eachKey(m *yaml.Node, where string, known []string, fn func(key string, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "%s: keys must be plain names", where)
			continue
		}
		if known != nil && !slices.Contains(known, k.Value) {
			p.errorf(k.Line, "%s: unknown key %q (want one of %s)", where, k.Value, strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.errorf(k.Line, "%s: key %q given twice", where, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, v)
	}
}

// names decodes a list of non-empty plain strings.
func (p *datasetParser) names(n *yaml.Node, where string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "%s must be a list of names", where)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		s, ok := scalarString(e)
		if !ok || strings.TrimSpace(s) == "" {
			p.errorf(e.Line, "%s: each entry must be a non-empty name", where)
			continue
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

func (p *datasetParser) inventory(n *yaml.Node) intent.Inventory {
	var inv intent.Inventory
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "inventory must be a mapping with keys %s", strings.Join(inventoryKeys, ", "))
		return inv
	}
	var depNode *yaml.Node
	p.eachKey(n, "inventory", inventoryKeys, func(key string, v *yaml.Node) {
		switch key {
		case "namespaces":
			inv.Namespaces = p.names(v, "inventory.namespaces")
		case "deployments":
			depNode = v
		case "services":
			inv.Services = p.names(v, "inventory.services")
		case "eval_suites":
			inv.EvalSuites = p.names(v, "inventory.eval_suites")
		case "eval_variants":
			inv.EvalVariants = p.names(v, "inventory.eval_variants")
		}
	})
	if depNode == nil {
		return inv
	}
	if depNode.Kind != yaml.MappingNode {
		p.errorf(depNode.Line, "inventory.deployments must map each namespace to a list of deployments")
		return inv
	}
	inv.Deployments = map[string][]string{}
	p.eachKey(depNode, "inventory.deployments", nil, func(ns string, v *yaml.Node) {
		if !slices.Contains(inv.Namespaces, ns) {
			p.errorf(v.Line, "inventory.deployments: namespace %q is not in inventory.namespaces", ns)
		}
		inv.Deployments[ns] = p.names(v, "inventory.deployments."+ns)
	})
	return inv
}

// caseAt decodes and validates the i-th case (1-based).
func (p *datasetParser) caseAt(i int, n *yaml.Node, v *validator) (RoutingCase, bool) {
	c := RoutingCase{Line: n.Line, cat: p.cat}
	where := fmt.Sprintf("case %d", i)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s must be a mapping with keys %s", where, strings.Join(caseKeys, ", "))
		return c, false
	}
	before := len(p.errs)
	var paramsNode, historyNode *yaml.Node
	hasText, hasAction := false, false
	p.eachKey(n, where, caseKeys, func(key string, val *yaml.Node) {
		switch key {
		case "text":
			hasText = true
			s, ok := scalarString(val)
			if !ok || strings.TrimSpace(s) == "" {
				p.errorf(val.Line, "%s: text must be non-empty text", where)
				return
			}
			c.Text = s
		case "action":
			hasAction = true
			c.Actions = p.actions(val, where)
		case "params":
			paramsNode = val
		case "tags":
			c.Tags = p.names(val, where+": tags")
		case "note":
			s, ok := scalarString(val)
			if !ok {
				p.errorf(val.Line, "%s: note must be text", where)
				return
			}
			c.Note = s
		case "history":
			historyNode = val
		}
	})
	if !hasText {
		p.errorf(n.Line, "%s: missing text", where)
	}
	if !hasAction {
		p.errorf(n.Line, "%s: missing action", where)
	}
	if len(p.errs) > before {
		return c, false
	}
	if paramsNode != nil {
		c.Params = p.params(paramsNode, where, c.Actions, v)
	}
	if historyNode != nil {
		c.History = p.history(historyNode, where, v)
	}
	if len(p.errs) > before {
		return c, false
	}
	if msg := v.consistent(c); msg != "" {
		p.errorf(n.Line, "%s: %s", where, msg)
		return c, false
	}
	return c, true
}

// history decodes a case's earlier turns: a list of {text, action,
// params}, each read as the router read it (one action, one value a
// parameter), checked as a case's are.
func (p *datasetParser) history(n *yaml.Node, where string, v *validator) []intent.Turn {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n.Line, "%s: history must be a non-empty list of earlier turns {text, action, params}", where)
		return nil
	}
	var out []intent.Turn
	for k, tn := range n.Content {
		tw := fmt.Sprintf("%s: history %d", where, k+1)
		if tn.Kind != yaml.MappingNode {
			p.errorf(tn.Line, "%s must be a mapping with keys %s", tw, strings.Join(turnKeys, ", "))
			continue
		}
		t := intent.Turn{Params: action.Params{}}
		var paramsNode *yaml.Node
		hasText, hasAction := false, false
		p.eachKey(tn, tw, turnKeys, func(key string, val *yaml.Node) {
			switch key {
			case "text":
				s, ok := scalarString(val)
				if !ok || strings.TrimSpace(s) == "" {
					p.errorf(val.Line, "%s: text must be non-empty text", tw)
					return
				}
				t.Text, hasText = s, true
			case "action":
				if val.Kind != yaml.ScalarNode {
					p.errorf(val.Line, "%s: action must be one action name (how the turn was read)", tw)
					return
				}
				if acts := p.actions(val, tw); len(acts) == 1 {
					t.Action, hasAction = acts[0], true
				}
			case "params":
				paramsNode = val
			}
		})
		if !hasText || !hasAction {
			p.errorf(tn.Line, "%s: needs text and action", tw)
			continue
		}
		if paramsNode != nil {
			for name, vals := range p.params(paramsNode, tw, []string{t.Action}, v) {
				if len(vals) != 1 {
					p.errorf(paramsNode.Line, "%s: params.%s: one value, as the turn was read", tw, name)
					continue
				}
				t.Params[name] = vals[0]
			}
		}
		out = append(out, t)
	}
	return out
}

func (p *datasetParser) actions(n *yaml.Node, where string) []string {
	var names []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		names = []*yaml.Node{n}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			p.errorf(n.Line, "%s: action list is empty", where)
			return nil
		}
		names = n.Content
	default:
		p.errorf(n.Line, "%s: action must be an action name or a list of them", where)
		return nil
	}
	var out []string
	for _, e := range names {
		s, ok := scalarString(e)
		s = strings.TrimSpace(s)
		switch {
		case !ok || s == "":
			p.errorf(e.Line, "%s: action must be an action name", where)
		case s != action.None && !p.isAction(s):
			p.errorf(e.Line, "%s: unknown action %q (want one of %s)", where, s, strings.Join(p.cat.order, ", "))
		case slices.Contains(out, s):
			p.errorf(e.Line, "%s: action %q listed twice", where, s)
		default:
			out = append(out, s)
		}
	}
	return out
}

func (p *datasetParser) params(n *yaml.Node, where string, actions []string, v *validator) map[string][]any {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s: params must be a mapping of parameter names to values", where)
		return nil
	}
	out := map[string][]any{}
	p.eachKey(n, where+": params", nil, func(name string, val *yaml.Node) {
		var spec action.Param
		for _, a := range actions {
			s, _ := p.cat.spec(a)
			ps, ok := s.Param(name)
			if !ok {
				p.errorf(val.Line, "%s: %s has no parameter %q", where, a, name)
				return
			}
			spec = ps
		}
		var elems []*yaml.Node
		switch val.Kind {
		case yaml.ScalarNode:
			elems = []*yaml.Node{val}
		case yaml.SequenceNode:
			if len(val.Content) == 0 {
				p.errorf(val.Line, "%s: params.%s: list of acceptable values is empty", where, name)
				return
			}
			elems = val.Content
		default:
			p.errorf(val.Line, "%s: params.%s must be a value or a list of acceptable values", where, name)
			return
		}
		for _, e := range elems {
			nv, msg := v.value(spec, e)
			if msg != "" {
				p.errorf(e.Line, "%s: params.%s: %s", where, name, msg)
				continue
			}
			out[name] = append(out[name], nv)
		}
	})
	return out
}

// scalarString returns a scalar's text; null and non-scalars are not text.
func scalarString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", false
	}
	return n.Value, true
}

func (p *datasetParser) isAction(name string) bool {
	_, ok := p.cat.spec(name)
	return ok
}

// validator checks expected values against parameter specs and the
// inventory, so a dataset cannot expect a name the router could never give.
type validator struct {
	inv   intent.Inventory
	names map[action.Source][]string
}

func newValidator(inv intent.Inventory) *validator {
	return &validator{inv: inv, names: map[action.Source][]string{
		action.Deployments:  inv.AllDeployments(),
		action.Namespaces:   inv.Namespaces,
		action.Services:     inv.Services,
		action.EvalSuites:   inv.EvalSuites,
		action.EvalVariants: inv.EvalVariants,
	}}
}

// value normalises one expected value; msg is non-empty when it is invalid.
func (v *validator) value(p action.Param, n *yaml.Node) (any, string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return nil, "each value must be a plain value"
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		return nil, err.Error()
	}
	if p.Type == action.Duration || p.Type == action.String || p.Type == action.Enum {
		raw = n.Value // keep "30" or "1e3" as typed text, not a number
	}
	p.Required = false
	one := action.Spec{Name: "dataset", Kind: action.Read, Params: []action.Param{p}}
	got, err := one.Validate(map[string]any{p.Name: raw})
	if err != nil {
		return nil, strings.TrimPrefix(err.Error(), action.ErrInvalid.Error()+": dataset: ")
	}
	nv, ok := got[p.Name]
	if !ok {
		return nil, "value is empty"
	}
	if names, checked := v.names[p.Source]; checked && p.Source != action.NoSource {
		s, _ := nv.(string)
		name, ok := lookupFold(names, s)
		if !ok {
			return nil, fmt.Sprintf("%q is not in the inventory's %ss", s, p.Source)
		}
		nv = name // the inventory's spelling
	}
	return nv, ""
}

// consistent checks that an expected deployment exists in at least one of
// the expected namespaces.
func (v *validator) consistent(c RoutingCase) string {
	deps, nss := c.Params["deployment"], c.Params["namespace"]
	if len(deps) == 0 || len(nss) == 0 {
		return ""
	}
	for _, d := range deps {
		found := false
		for _, ns := range nss {
			nsName, _ := ns.(string)
			depName, _ := d.(string)
			if containsFold(v.inv.Deployments[nsName], depName) {
				found = true
			}
		}
		if !found {
			return fmt.Sprintf("deployment %q is in none of the expected namespaces %v", d, nss)
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	_, ok := lookupFold(list, s)
	return ok
}

func lookupFold(list []string, s string) (string, bool) {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return e, true
		}
	}
	return "", false
}
