// Package prompts holds Parley's versioned prompt templates, embedded in
// the binary. Each file is prompts/<kind>/<variant>.tmpl: a header of
// "# key: value" lines (version is required), a line "---", then a
// text/template body. Changing a prompt means a new version line (or a
// new variant file), so that audit records and evaluation reports can
// name exactly which prompt produced an answer.
package prompts

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"
)

//go:embed router/*.tmpl summary/*.tmpl
var files embed.FS

// Kinds of prompt.
const (
	Router  = "router"  // system prompt of the LLM intent router
	Summary = "summary" // system prompt of incident summaries
)

// Prompt is one parsed template.
type Prompt struct {
	Kind    string
	Variant string
	Version string            // from the header
	Meta    map[string]string // every header key, version included
	tmpl    *template.Template
}

// Load parses prompts/<kind>/<variant>.tmpl.
func Load(kind, variant string) (*Prompt, error) {
	if strings.ContainsAny(kind+variant, "/\\.") || kind == "" || variant == "" {
		return nil, fmt.Errorf("prompt %q/%q: bad name", kind, variant)
	}
	name := path.Join(kind, variant+".tmpl")
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("prompt %s: no such variant (have %s)", name, strings.Join(Variants(kind), ", "))
	}
	return Parse(kind, variant, string(b))
}

// Parse parses a prompt file's text; Load uses it, tests may too.
func Parse(kind, variant, text string) (*Prompt, error) {
	head, body, ok := strings.Cut(text, "\n---\n")
	if !ok {
		return nil, fmt.Errorf("prompt %s/%s: no \"---\" line after the header", kind, variant)
	}
	meta := map[string]string{}
	for line := range strings.SplitSeq(head, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		kv, ok := strings.CutPrefix(line, "#")
		k, v, ok2 := strings.Cut(kv, ":")
		if !ok || !ok2 {
			return nil, fmt.Errorf("prompt %s/%s: header line %q is not \"# key: value\"", kind, variant, line)
		}
		meta[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if meta["version"] == "" {
		return nil, fmt.Errorf("prompt %s/%s: header has no version", kind, variant)
	}
	t, err := template.New(kind + "/" + variant).Option("missingkey=error").Parse(body)
	if err != nil {
		return nil, fmt.Errorf("prompt %s/%s: %w", kind, variant, err)
	}
	return &Prompt{Kind: kind, Variant: variant, Version: meta["version"], Meta: meta, tmpl: t}, nil
}

// Render executes the template with data.
func (p *Prompt) Render(data any) (string, error) {
	var b strings.Builder
	if err := p.tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render prompt %s/%s: %w", p.Kind, p.Variant, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// Variants lists the variants of a kind, sorted.
func Variants(kind string) []string {
	ents, err := fs.ReadDir(files, kind)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if v, ok := strings.CutSuffix(e.Name(), ".tmpl"); ok {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}
