package useraction

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
)

// Limits on an action file.
const (
	maxFileSize = 256 << 10 // bytes
	maxNodes    = 20_000    // YAML nodes visited, aliases counted where used
	maxErrors   = 20        // problems reported for one folder
)

// Error is one problem in an action file, at a line.
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

// loader walks one file's YAML tree, collecting errors with their lines.
type loader struct {
	file   string
	errs   []*Error
	budget int
}

func newLoader(file string) *loader { return &loader{file: file, budget: maxNodes} }

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlError turns "yaml: line 3: did not find expected key" into an
// *Error at line 3.
func (l *loader) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				l.errs = append(l.errs, &Error{File: l.file, Line: n, Msg: "invalid YAML: " + text})
				return
			}
		}
	}
	l.errs = append(l.errs, &Error{File: l.file, Msg: "invalid YAML: " + msg})
}

// node resolves aliases and charges the node budget; nil when spent.
func (l *loader) node(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 16 {
			l.errorf(n, "YAML aliases nest too deeply")
			return nil
		}
		n = n.Alias
	}
	if n == nil || l.budget <= 0 {
		return nil
	}
	l.budget--
	if l.budget == 0 {
		l.errorf(n, "file too large: more than %d YAML nodes (counting aliases where used)", maxNodes)
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
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

// mapping calls fn for each key of a mapping in file order, rejecting keys
// not in known (nil: any key) and keys given twice.
func (l *loader) mapping(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		if known != nil {
			l.errorf(n, "%s: want a mapping with keys %s, got %s", what, strings.Join(known, ", "), kindName(n))
		} else {
			l.errorf(n, "%s: want a mapping, got %s", what, kindName(n))
		}
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

// str returns a scalar's text (numbers and booleans as written).
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.errorf(n, "%s: want text, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// text returns a string scalar: a number or boolean where text is wanted
// is refused, so "enum: [yes, no]" does not quietly become booleans.
func (l *loader) text(n *yaml.Node, what string) (string, bool) {
	s, ok := l.str(n, what)
	if ok && n.ShortTag() != "!!str" {
		l.errorf(n, "%s: want text, got %s %s; quote it", what, strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
		return "", false
	}
	return s, ok
}

func (l *loader) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		l.errorf(n, "%s: want true or false, got %s", what, kindName(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		l.errorf(n, "%s: %v", what, err)
		return false, false
	}
	return b, true
}

func (l *loader) integer(n *yaml.Node, what string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		l.errorf(n, "%s: want a whole number, got %s", what, kindName(n))
		return 0, false
	}
	var i int
	if err := n.Decode(&i); err != nil || i > 1e9 || i < -1e9 {
		l.errorf(n, "%s: %s is not a usable whole number", what, n.Value)
		return 0, false
	}
	return i, true
}

// duration reads a duration written as 30s, 5m, 1h (Prometheus units).
func (l *loader) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := l.str(n, what)
	if !ok {
		return 0, false
	}
	d, err := action.ParseDuration(s)
	if err != nil {
		l.errorf(n, "%s: %v", what, err)
		return 0, false
	}
	return d, true
}

// list returns the items of a sequence.
func (l *loader) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			l.errorf(n, "%s: want a list, got %s; write [%s]", what, kindName(n), n.Value)
		} else {
			l.errorf(n, "%s: want a list, got %s", what, kindName(n))
		}
		return nil, false
	}
	var out []*yaml.Node
	for _, c := range n.Content {
		c = l.node(c)
		if c == nil {
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

// closest returns the known word within edit distance 2 of s, if any.
func closest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func distance(a, b string) int {
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

// joinErrors sorts errors by file and line and joins at most maxErrors.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].File != errs[j].File {
			return errs[i].File < errs[j].File
		}
		return errs[i].Line < errs[j].Line
	})
	out := make([]error, 0, maxErrors+1)
	for i, e := range errs {
		if i == maxErrors {
			out = append(out, fmt.Errorf("and %d more problems", len(errs)-maxErrors))
			break
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}
