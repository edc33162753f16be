package rules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
)

// ExplicitSource is the Intent.Source of an explicit call.
const ExplicitSource = "explicit"

// actionNameRE is what an action's name looks like: lower case, dotted.
var actionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$`)

// Explicit reads an explicit call of an action: "/parley ACTION key:value
// ...", or the same without "/parley" ("cdn.purge site:shop path:/img",
// `loki.query service:checkout filter:"connection refused"`). It selects
// exactly that action with exactly those parameters (values may be quoted;
// key=value works too), for any action of the catalog, built-in or
// user-defined; nothing is guessed, so the caller asks no model. The
// parameters are checked by the action's spec as every request's are,
// before policy. ok is false when the text is not an explicit call; an
// unknown action, an unknown key or a key given twice reads as none with a
// note saying what exists and what the action takes.
func Explicit(text string, catalog []action.Spec) (in intent.Intent, ok bool) {
	if !strings.Contains(text, ".") {
		return intent.Intent{}, false // action names are dotted ("help" alone the router reads)
	}
	s := strings.TrimSpace(straightQuotes(Normalize(text)))
	for _, prefix := range []string{"/parley", "parley"} {
		if len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) && (s[len(prefix)] == ' ' || s[len(prefix)] == ':') {
			s = strings.TrimLeft(s[len(prefix)+1:], " ")
		}
	}
	name, rest, _ := strings.Cut(s, " ")
	name = strings.TrimPrefix(name, "/")
	spec, known := findSpec(catalog, name)
	if !known && !actionNameRE.MatchString(name) {
		return intent.Intent{}, false
	}
	pairs, err := splitPairs(rest)
	none := func(note string) (intent.Intent, bool) {
		return intent.Intent{Action: action.None, Params: action.Params{}, Confidence: 1, Source: ExplicitSource, Note: note}, true
	}
	if !known {
		if err != nil {
			return intent.Intent{}, false // "api.example.com is down": prose, not a call
		}
		return none(fmt.Sprintf("there is no action %q; the actions here are %s", name, strings.Join(specNames(catalog), ", ")))
	}
	if err != nil {
		if !strings.Contains(name, ".") {
			return intent.Intent{}, false // "help me with checkout": prose
		}
		return none(fmt.Sprintf("after %s give its parameters as key:value (%s), for example: %s", name, describeParams(spec), exampleCall(spec)))
	}
	raw := map[string]any{}
	for _, kv := range pairs {
		if _, ok := spec.Param(kv[0]); !ok {
			return none(fmt.Sprintf("%s has no parameter %q; it takes %s", name, kv[0], describeParams(spec)))
		}
		if _, dup := raw[kv[0]]; dup {
			return none(fmt.Sprintf("%s is given twice", kv[0]))
		}
		raw[kv[0]] = kv[1]
	}
	params := action.Params{}
	for k, v := range raw {
		params[k] = v
	}
	// typed where the values are valid (replicas:5 is the number 5); an
	// invalid one stays as typed, and validation says what is allowed
	if typed, err := spec.Validate(raw); err == nil || errors.Is(err, action.ErrMissing) {
		for k, v := range typed {
			if _, given := raw[k]; given {
				params[k] = v
			}
		}
	}
	return intent.Intent{Action: spec.Name, Params: params, Confidence: 1, Source: ExplicitSource, Note: "explicit call of " + spec.Name}, true
}

// splitPairs reads "k:v k2:\"a b\" k3=`x`" into pairs; anything else is an
// error.
func splitPairs(s string) ([][2]string, error) {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		i := strings.IndexAny(s, ":= ")
		if i <= 0 || s[i] == ' ' {
			return nil, fmt.Errorf("%q is not key:value", firstField(s))
		}
		key := strings.ToLower(s[:i])
		for _, r := range key {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return nil, fmt.Errorf("%q is not a key", key)
			}
		}
		s = s[i+1:]
		if t := strings.TrimLeft(s, " "); t != "" && t[0] == '`' {
			s = t // code is set off by a space when markup is cleaned: "query: `up`"
		}
		var val string
		if s != "" && strings.ContainsRune("\"'`", rune(s[0])) {
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return nil, fmt.Errorf("%s: unclosed quote", key)
			}
			val, s = s[1:end+1], s[end+2:]
			if s != "" && s[0] != ' ' {
				return nil, fmt.Errorf("%s: text after the closing quote", key)
			}
		} else {
			val, s, _ = strings.Cut(s, " ")
		}
		if val == "" {
			return nil, fmt.Errorf("%s has no value", key)
		}
		out = append(out, [2]string{key, val})
	}
	return out, nil
}

func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}

func specNames(catalog []action.Spec) []string {
	out := make([]string, len(catalog))
	for i, s := range catalog {
		out[i] = s.Name
	}
	return out
}

// describeParams says what an action takes: "site (required: shop, blog,
// docs), path (matching ^/[a-z/]*$), count (1 to 50)".
func describeParams(s action.Spec) string {
	if len(s.Params) == 0 {
		return "no parameters"
	}
	parts := make([]string, len(s.Params))
	for i, p := range s.Params {
		var about []string
		if p.Required {
			about = append(about, "required")
		}
		switch {
		case p.Type == action.Enum:
			about = append(about, "one of "+strings.Join(p.Enum, ", "))
		case p.Type == action.Int && p.Min != nil && p.Max != nil:
			about = append(about, fmt.Sprintf("%d to %d", *p.Min, *p.Max))
		case p.Type == action.Int && p.Min != nil:
			about = append(about, fmt.Sprintf("at least %d", *p.Min))
		case p.Type == action.Int:
			about = append(about, "a whole number")
		case p.Type == action.Duration:
			about = append(about, "a duration such as 30m or 1h")
		case p.Type == action.Bool:
			about = append(about, "true or false")
		case p.Pattern != nil:
			about = append(about, "matching "+p.Pattern.String())
		case p.Source != action.NoSource:
			about = append(about, "a "+string(p.Source)+" name")
		}
		parts[i] = p.Name
		if len(about) > 0 {
			parts[i] += " (" + strings.Join(about, ", ") + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// exampleCall is the action's example call, or its bare name.
func exampleCall(s action.Spec) string {
	if c := s.ExampleCall(); c != "" {
		return c
	}
	return s.Name
}

// explicitFirst answers explicit calls itself and passes everything else
// to the next router.
type explicitFirst struct {
	next  intent.Router
	specs []action.Spec
}

// ExplicitFirst wraps a router (a model or hybrid one) so explicit calls
// ("/parley ACTION key:value ...") are read by Explicit against specs,
// every action that exists (an action the user may not run is then
// refused by policy, as typed), and never reach a model.
func ExplicitFirst(next intent.Router, specs []action.Spec) intent.Router {
	return &explicitFirst{next: next, specs: specs}
}

// Route implements intent.Router.
func (e *explicitFirst) Route(ctx context.Context, q intent.Query) (intent.Intent, error) {
	if err := ctx.Err(); err != nil {
		return intent.Intent{}, fmt.Errorf("explicit route: %w", err)
	}
	if in, ok := Explicit(q.Text, e.specs); ok {
		return in, nil
	}
	return e.next.Route(ctx, q)
}
