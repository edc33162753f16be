package useraction

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Templates are Go text/template over the parameters (and, for the reply,
// .response). They are parsed and checked when the file loads: a field
// that is not a parameter, a {{define}} or {{template}}, or a template
// that does not parse is an error naming the file and line.

// maxTemplate is the longest template source accepted, and maxOutput the
// most a template may write when it runs (a reply that ranges over a large
// response is cut there).
const (
	maxTemplate = 8 << 10
	maxOutput   = 8 << 10
)

// Escapers appended to every output action of a URL template, by where
// the action stands: before the "?" its output is one path segment, after
// it a query value. Their names cannot be written by hand (they are not
// identifiers a template may call: the check below refuses them).
const (
	fnPath  = "parleyPathEscape"
	fnQuery = "parleyQueryEscape"
)

var templateFuncs = template.FuncMap{
	fnPath:  url.PathEscape,
	fnQuery: url.QueryEscape,
	// json writes a value as JSON, e.g. a part of .response in a reply.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// parseTemplate parses src and checks every field it reads outside a
// range or with (where the dot is something else) against fields: the
// parameters, and "response" for a reply.
func parseTemplate(name, src string, fields []string) (*template.Template, error) {
	if len(src) > maxTemplate {
		return nil, fmt.Errorf("template is longer than %d bytes", maxTemplate)
	}
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=default").Parse(src)
	if err != nil {
		return nil, errors.New(cleanTemplateError(err))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("{{define}} and {{block}} are not supported in action templates")
	}
	if t.Tree == nil || t.Root == nil {
		return t, nil
	}
	if err := checkNodes(t.Root, fields, 0); err != nil {
		return nil, err
	}
	return t, nil
}

// cleanTemplateError drops text/template's "template: NAME:" prefix; the
// caller names the file and key.
func cleanTemplateError(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "template: "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return after
		}
		return rest
	}
	return msg
}

func checkNodes(n parse.Node, fields []string, scoped int) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c, fields, scoped); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkNodes(n.Pipe, fields, scoped)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkNodes(c, fields, scoped); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkNodes(a, fields, scoped); err != nil {
				return err
			}
		}
	case *parse.IdentifierNode:
		if n.Ident == fnPath || n.Ident == fnQuery {
			return fmt.Errorf("%s is reserved", n.Ident)
		}
	case *parse.FieldNode:
		if scoped == 0 && !slices.Contains(fields, n.Ident[0]) {
			return unknownField(n.Ident[0], fields)
		}
	case *parse.VariableNode:
		if n.Ident[0] == "$" && len(n.Ident) > 1 && !slices.Contains(fields, n.Ident[1]) {
			return unknownField(n.Ident[1], fields)
		}
	case *parse.ChainNode:
		return checkNodes(n.Node, fields, scoped)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, fields, scoped, scoped)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, fields, scoped, scoped+1)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, fields, scoped, scoped+1)
	case *parse.TemplateNode:
		return errors.New("{{template}} is not supported in action templates")
	}
	return nil
}

func checkBranch(b *parse.BranchNode, fields []string, scoped, inner int) error {
	if err := checkNodes(b.Pipe, fields, scoped); err != nil {
		return err
	}
	if err := checkNodes(b.List, fields, inner); err != nil {
		return err
	}
	return checkNodes(b.ElseList, fields, scoped)
}

func unknownField(name string, fields []string) error {
	known := slices.Clone(fields)
	slices.Sort(known)
	if len(known) == 0 {
		return fmt.Errorf(".%s is not a parameter (this action has none)", name)
	}
	return fmt.Errorf(".%s is not a parameter (known: .%s)", name, strings.Join(known, ", ."))
}

// execute runs t over data, writing at most maxOutput bytes.
func execute(t *template.Template, data any) (string, error) {
	var w limitedWriter
	if err := t.Execute(&w, data); err != nil {
		if errors.Is(err, errOutputTooLong) {
			return w.b.String() + "…", nil
		}
		return "", errors.New(cleanTemplateError(err))
	}
	return w.b.String(), nil
}

var errOutputTooLong = fmt.Errorf("template output is longer than %d bytes", maxOutput)

type limitedWriter struct{ b strings.Builder }

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := maxOutput - w.b.Len(); len(p) > room {
		w.b.Write(p[:max(room, 0)])
		return max(room, 0), errOutputTooLong
	}
	return w.b.Write(p)
}

// urlTemplate is a URL whose scheme and host are literal and whose path
// and query come from a template. Every value a template action writes is
// escaped for where it stands: a path segment ("a/b" stays one segment,
// %2F) before the "?", a query value after it.
type urlTemplate struct {
	base *url.URL // scheme and host, literal
	t    *template.Template
}

