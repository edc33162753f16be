package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Limits on a policy file.
const (
	maxFileSize = 1 << 20 // bytes
	maxNodes    = 100_000 // YAML nodes visited, aliases counted each time they are used
	maxErrors   = 20      // problems reported at once
)

// Error is one problem in a policy file, at a line.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem has no line
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and parses the policy file at path. specs are the actions
// this instance offers (the registry's specs): rules may name only them,
// and conditions are checked against their parameters. platforms are the
// chat platforms it knows: subjects, channels and platform groups are ids
// on them.
func Load(path string, specs []action.Spec, platforms chat.Platforms) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	return Parse(data, path, specs, platforms)
}

// Parse parses a policy file. filename is used in error messages and
// explanations. It checks everything it can before any request arrives;
// every problem found (up to a limit) is reported, each as an *Error with
// file:line, joined with errors.Join. specs are the actions this instance
// offers and platforms the chat platforms it knows, as for Load.
func Parse(data []byte, filename string, specs []action.Spec, platforms chat.Platforms) (*Policy, error) {
	if filename == "" {
		filename = "policy"
	}
	l := &loader{file: filename, budget: maxNodes}
	if len(data) > maxFileSize {
		return nil, &Error{File: filename, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}
	}
	env, err := newEnv()
	if err != nil { // a programming error: the environment is fixed
		return nil, fmt.Errorf("policy: CEL environment: %w", err)
	}
	l.env = env
	l.actions = specs
	l.platforms = platforms

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: filename, Line: 1, Msg: "empty policy: want groups, rules and default"}
		}
		return nil, l.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, l.yamlError(err)
		}
		return nil, &Error{File: filename, Line: extra.Line, Msg: "a policy file holds one YAML document; found a second"}
	}
	p := l.policy(&doc)
	if len(l.errs) > 0 {
		return nil, l.err()
	}
	p.platforms = platforms
	p.kinds = make(map[string]action.Kind, len(specs))
	for _, s := range specs {
		p.kinds[s.Name] = s.Kind
	}
	return p, nil
}

// yamlError turns "yaml: line 3: did not find expected key" into an *Error
// at line 3.
func (l *loader) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return &Error{File: l.file, Line: n, Msg: "invalid YAML: " + text}
			}
		}
	}
	return &Error{File: l.file, Msg: "invalid YAML: " + msg}
}

// loader walks the YAML tree, collecting errors as it goes.
type loader struct {
	file    string
	env     *cel.Env
	actions []action.Spec
	// platforms are the chat platforms whose ids the file may name.
	platforms chat.Platforms
	errs      []*Error
	budget    int
	typed     map[string]*cel.Env // typed environments by parameter types
}

// typedEnv returns the environment that type-checks conditions over
// params of these types, shared by the rules that cover the same ones.
func (l *loader) typedEnv(fields paramTypes) (*cel.Env, error) {
	k := fields.key()
	if env, ok := l.typed[k]; ok {
		return env, nil
	}
	env, err := typedEnv(fields)
	if err != nil {
		return nil, err
	}
	if l.typed == nil {
		l.typed = map[string]*cel.Env{}
	}
	l.typed[k] = env
	return env, nil
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) err() error {
	sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
	errs := make([]error, 0, maxErrors+1)
	for i, e := range l.errs {
		if i == maxErrors {
			errs = append(errs, &Error{File: l.file, Msg: fmt.Sprintf("and %d more problems", len(l.errs)-maxErrors)})
			break
		}
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// node resolves aliases and charges the node budget. It returns nil when
// the budget is spent (reported once).
func (l *loader) node(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 16 {
			l.errorf(n, "YAML aliases nest too deeply")
			return nil
		}
		n = n.Alias
	}
	if l.budget <= 0 {
		return nil
	}
	l.budget--
	if l.budget == 0 {
		l.errorf(n, "policy too large: more than %d YAML nodes (counting aliases where used)", maxNodes)
		return nil
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

// mapping calls fn for each key of a mapping, rejecting keys not in known
// and keys given twice.
func (l *loader) mapping(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: want a mapping with keys %s, got %s", what, strings.Join(known, ", "), kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := l.node(n.Content[i]), l.node(n.Content[i+1])
		if k == nil || v == nil {
			return false
		}
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, "%s: keys must be plain names", what)
			continue
		}
		switch {
		case known != nil && !slices.Contains(known, k.Value):
			if near := closest(k.Value, known); near != "" {
				l.errorf(k, "%s: unknown key %q; did you mean %q?", what, k.Value, near)
			} else {
				l.errorf(k, "%s: unknown key %q (known keys: %s)", what, k.Value, strings.Join(known, ", "))
			}
		case seen[k.Value]:
			l.errorf(k, "%s: key %q given twice", what, k.Value)
		default:
			seen[k.Value] = true
			fn(k.Value, k, v)
		}
	}
	return true
}

