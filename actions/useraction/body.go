package useraction

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
)

// A JSON body is written in the action file as YAML. Keys and numbers,
// booleans and nulls are taken as written; every string is a template
// whose result is JSON-encoded as a string, so a parameter can never
// splice JSON into the body: a value `", "admin": true` stays one string.
// A string that is exactly {{ .name }} keeps the parameter's type (an
// integer stays a number) and, in an object, leaves the key out when the
// parameter was not given.
type jsonValue interface{ isJSON() }

type (
	jsonObject struct {
		keys []string
		vals []jsonValue
	}
	jsonArray   []jsonValue
	jsonLiteral json.RawMessage
	jsonText    struct {
		t     *template.Template
		field string // the parameter when the text is exactly {{ .field }}
	}
)

func (jsonObject) isJSON()  {}
func (jsonArray) isJSON()   {}
func (jsonLiteral) isJSON() {}
func (jsonText) isJSON()    {}

// maxBodyDepth bounds nesting in a body template.
const maxBodyDepth = 32

// parseBody reads a body template from YAML.
func (l *loader) parseBody(n *yaml.Node, params []string, depth int) (jsonValue, bool) {
	n = l.node(n)
	if n == nil {
		return nil, false
	}
	if depth > maxBodyDepth {
		l.errorf(n, "run.http.json: nested more than %d deep", maxBodyDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		obj := jsonObject{}
		ok := true
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := l.node(n.Content[i])
			if k == nil {
				return nil, false
			}
			if k.Kind != yaml.ScalarNode {
				l.errorf(k, "run.http.json: keys must be text")
				ok = false
				continue
			}
			if strings.Contains(k.Value, "{{") {
				l.errorf(k, "run.http.json: key %q: keys are written out; only values may use parameters", k.Value)
				ok = false
				continue
			}
			if seen[k.Value] {
				l.errorf(k, "run.http.json: key %q given twice", k.Value)
				ok = false
				continue
			}
			seen[k.Value] = true
			v, good := l.parseBody(n.Content[i+1], params, depth+1)
			ok = ok && good
			obj.keys = append(obj.keys, k.Value)
			obj.vals = append(obj.vals, v)
		}
		return obj, ok
	case yaml.SequenceNode:
		arr := jsonArray{}
		ok := true
		for _, c := range n.Content {
			v, good := l.parseBody(c, params, depth+1)
			ok = ok && good
			arr = append(arr, v)
		}
		return arr, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float", "!!bool", "!!null":
			var v any
			if err := n.Decode(&v); err != nil {
				l.errorf(n, "run.http.json: %v", err)
				return nil, false
			}
			b, err := json.Marshal(v)
			if err != nil {
				l.errorf(n, "run.http.json: %s cannot be written as JSON", n.Value)
				return nil, false
			}
			return jsonLiteral(b), true
		}
		t, err := parseTemplate("json", n.Value, params)
		if err != nil {
			l.errorf(n, "run.http.json: %v", err)
			return nil, false
		}
		field, _ := soleField(t)
		return jsonText{t: t, field: field}, true
	}
	l.errorf(n, "run.http.json: unexpected YAML")
	return nil, false
}

// renderJSON writes v as compact JSON for the parameters.
func renderJSON(v jsonValue, p action.Params, data map[string]any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v, p, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v jsonValue, p action.Params, data map[string]any) error {
	switch v := v.(type) {
	case jsonObject:
		b.WriteByte('{')
		first := true
		for i, k := range v.keys {
			if t, ok := v.vals[i].(jsonText); ok && t.field != "" && p[t.field] == nil {
				continue // a parameter not given is left out, not sent empty
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if err := writeJSON(b, v.vals[i], p, data); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case jsonArray:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e, p, data); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case jsonLiteral:
		b.Write(v)
	case jsonText:
		var out any
		if v.field != "" {
			out = p[v.field] // typed: string, int or bool; null when absent
		} else {
			s, err := execute(v.t, data)
			if err != nil {
				return fmt.Errorf("json body: %v", err)
			}
			out = s
		}
		enc, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("json body: %v", err)
		}
		b.Write(enc)
	}
	return nil
}
