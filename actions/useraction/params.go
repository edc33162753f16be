package useraction

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
)

// Parameter types an action file may declare, and what each becomes.
// string with enum becomes an action.Enum; namespace, deployment and
// service are strings resolved against the inventory (the routers offer
// the names that exist).
var paramTypes = []string{"string", "integer", "duration", "boolean", "namespace", "deployment", "service"}

var paramKeys = []string{"type", "description", "required", "default", "enum", "pattern", "min", "max"}

// paramNameRE: parameter names are template fields (.site) and environment
// variable suffixes (PARLEY_PARAM_SITE).
var paramNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// reservedParams cannot be parameter names: the reply template reads the
// response as .response.
var reservedParams = []string{"response"}

const maxParams = 20

func (l *loader) parseParams(n *yaml.Node) ([]action.Param, bool) {
	var out []action.Param
	ok := true
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, true
	}
	l.mapping(n, "params", nil, func(name string, k, v *yaml.Node) {
		switch {
		case !paramNameRE.MatchString(name):
			l.errorf(k, "params: %q is not a parameter name (lowercase letters, digits and _, starting with a letter)", name)
			ok = false
			return
		case slices.Contains(reservedParams, name):
			l.errorf(k, "params: %q is reserved (the reply template reads the response as .%s)", name, name)
			ok = false
			return
		case len(out) == maxParams:
			l.errorf(k, "params: more than %d parameters", maxParams)
			ok = false
			return
		}
		p, good := l.parseParam(name, v)
		ok = ok && good
		if good {
			out = append(out, p)
		}
	})
	return out, ok
}

func (l *loader) parseParam(name string, n *yaml.Node) (action.Param, bool) {
	what := "params." + name
	p := action.Param{Name: name}
	ok := true
	var typ string
	var typeNode, enumNode, patternNode, minNode, maxNode, defaultNode *yaml.Node
	if !l.mapping(n, what, paramKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "type":
			typeNode = v
			typ, _ = l.text(v, what+".type")
		case "description":
			p.Description, _ = l.text(v, what+".description")
		case "required":
			var good bool
			p.Required, good = l.boolean(v, what+".required")
			ok = ok && good
		case "default":
			defaultNode = v
		case "enum":
			enumNode = v
		case "pattern":
			patternNode = v
		case "min":
			minNode = v
		case "max":
			maxNode = v
		}
	}) {
		return p, false
	}
	switch typ {
	case "":
		if typeNode == nil {
			l.errorf(n, "%s: missing type (one of %s)", what, strings.Join(paramTypes, ", "))
		}
		return p, false
	case "string":
		p.Type = action.String
	case "integer":
		p.Type = action.Int
	case "duration":
		p.Type = action.Duration
	case "boolean":
		p.Type = action.Bool
	case "namespace":
		p.Type, p.Source = action.String, action.Namespaces
	case "deployment":
		p.Type, p.Source = action.String, action.Deployments
	case "service":
		p.Type, p.Source = action.String, action.Services
	default:
		if near := closest(typ, paramTypes); near != "" {
			l.errorf(typeNode, "%s.type: unknown type %q; did you mean %q?", what, typ, near)
		} else {
			l.errorf(typeNode, "%s.type: unknown type %q (want one of %s)", what, typ, strings.Join(paramTypes, ", "))
		}
		return p, false
	}
	if enumNode != nil {
		if typ != "string" {
			l.errorf(enumNode, "%s.enum: only a string parameter takes an enum (this one is %s)", what, typ)
			ok = false
		} else if vals, good := l.enumValues(enumNode, what); good {
			p.Type, p.Enum = action.Enum, vals
		} else {
			ok = false
		}
	}
	if patternNode != nil {
		switch {
		case p.Type != action.String:
			why := "a " + typ
			if p.Type == action.Enum {
				why = "an enum (it lists every allowed value already)"
			}
			l.errorf(patternNode, "%s.pattern: only a string parameter takes a pattern, not %s", what, why)
			ok = false
		default:
			re, err := l.pattern(patternNode, what)
			if err != nil {
				l.errorf(patternNode, "%s.pattern: %v", what, err)
				ok = false
			}
			p.Pattern = re
		}
	}
	for _, b := range []struct {
		node  *yaml.Node
		key   string
		field **int
	}{{minNode, "min", &p.Min}, {maxNode, "max", &p.Max}} {
		if b.node == nil {
			continue
		}
		if p.Type != action.Int {
			l.errorf(b.node, "%s.%s: only an integer parameter takes %s", what, b.key, b.key)
			ok = false
			continue
		}
		v, good := l.integer(b.node, what+"."+b.key)
		if !good {
			ok = false
			continue
		}
		*b.field = &v
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		l.errorf(maxNode, "%s: min %d is above max %d", what, *p.Min, *p.Max)
		ok = false
	}
	if defaultNode != nil && ok {
		d, good := l.defaultValue(defaultNode, p, what)
		ok = ok && good
		p.Default = d
	}
	return p, ok
}