// str returns a scalar's text.
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(n, "%s: want text, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// list returns the scalars of a non-empty sequence, each with its node.
func (l *loader) list(n *yaml.Node, what, omitHint string) ([]string, []*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			l.errorf(n, "%s: want a list, got %s; write [%s]", what, kindName(n), n.Value)
		} else {
			l.errorf(n, "%s: want a list, got %s%s", what, kindName(n), omitHint)
		}
		return nil, nil, false
	}
	if len(n.Content) == 0 {
		l.errorf(n, "%s: empty list%s", what, omitHint)
		return nil, nil, false
	}
	var vals []string
	var nodes []*yaml.Node
	ok := true
	for _, c := range n.Content {
		c = l.node(c)
		if c == nil {
			return nil, nil, false
		}
		s, good := l.str(c, what)
		if !good {
			ok = false
			continue
		}
		s = strings.TrimSpace(s)
		if slices.Contains(vals, s) {
			l.errorf(c, "%s: %q listed twice", what, s)
			ok = false
			continue
		}
		vals, nodes = append(vals, s), append(nodes, c)
	}
	return vals, nodes, ok
}

func (l *loader) policy(doc *yaml.Node) *Policy {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			l.errorf(root, "empty policy: want groups, rules and default")
			return nil
		}
		root = root.Content[0]
	}
	root = l.node(root)
	if root == nil {
		return nil
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		l.errorf(root, "empty policy: want groups, rules and default")
		return nil
	}
	p := &Policy{file: l.file, def: Deny}
	var groupsNode, rulesNode *yaml.Node
	l.mapping(root, "policy", []string{"groups", "rules", "default"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "groups":
			groupsNode = v
		case "rules":
			rulesNode = v
		case "default":
			s, ok := l.str(v, "default")
			if !ok {
				return
			}
			switch Effect(s) {
			case Allow, Deny:
				p.def = Effect(s)
			default:
				l.errorf(v, "default: %q is not deny or allow", s)
			}
		}
	})
	if groupsNode != nil {
		p.groups = l.groups(groupsNode)
	}
	if rulesNode == nil {
		if root.Kind == yaml.MappingNode {
			l.errorf(root, "policy has no rules: add a rules list (the first matching rule decides)")
		}
		return p
	}
	p.rules = l.rules(rulesNode, p.groups)
	return p
}

// validGroupName: letters, digits, '.', '_', '-', starting with a letter or
// digit, at most 64 characters. No colon, so group:NAME stays unambiguous.
func validGroupName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '_' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (l *loader) groups(n *yaml.Node) []*group {
	var out []*group
	l.mapping(n, "groups", nil, func(name string, k, v *yaml.Node) {
		if !validGroupName(name) {
			l.errorf(k, "groups: %q is not a valid group name (letters, digits, '.', '_', '-'; at most 64)", name)
			return
		}
		g := &group{name: name, line: k.Line, members: map[string]bool{}}
		out = append(out, g)
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			return // an empty group is allowed: a placeholder to fill in
		}
		members, nodes, _ := l.list(v, "group "+name, "")
		for i, m := range members {
			if strings.HasPrefix(m, groupPrefix+":") {
				l.errorf(nodes[i], "group %s: %q: groups cannot contain groups; list its members", name, m)
				continue
			}
			if m == Wildcard {
				l.errorf(nodes[i], "group %s: * cannot be a member; use subjects: [\"*\"] in a rule", name)
				continue
			}
			if _, _, err := l.splitID(m, false); err != nil {
				l.errorf(nodes[i], "group %s: member %v", name, err)
				continue
			}
			g.members[m] = true
		}
	})
	return out
}

