package action

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ParamType is the type of a parameter value.
type ParamType string

const (
	String   ParamType = "string"
	Int      ParamType = "integer"
	Duration ParamType = "duration" // Prometheus-style: 30m, 1h, 1d, 1h30m
	Enum     ParamType = "enum"     // one of Param.Enum
	Bool     ParamType = "boolean"  // true or false ("yes", "no", "true", "false" as text)
)

// Source says which inventory a parameter's value is resolved against.
type Source string

const (
	NoSource     Source = ""
	Deployments  Source = "deployment"
	Namespaces   Source = "namespace"
	Services     Source = "service"
	EvalSuites   Source = "eval_suite"
	EvalVariants Source = "eval_variant"
)

// Param is one typed parameter of an action.
type Param struct {
	Name        string
	Type        ParamType
	Description string
	Required    bool
	Enum        []string // for Enum
	Min, Max    *int     // for Int
	Source      Source
	// Pattern, for String, is a regular expression the whole value must
	// match (anchor it: '^/[a-z]*$'); nil accepts any text.
	Pattern *regexp.Regexp
	// Default is the value used when the request gives none (already of
	// the parameter's type: string, int or bool); nil means absent.
	Default any
	// Words are words that introduce the value in a sentence, for the
	// offline router: "replicas"/"pods" for a replica count ("5 pods",
	// "replicas 5"), "rev" for a revision ("rev 3", also glued: "rev3"),
	// "site" for a site ("purge the cache of site shop"), "#" for a number
	// written "#42". They also work as keys: "rev:3". A phrase is allowed
	// ("run id").
	Words []string
	// Synonyms are other words for a value, for the offline router: for
	// an Enum, {"latency_p99": {"p99", "tail latency"}}; for a Bool,
	// {"true": {"enable"}, "false": {"disable"}}. A phrase may use the
	// Vocabulary phrase syntax. A synonym listed under several values is a
	// weak one: it gives a value only when no other is named, and then the
	// first of them in Enum order ("latency" alone is latency_p99).
	Synonyms map[string][]string
	// Code marks a String parameter whose value is an expression typed
	// literally in backticks (PromQL, LogQL): the offline router fills it
	// only from such code. A Pattern on it says which code it takes.
	Code bool
}

// Example is a request as people type it and the parameters it means.
// The offline router generalises from examples; help and the LLM tool
// descriptions show them.
type Example struct {
	Text   string
	Params map[string]any
}

// Spec is an action's public contract.
type Spec struct {
	Name        string
	Description string // one line: what the action does (the "summary")
	Kind        Kind
	Params      []Param
	Examples    []Example
	// Vocabulary is how people ask for the action, for the offline router.
	// Empty means the router derives it from the examples.
	Vocabulary Vocabulary
}

// Vocabulary is the words people use for an action, for the offline
// router. A user-defined action usually leaves it empty: the router then
// derives one from the name, summary, parameters and examples.
//
// An entry is a word or a phrase. In a phrase, "a|b" is either word,
// "(a|b)" the same, "a?" an optional word and "..." up to four words of
// the same clause: "how many ... pods|replicas", "(deploy|rollout) ...
// (done|finished)". Matching is case-insensitive and typo tolerant for
// words of five letters or more.
type Vocabulary struct {
	// Verbs ask for the action when used as a command ("scale", "resize";
	// "roll ... back"). A mutating action is only chosen when one of them
	// is used as a command (or a value of its parameters is set with a
	// verb such as "set", "bump" or "return ... to", or wanted: "we need 5
	// pods"). A verb that is also a common verb ("run", "start", "test")
	// counts only when the message also has a cue of the action or names
	// something of one of its parameters' inventories.
	Verbs []string
	// Cues point at the action, with a weight: about 1 for a weak hint, 3
	// for a word that nearly settles it ("logs" for a log search). A cue
	// in angle brackets is not a word:
	//   - "<param>", a parameter of the action: the message gives a value
	//     for it (a key:value, a value introduced by its Words, one of its
	//     enum values or synonyms, a name from its inventory, code);
	//   - a situation the router recognises: CueCapability, CueWellness,
	//     CueSymptom, CueNamed.
	Cues map[string]float64
}

