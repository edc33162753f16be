package evals

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// schemaNode is a compiled JSON Schema, the subset extraction suites use:
// type (one or a list), properties, required, additionalProperties
// (boolean), items, enum, const, minimum, maximum, minLength, maxLength,
// pattern, minItems, maxItems. Unknown keywords are an error, so a schema
// never silently checks less than it says.
type schemaNode struct {
	types      []string
	properties map[string]*schemaNode
	required   []string
	noExtra    bool
	items      *schemaNode
	enum       []any
	konst      any
	hasConst   bool
	min, max   *float64
	minLen     *int
	maxLen     *int
	minItems   *int
	maxItems   *int
	pattern    *regexp.Regexp
}

var schemaKeys = []string{"$schema", "$id", "title", "description", "type", "properties", "required", "additionalProperties",
	"items", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"}

var schemaTypes = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

func compileSchema(raw any) (*schemaNode, error) {
	m, ok := normalizeYAML(raw).(map[string]any)
	if !ok {
		return nil, errors.New("a schema is an object")
	}
	n := &schemaNode{}
	for k := range m {
		if !slices.Contains(schemaKeys, k) {
			return nil, fmt.Errorf("unsupported keyword %q", k)
		}
	}
	switch t := m["type"].(type) {
	case nil:
	case string:
		n.types = []string{t}
	case []any:
		for _, x := range t {
			s, _ := x.(string)
			n.types = append(n.types, s)
		}
	default:
		return nil, errors.New("type must be a string or a list")
	}
	for _, t := range n.types {
		if !slices.Contains(schemaTypes, t) {
			return nil, fmt.Errorf("unknown type %q", t)
		}
	}
	if p, ok := m["properties"].(map[string]any); ok {
		n.properties = map[string]*schemaNode{}
		for k, v := range p {
			c, err := compileSchema(v)
			if err != nil {
				return nil, fmt.Errorf("properties.%s: %w", k, err)
			}
			n.properties[k] = c
		}
	}
	if r, ok := m["required"].([]any); ok {
		for _, x := range r {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("required lists names")
			}
			n.required = append(n.required, s)
		}
	}
	if ap, ok := m["additionalProperties"]; ok {
		b, isBool := ap.(bool)
		if !isBool {
			return nil, errors.New("additionalProperties: only true or false is supported")
		}
		n.noExtra = !b
	}
	if it, ok := m["items"]; ok {
		c, err := compileSchema(it)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		n.items = c
	}
	if e, ok := m["enum"].([]any); ok {
		n.enum = e
	}
	if c, ok := m["const"]; ok {
		n.konst, n.hasConst = c, true
	}
	f := func(key string) (*float64, error) {
		v, ok := m[key]
		if !ok {
			return nil, nil
		}
		x, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("%s must be a number", key)
		}
		return &x, nil
	}
	i := func(key string) (*int, error) {
		p, err := f(key)
		if p == nil || err != nil {
			return nil, err
		}
		v := int(*p)
		return &v, nil
	}
	var err error
	if n.min, err = f("minimum"); err != nil {
		return nil, err
	}
	if n.max, err = f("maximum"); err != nil {
		return nil, err
	}
	if n.minLen, err = i("minLength"); err != nil {
		return nil, err
	}
	if n.maxLen, err = i("maxLength"); err != nil {
		return nil, err
	}
	if n.minItems, err = i("minItems"); err != nil {
		return nil, err
	}
	if n.maxItems, err = i("maxItems"); err != nil {
		return nil, err
	}
	if p, ok := m["pattern"].(string); ok {
		if n.pattern, err = regexp.Compile(p); err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
	}
	return n, nil
}

// normalizeYAML turns YAML's map[string]any/[]any/int into the shapes
// encoding/json produces.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeYAML(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeYAML(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number, float64:
		f, _ := toFloat(x)
		if f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// validate checks v (decoded with UseNumber) and names the first problem
// by its JSON path.
func (n *schemaNode) validate(v any, path string) error {
	t := jsonType(v)
	if len(n.types) > 0 && !slices.Contains(n.types, t) && !(t == "integer" && slices.Contains(n.types, "number")) {
		return fmt.Errorf("%s: want %s, got %s", path, strings.Join(n.types, " or "), t)
	}
	if n.hasConst && !jsonEqual(v, n.konst) {
		return fmt.Errorf("%s: want %v", path, n.konst)
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return jsonEqual(v, e) }) {
		return fmt.Errorf("%s: %v is not one of %v", path, v, n.enum)
	}
	switch x := v.(type) {
	case string:
		l := utf8.RuneCountInString(x)
		if n.minLen != nil && l < *n.minLen || n.maxLen != nil && l > *n.maxLen {
			return fmt.Errorf("%s: length %d out of range", path, l)
		}
		if n.pattern != nil && !n.pattern.MatchString(x) {
			return fmt.Errorf("%s: %q does not match %s", path, x, n.pattern)
		}
	case json.Number, float64:
		f, _ := toFloat(x)
		if n.min != nil && f < *n.min || n.max != nil && f > *n.max {
			return fmt.Errorf("%s: %v out of range", path, f)
		}
	case []any:
		if n.minItems != nil && len(x) < *n.minItems || n.maxItems != nil && len(x) > *n.maxItems {
			return fmt.Errorf("%s: %d items out of range", path, len(x))
		}
		if n.items != nil {
			for i, e := range x {
				if err := n.items.validate(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		for _, r := range n.required {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: missing %q", path, r)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c, ok := n.properties[k]
			if !ok {
				if n.noExtra {
					return fmt.Errorf("%s: unexpected %q", path, k)
				}
				continue
			}
			if err := c.validate(x[k], path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func jsonEqual(a, b any) bool {
	fa, aok := toFloat(a)
	fb, bok := toFloat(b)
	if aok && bok {
		return fa == fb
	}
	return reflect.DeepEqual(a, b)
}