func (l *loader) rules(n *yaml.Node, groups []*group) []*rule {
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "rules: want a list of rules, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		l.errorf(n, "rules: empty list; a policy needs at least one rule")
		return nil
	}
	var out []*rule
	names := map[string]int{}
	for i, c := range n.Content {
		c = l.node(c)
		if c == nil {
			return nil
		}
		r := l.rule(c, i+1, groups)
		if r == nil {
			continue
		}
		if r.name == "" {
			out = append(out, r)
			continue
		}
		if prev, dup := names[r.name]; dup {
			l.errorf(c, "rule %q: name already used by the rule at line %d", r.name, prev)
		}
		names[r.name] = r.line
		out = append(out, r)
	}
	return out
}

// rule parses one rule. It returns nil when the rule is not a mapping.
func (l *loader) rule(n *yaml.Node, index int, groups []*group) *rule {
	r := &rule{line: n.Line, ttl: DefaultTTL}
	what := fmt.Sprintf("rule %d", index)
	if n.Kind == yaml.MappingNode { // name the rule in every message, even for keys before its name
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) != "" {
				what = fmt.Sprintf("rule %q", strings.TrimSpace(v.Value))
			}
		}
	}
	nodes := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	ruleKeys := []string{"name", "subjects", "channels", "actions", "when", "effect", "approvers", "distinct_approver", "ttl", "reason"}
	if !l.mapping(n, what, ruleKeys, func(key string, k, v *yaml.Node) { nodes[key], keys[key] = v, k }) {
		return nil
	}
	if v, ok := nodes["name"]; ok {
		if s, ok := l.str(v, what+": name"); ok {
			r.name = strings.TrimSpace(s)
			if r.name == "" {
				l.errorf(v, "%s: name is empty", what)
			}
			if r.name == DefaultRule {
				l.errorf(v, "%s: %q is reserved for the policy default", what, DefaultRule)
			}
			if len(r.name) > 200 {
				l.errorf(v, "%s: name longer than 200 characters", what)
			}
		}
	} else {
		l.errorf(n, "%s: name is required (it is shown in decisions and the audit log)", what)
	}

	if v, ok := nodes["effect"]; ok {
		if s, ok := l.str(v, what+": effect"); ok {
			switch Effect(s) {
			case Allow, Deny, Confirm:
				r.effect = Effect(s)
			default:
				l.errorf(v, "%s: effect %q is not allow, deny or confirm", what, s)
			}
		}
	} else {
		l.errorf(n, "%s: effect is required (allow, deny or confirm)", what)
	}

	if v, ok := nodes["subjects"]; ok {
		r.subjects = l.subjects(v, what, groups)
	}
	if v, ok := nodes["channels"]; ok {
		r.channels = l.channels(v, what)
	}
	if v, ok := nodes["actions"]; ok {
		r.actions = l.actionPatterns(v, what)
	}
	if v, ok := nodes["when"]; ok {
		r.when = l.condition(v, what, r.actions)
	}
	if v, ok := nodes["reason"]; ok {
		if s, ok := l.str(v, what+": reason"); ok {
			r.reason = strings.TrimSpace(s)
		}
	}

	// Confirmation settings belong to confirm rules only.
	for _, key := range []string{"approvers", "distinct_approver", "ttl"} {
		if k, ok := keys[key]; ok && r.effect != "" && r.effect != Confirm {
			l.errorf(k, "%s: %s applies only to effect confirm, not %s", what, key, r.effect)
			delete(nodes, key)
		}
	}
	if v, ok := nodes["approvers"]; ok {
		r.approvers = l.approvers(v, what, groups)
	}
	if v, ok := nodes["distinct_approver"]; ok {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			l.errorf(v, "%s: distinct_approver: want true or false, got %s", what, kindName(v))
		} else {
			r.distinct = v.Value == "true"
		}
	}
	if v, ok := nodes["ttl"]; ok {
		if s, ok := l.str(v, what+": ttl"); ok {
			d, err := action.ParseDuration(s)
			switch {
			case err != nil:
				l.errorf(v, "%s: ttl: %v", what, err)
			case d > MaxTTL:
				l.errorf(v, "%s: ttl %s is longer than the maximum %s", what, s, action.FormatDuration(MaxTTL))
			case d < time.Second:
				l.errorf(v, "%s: ttl %s is too short for anyone to confirm; use at least 1s", what, s)
			default:
				r.ttl = d
			}
		}
	}
	if r.effect == Confirm {
		if r.approvers == nil && nodes["approvers"] == nil {
			r.approvers = []string{Requester}
		}
		if r.distinct && slices.Contains(r.approvers, Requester) {
			at := nodes["distinct_approver"]
			if len(r.approvers) == 1 {
				l.errorf(at, "%s: distinct_approver with approvers [requester] can never be satisfied; name a group or ids", what)
			} else {
				l.errorf(at, "%s: distinct_approver excludes the requester; remove requester from approvers", what)
			}
		}
	}
	return r
}