// Situations the offline router recognises, for Vocabulary.Cues.
const (
	// CueCapability is a question about what the bot can do: "what can
	// you do?", "which things you can make for me?".
	CueCapability = "<capability>"
	// CueWellness asks whether a named thing is well: "is checkout ok?",
	// "are we good on pricing?", "something's up with identity".
	CueWellness = "<wellness>"
	// CueSymptom is a symptom described after a request to look into a
	// named thing: "investigate mailer, emails aren't going out". Its
	// words describe the trouble; only the cues of actions that name this
	// situation count in it.
	CueSymptom = "<symptom>"
	// CueNamed is a message that names inventory things and nothing else
	// the router understands ("checkout prod?").
	CueNamed = "<named>"
)

// Situations lists the situation cues.
var Situations = []string{CueCapability, CueWellness, CueSymptom, CueNamed}

// ExampleCall writes an explicit call of the action from its first
// example with parameters ("kubernetes.status deployment:checkout
// namespace:prod"; a value with a space or a quote in backticks), or ""
// when no example has any.
func (s Spec) ExampleCall() string {
	for _, ex := range s.Examples {
		if len(ex.Params) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(s.Name)
		for _, p := range s.Params {
			if v, ok := ex.Params[p.Name]; ok {
				val := fmt.Sprint(v)
				if strings.ContainsAny(val, " \"'") {
					val = "`" + val + "`"
				}
				fmt.Fprintf(&b, " %s:%s", p.Name, val)
			}
		}
		return b.String()
	}
	return ""
}

// ExampleTexts returns the texts of the spec's examples.
func (s Spec) ExampleTexts() []string {
	out := make([]string, len(s.Examples))
	for i, e := range s.Examples {
		out[i] = e.Text
	}
	return out
}

// Params are validated parameter values: string for String, Enum and
// Duration (normalised, e.g. "1h"), int for Int.
type Params map[string]any

// String returns a parameter as text ("" when absent).
func (p Params) String(name string) string {
	switch v := p[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

// Int returns an integer parameter and whether it is present.
func (p Params) Int(name string) (int, bool) {
	v, ok := p[name].(int)
	return v, ok
}

// Canonical is a stable text form of the parameters (sorted keys, JSON),
// used to bind confirmations to exact parameters.
func (p Params) Canonical() string {
	var buf [256]byte
	return string(p.AppendCanonical(buf[:0]))
}

// AppendCanonical appends Canonical's text to b: each key and value as
// encoding/json writes it, keys sorted. Strings, ints and booleans (what
// validated parameters hold) are written here; any other value by
// encoding/json itself, so the text cannot differ from encoding/json's.
func (p Params) AppendCanonical(b []byte) []byte {
	var spare [8]string
	keys := spare[:0]
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(AppendJSONString(b, k), ':')
		switch v := p[k].(type) {
		case string:
			b = AppendJSONString(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case nil:
			b = append(b, "null"...)
		default:
			vj, _ := json.Marshal(v) // as it always was: a value that cannot marshal writes nothing
			b = append(b, vj...)
		}
	}
	return append(b, '}')
}

// AppendJSONString appends s as encoding/json writes it (HTML-escaped).
// Printable ASCII but for the three characters it escapes as HTML (<, >,
// &) is written here, quotes and backslashes escaped; a string with any
// other byte (controls, non-ASCII, invalid UTF-8) is left to encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' {
			j, err := json.Marshal(s)
			if err != nil { // a string always encodes; were it not to, it must not verify
				return append(b, "unencodable"...)
			}
			return append(b, j...)
		}
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ParseParams reads the JSON form of Params (as Canonical writes it) back;
// whole numbers become int, as validated parameters are, so Canonical of
// the result reproduces the text.
func ParseParams(s string) (Params, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	p := make(Params, len(raw))
	for k, v := range raw {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				p[k] = int(i)
				continue
			}
			f, _ := n.Float64()
			p[k] = f
			continue
		}
		p[k] = v
	}
	return p, nil
}