func (l *loader) enumValues(n *yaml.Node, what string) ([]string, bool) {
	items, ok := l.list(n, what+".enum")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		l.errorf(n, "%s.enum: empty list", what)
		return nil, false
	}
	var vals []string
	for _, it := range items {
		s, good := l.text(it, what+".enum")
		if !good {
			ok = false
			continue
		}
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			l.errorf(it, "%s.enum: an empty value", what)
			ok = false
		case len(s) > 100:
			l.errorf(it, "%s.enum: %q is longer than 100 bytes", what, s)
			ok = false
		case slices.ContainsFunc(vals, func(v string) bool { return strings.EqualFold(v, s) }):
			l.errorf(it, "%s.enum: %q listed twice", what, s)
			ok = false
		default:
			vals = append(vals, s)
		}
	}
	return vals, ok
}

// pattern compiles a pattern that must match the whole value: it starts
// with ^ and ends with $, so '^/[a-z]*$' refuses "/a; rm -rf /" where an
// unanchored '/[a-z]*' would accept it.
func (l *loader) pattern(n *yaml.Node, what string) (*regexp.Regexp, error) {
	src, ok := l.text(n, what+".pattern")
	if !ok {
		return nil, nil
	}
	if len(src) > 1000 {
		return nil, fmt.Errorf("longer than 1000 bytes")
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%q does not compile: %v", src, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	tree, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, err
	}
	if !anchored(tree) {
		return nil, fmt.Errorf("%q must match the whole value: start it with ^ and end it with $ (alternatives in a group: ^(a|b)$)", src)
	}
	return re, nil
}

func anchored(re *syntax.Regexp) bool {
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return false
	}
	return re.Sub[0].Op == syntax.OpBeginText && re.Sub[len(re.Sub)-1].Op == syntax.OpEndText
}

// defaultValue reads a default in the parameter's type; action.Spec.Check
// then validates it against the enum, pattern and range.
func (l *loader) defaultValue(n *yaml.Node, p action.Param, what string) (any, bool) {
	if p.Required {
		l.errorf(n, "%s: required and has a default: choose one", what)
		return nil, false
	}
	var v any
	var ok bool
	switch p.Type {
	case action.Int:
		v, ok = l.integer(n, what+".default")
	case action.Bool:
		v, ok = l.boolean(n, what+".default")
	default:
		v, ok = l.str(n, what+".default")
	}
	if !ok {
		return nil, false
	}
	probe := p
	probe.Default, probe.Required = nil, false
	spec := action.Spec{Name: "x", Kind: action.Read, Params: []action.Param{probe}}
	if _, err := spec.Validate(map[string]any{p.Name: v}); err != nil {
		l.errorf(n, "%s.default: %s", what, strings.TrimPrefix(err.Error(), "invalid parameters: x: "))
		return nil, false
	}
	return v, true
}