func (l *loader) subjects(n *yaml.Node, what string, groups []*group) []subjectPattern {
	vals, nodes, _ := l.list(n, what+": subjects", "; omit subjects to match anyone")
	out := make([]subjectPattern, 0, len(vals))
	for i, s := range vals {
		switch {
		case s == Wildcard:
			out = append(out, subjectPattern{raw: s, any: true})
		case strings.HasPrefix(s, groupPrefix+":"):
			name := strings.TrimPrefix(s, groupPrefix+":")
			if !hasGroup(groups, name) {
				l.errorf(nodes[i], "%s: subjects: unknown group %q%s", what, name, knownGroups(groups))
				continue
			}
			out = append(out, subjectPattern{raw: s, group: name})
		default:
			p, id, err := l.splitID(s, true)
			if err != nil {
				l.errorf(nodes[i], "%s: subjects: %v, or group:NAME, or *", what, err)
				continue
			}
			switch {
			case id == Wildcard:
				out = append(out, subjectPattern{raw: s, platform: p.name})
			case p.group:
				out = append(out, subjectPattern{raw: s, group2: true})
			default:
				out = append(out, subjectPattern{raw: s})
			}
		}
	}
	if len(out) == 0 {
		return []subjectPattern{} // matches nobody; the error is already reported
	}
	return out
}

func (l *loader) channels(n *yaml.Node, what string) []channelPattern {
	vals, nodes, _ := l.list(n, what+": channels", "; omit channels to match any channel")
	out := make([]channelPattern, 0, len(vals))
	for i, s := range vals {
		if s == Wildcard {
			out = append(out, channelPattern{raw: s, any: true})
			continue
		}
		p, id, err := l.splitID(s, true)
		if err == nil && !p.channel {
			err = fmt.Errorf("%q: %s names a group, not a channel", s, p.name)
		}
		if err != nil {
			l.errorf(nodes[i], "%s: channels: %v, or *", what, err)
			continue
		}
		if id == Wildcard {
			out = append(out, channelPattern{raw: s, platform: p.name})
		} else {
			out = append(out, channelPattern{raw: s})
		}
	}
	return out
}

// validActionPattern: lower-case letters, digits, '.', '_', '-' and '*'.
func validActionPattern(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '*') {
			return false
		}
	}
	return true
}