// Clone returns a copy.
func (p Params) Clone() Params {
	out := make(Params, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// Param returns the named parameter.
func (s Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Check reports whether the spec itself is well formed.
func (s Spec) Check() error {
	if s.Name == "" {
		return fmt.Errorf("action spec without a name")
	}
	if s.Kind != Read && s.Kind != Mutating {
		return fmt.Errorf("action %s: kind %q is neither read nor mutating", s.Name, s.Kind)
	}
	seen := map[string]bool{}
	for _, p := range s.Params {
		if seen[p.Name] {
			return fmt.Errorf("action %s: parameter %q declared twice", s.Name, p.Name)
		}
		seen[p.Name] = true
		switch p.Type {
		case String, Int, Duration, Bool:
		case Enum:
			if len(p.Enum) == 0 {
				return fmt.Errorf("action %s: enum parameter %q has no values", s.Name, p.Name)
			}
		default:
			return fmt.Errorf("action %s: parameter %q has unknown type %q", s.Name, p.Name, p.Type)
		}
		if p.Pattern != nil && p.Type != String {
			return fmt.Errorf("action %s: parameter %q: a pattern applies only to strings", s.Name, p.Name)
		}
		if p.Default != nil {
			if p.Required {
				return fmt.Errorf("action %s: parameter %q is required and has a default: choose one", s.Name, p.Name)
			}
			v, err := p.normalise(p.Default)
			if err != nil || v == nil {
				return fmt.Errorf("action %s: default of %q: %v", s.Name, p.Name, err)
			}
		}
	}
	return s.checkVocabulary()
}

// Validate checks raw parameter values (from a router, an LLM tool call or
// JSON) against the spec and returns them normalised. Unknown parameters,
// wrong types, values outside their enum, pattern or range and missing
// required parameters are errors wrapping ErrInvalid, each saying what is
// allowed; a missing one also matches ErrMissing (and comes with the
// valid values read so far). Empty strings count as absent.
func (s Spec) Validate(raw map[string]any) (Params, error) {
	out := Params{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		p, ok := s.Param(k)
		if !ok {
			return nil, fmt.Errorf("%w: %s has no parameter %q (%s)", ErrInvalid, s.Name, k, s.takes())
		}
		if v == nil {
			continue
		}
		nv, err := p.normalise(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, s.Name, err)
		}
		if nv == nil {
			continue
		}
		out[k] = nv
	}
	for _, p := range s.Params {
		if _, ok := out[p.Name]; !ok && p.Default != nil {
			v, err := p.normalise(p.Default) // checked by Check; normalised for a stable type
			if err != nil {
				return nil, fmt.Errorf("%w: %s: default: %v", ErrInvalid, s.Name, err)
			}
			out[p.Name] = v
		}
		if _, ok := out[p.Name]; p.Required && !ok {
			return out, missingError(fmt.Sprintf("%s needs %s", s.Name, p.Name))
		}
	}
	return out, nil
}

// ErrMissing matches a validation error that is a required parameter
// missing (it matches ErrInvalid too): the pipeline asks for it instead of
// refusing.
var ErrMissing = errors.New("missing parameter")

type missingError string

func (e missingError) Error() string { return ErrInvalid.Error() + ": " + string(e) }

func (e missingError) Is(target error) bool { return target == ErrInvalid || target == ErrMissing }

// takes describes the parameters the spec accepts.
func (s Spec) takes() string {
	if len(s.Params) == 0 {
		return "it takes no parameters"
	}
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return "it takes " + strings.Join(names, ", ")
}

// Missing lists required parameters absent from p.
func (s Spec) Missing(p Params) []string {
	var miss []string
	for _, sp := range s.Params {
		if _, ok := p[sp.Name]; sp.Required && !ok {
			miss = append(miss, sp.Name)
		}
	}
	return miss
}

func (p Param) normalise(v any) (any, error) {
	switch p.Type {
	case Int:
		var n int
		switch x := v.(type) {
		case int:
			n = x
		case int64:
			n = int(x)
		case float64:
			if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1e9 {
				return nil, fmt.Errorf("%s must be a whole number, got %v", p.Name, x)
			}
			n = int(x)
		case json.Number:
			i, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("%s must be a whole number, got %q", p.Name, x)
			}
			n = int(i)
		case string:
			if strings.TrimSpace(x) == "" {
				return nil, nil
			}
			i, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("%s must be a whole number, got %q", p.Name, x)
			}
			n = i
		default:
			return nil, fmt.Errorf("%s must be a whole number, got %T", p.Name, v)
		}
		if p.Min != nil && n < *p.Min {
			return nil, fmt.Errorf("%s must be at least %d, got %d", p.Name, *p.Min, n)
		}
		if p.Max != nil && n > *p.Max {
			return nil, fmt.Errorf("%s must be at most %d, got %d", p.Name, *p.Max, n)
		}
		return n, nil
	case Duration:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be a duration such as 30m or 1h, got %T", p.Name, v)
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		d, err := ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p.Name, err)
		}
		return FormatDuration(d), nil
	case Enum:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be one of %s, got %T", p.Name, strings.Join(p.Enum, ", "), v)
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		for _, e := range p.Enum {
			if strings.EqualFold(e, strings.TrimSpace(s)) {
				return e, nil
			}
		}
		return nil, fmt.Errorf("%s must be one of %s, got %q", p.Name, strings.Join(p.Enum, ", "), s)
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "":
				return nil, nil
			case "true", "yes", "y", "on", "1":
				return true, nil
			case "false", "no", "n", "off", "0":
				return false, nil
			}
			return nil, fmt.Errorf("%s must be true or false, got %q", p.Name, x)
		default:
			return nil, fmt.Errorf("%s must be true or false, got %T", p.Name, v)
		}
	default: // String
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int, int64, float64, json.Number:
			s = fmt.Sprint(x)
		default:
			return nil, fmt.Errorf("%s must be text, got %T", p.Name, v)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, nil
		}
		if len(s) > 4096 {
			return nil, fmt.Errorf("%s is longer than 4096 bytes", p.Name)
		}
		if p.Pattern != nil && !p.Pattern.MatchString(s) {
			return nil, fmt.Errorf("%s must match %s, got %q", p.Name, p.Pattern, s)
		}
		return s, nil
	}
}

// JSONSchema returns the JSON Schema (draft 2020-12 subset) of the
// parameters, as offered to an LLM as a tool definition.
func (s Spec) JSONSchema() map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, p := range s.Params {
		prop := map[string]any{"description": p.Description}
		switch p.Type {
		case Int:
			prop["type"] = "integer"
			if p.Min != nil {
				prop["minimum"] = *p.Min
			}
			if p.Max != nil {
				prop["maximum"] = *p.Max
			}
		case Duration:
			prop["type"] = "string"
			prop["pattern"] = `^([0-9]+(ms|s|m|h|d|w|y))+$`
		case Enum:
			prop["type"] = "string"
			prop["enum"] = p.Enum
		case Bool:
			prop["type"] = "boolean"
		default:
			prop["type"] = "string"
			if p.Pattern != nil {
				prop["pattern"] = p.Pattern.String()
			}
		}
		if p.Default != nil {
			prop["default"] = p.Default
		}
		props[p.Name] = prop
		if p.Required {
			required = append(required, p.Name)
		}
	}
	return map[string]any{
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
}