func parseURLTemplate(src string, params []string) (*urlTemplate, error) {
	scheme, rest, ok := strings.Cut(src, "://")
	if !ok {
		return nil, fmt.Errorf("url %q: want an absolute URL, https://host/path", src)
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	prefix := scheme + "://" + rest[:hostEnd]
	if strings.Contains(prefix, "{{") {
		return nil, fmt.Errorf("url %q: the scheme and host must be written out, not come from a parameter", src)
	}
	base, err := url.Parse(prefix)
	switch {
	case err != nil:
		return nil, fmt.Errorf("url %q: %v", src, err)
	case base.Scheme != "https" && base.Scheme != "http":
		return nil, fmt.Errorf("url %q: scheme must be https or http", src)
	case base.Host == "" || base.Hostname() == "":
		return nil, fmt.Errorf("url %q: no host", src)
	case base.User != nil:
		return nil, fmt.Errorf("url %q: credentials in the URL are not allowed; send them as a header with a secret reference", src)
	}
	t, err := parseTemplate("url", src, params)
	if err != nil {
		return nil, fmt.Errorf("url: %v", err)
	}
	if t.Tree == nil || t.Root == nil {
		return &urlTemplate{base: base, t: t}, nil
	}
	// The first "?" written literally starts the query; a "#" would start
	// a fragment, which is never sent.
	query := parse.Pos(-1)
	for _, n := range textNodes(t.Root) {
		if i := strings.IndexAny(string(n.Text), " \t\r\n\"<>\\^`{|}"); i >= 0 {
			return nil, fmt.Errorf("url %q: %q must be percent-encoded in the URL (a space is %%20)", src, n.Text[i])
		}
		if i := strings.IndexByte(string(n.Text), '#'); i >= 0 {
			return nil, fmt.Errorf("url %q: a #fragment is never sent to the server; remove it", src)
		}
		if i := strings.IndexByte(string(n.Text), '?'); i >= 0 && query < 0 {
			query = n.Pos + parse.Pos(i)
		}
	}
	for _, a := range actionNodes(t.Root) {
		if len(a.Pipe.Decl) > 0 {
			continue // {{ $x := ... }} writes nothing
		}
		fn := fnPath
		if query >= 0 && a.Pos > query {
			fn = fnQuery
		}
		a.Pipe.Cmds = append(a.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: a.Pos,
			Args: []parse.Node{parse.NewIdentifier(fn).SetTree(t.Tree).SetPos(a.Pos)}})
	}
	return &urlTemplate{base: base, t: t}, nil
}

// render writes the URL for data and checks that the result still goes to
// the literal host, and that no parameter made a path segment "." or "..".
func (u *urlTemplate) render(data map[string]any) (*url.URL, error) {
	s, err := execute(u.t, data)
	if err != nil {
		return nil, fmt.Errorf("url template: %v", err)
	}
	out, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("url %q: %v", s, err)
	}
	if out.Scheme != u.base.Scheme || out.Host != u.base.Host || out.User != nil {
		return nil, fmt.Errorf("url %q does not go to %s", s, u.base.Host)
	}
	for seg := range strings.SplitSeq(out.EscapedPath(), "/") {
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("url %q: a parameter made a path segment %q", s, seg)
		}
	}
	return out, nil
}

func textNodes(n parse.Node) []*parse.TextNode {
	var out []*parse.TextNode
	walk(n, func(n parse.Node) {
		if t, ok := n.(*parse.TextNode); ok {
			out = append(out, t)
		}
	})
	return out
}

func actionNodes(n parse.Node) []*parse.ActionNode {
	var out []*parse.ActionNode
	walk(n, func(n parse.Node) {
		if a, ok := n.(*parse.ActionNode); ok {
			out = append(out, a)
		}
	})
	return out
}

// walk visits n and the nodes of its lists, in source order.
func walk(n parse.Node, fn func(parse.Node)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.IfNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, fn)
	default:
		fn(n)
	}
}

func walkBranch(b *parse.BranchNode, fn func(parse.Node)) {
	walk(b.List, fn)
	if b.ElseList != nil {
		walk(b.ElseList, fn)
	}
}

// soleField returns the parameter a template consists of, when the whole
// template is exactly {{ .name }}: a JSON body value written that way keeps
// the parameter's type (a number stays a number).
func soleField(t *template.Template) (string, bool) {
	if t.Tree == nil || t.Root == nil || len(t.Root.Nodes) != 1 {
		return "", false
	}
	a, ok := t.Root.Nodes[0].(*parse.ActionNode)
	if !ok || len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	f, ok := a.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	return f.Ident[0], true
}