func (l *loader) actionPatterns(n *yaml.Node, what string) []actionPattern {
	vals, nodes, _ := l.list(n, what+": actions", "; omit actions to match any action")
	out := make([]actionPattern, 0, len(vals))
	for i, s := range vals {
		if !validActionPattern(s) {
			l.errorf(nodes[i], "%s: actions: %q is not an action name or pattern such as kubernetes.*", what, s)
			continue
		}
		pat := actionPattern(s)
		matched := false
		for _, a := range l.actions {
			if pat.match(a.Name) {
				matched = true
				break
			}
		}
		if !matched {
			if pat.isGlob() {
				l.errorf(nodes[i], "%s: actions: pattern %q matches no action (actions: %s)", what, s, l.actionNames())
			} else if near := closest(s, l.actionNameList()); near != "" {
				l.errorf(nodes[i], "%s: actions: unknown action %q; did you mean %q?", what, s, near)
			} else {
				l.errorf(nodes[i], "%s: actions: unknown action %q (actions: %s)", what, s, l.actionNames())
			}
			continue
		}
		out = append(out, pat)
	}
	return out
}

func (l *loader) actionNameList() []string {
	names := make([]string, len(l.actions))
	for i, a := range l.actions {
		names[i] = a.Name
	}
	return names
}

func (l *loader) actionNames() string { return strings.Join(l.actionNameList(), ", ") }

func (l *loader) approvers(n *yaml.Node, what string, groups []*group) []string {
	vals, nodes, _ := l.list(n, what+": approvers", "; omit approvers to let the requester confirm")
	out := make([]string, 0, len(vals))
	for i, s := range vals {
		switch {
		case s == Requester:
		case strings.HasPrefix(s, groupPrefix+":"):
			name := strings.TrimPrefix(s, groupPrefix+":")
			if !hasGroup(groups, name) {
				l.errorf(nodes[i], "%s: approvers: unknown group %q%s", what, name, knownGroups(groups))
				continue
			}
		case s == Wildcard:
			l.errorf(nodes[i], "%s: approvers: * would let anyone confirm; name requester, group:NAME or ids", what)
			continue
		default:
			if _, _, err := l.splitID(s, false); err != nil {
				l.errorf(nodes[i], "%s: approvers: %v, or requester, or group:NAME", what, err)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// condition compiles a rule's when. Parameter names are checked against
// the actions the rule covers.
func (l *loader) condition(n *yaml.Node, what string, pats []actionPattern) *condition {
	src, ok := l.str(n, what+": when")
	if !ok {
		return nil
	}
	var covered []string
	for _, a := range l.actions {
		if pats == nil || slices.ContainsFunc(pats, func(p actionPattern) bool { return p.match(a.Name) }) {
			covered = append(covered, a.Name)
		}
	}
	var params []string
	var specs []action.Spec
	for _, a := range l.actions {
		if !slices.Contains(covered, a.Name) {
			continue
		}
		specs = append(specs, a)
		for _, p := range a.Params {
			if !slices.Contains(params, p.Name) {
				params = append(params, p.Name)
			}
		}
	}
	if params == nil {
		params = []string{} // the covered actions take no parameters
	}
	actions := "any action"
	if pats != nil {
		actions = strings.Join(covered, ", ")
	}
	fields := paramsOf(specs)
	typed, err := l.typedEnv(fields)
	if err != nil { // a programming error: the declarations are fixed
		l.errorf(n, "%s: when: cannot type-check: %v", what, err)
		return nil
	}
	c, issues := compileCondition(l.env, src, params, actions, &typing{fields: fields, env: typed})
	for _, is := range issues {
		line := n.Line
		if n.Style&yaml.LiteralStyle != 0 {
			line += is.line // a literal block keeps its lines and starts after the | line
		}
		l.errorAt(line, "%s: when: %s", what, is.msg)
	}
	return c
}

func (l *loader) errorAt(line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func hasGroup(groups []*group, name string) bool {
	return slices.ContainsFunc(groups, func(g *group) bool { return g.name == name })
}

func knownGroups(groups []*group) string {
	if len(groups) == 0 {
		return " (the policy defines no groups)"
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	return " (groups: " + strings.Join(names, ", ") + ")"
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
