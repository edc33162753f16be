// Package evals runs evaluation suites: a dataset of cases, a target that
// answers them (a prompt template on a language model, or Parley's own
// rules router), variants of the target to compare, metrics that score
// each answer, and gates that turn the scores into a pass or fail.
//
// A run evaluates the baseline and the variant on every case, stores each
// answer and its scores durably (Store, SQLite through database/sql), and
// compares the two variants case by case: McNemar's exact test for
// pass/fail metrics and a paired bootstrap confidence interval of the mean
// difference for continuous ones. Reports are a CSV file (one row per case
// and variant) and a self-contained HTML page.
//
// Suites are YAML files under evals/suites/, versioned with the code; the
// file format is documented in evals/README.md and by the Suite type.
// Routing datasets are scored here too (RunRouting, `parley eval
// routing`): per action, with a confusion matrix, through the same gates
// over the same routing metrics as the "intent-routing" suite, which
// routes the same dataset format.
package evals

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/prompts"
)

// Target kinds.
const (
	TargetPrompt = "prompt" // a prompt template sent to a language model
	TargetRouter = "router" // Parley's intent router on a routing dataset
)

// Runner kinds.
const (
	RunnerLocal      = "local"
	RunnerKubernetes = "kubernetes"
)

// Suite is one evaluation suite file.
type Suite struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Dataset     string            `yaml:"dataset"` // relative to the evals folder
	Target      Target            `yaml:"target"`
	Baseline    string            `yaml:"baseline"` // variant compared against; default "baseline"
	Variants    map[string]Params `yaml:"variants"`
	Metrics     []MetricSpec      `yaml:"metrics"`
	Gates       []Gate            `yaml:"gates"`
	// Concurrency is how many cases run at once (default 4).
	Concurrency int    `yaml:"concurrency"`
	Runner      string `yaml:"runner"` // local (default) or kubernetes
	Shards      int    `yaml:"shards"` // kubernetes: number of worker pods (default 2)

	// Set by LoadSuite.
	Path    string `yaml:"-"` // the suite file
	Dir     string `yaml:"-"` // the evals folder paths are relative to
	Hash    string `yaml:"-"` // sha256 of the suite file and every prompt it names
	variant map[string]*resolved
}

// Target is what answers the cases. In YAML it is either the word
// "router" or a mapping.
type Target struct {
	Type   string `yaml:"type"` // prompt (default when a prompt is given) or router
	Params `yaml:",inline"`
}

// Params are the settings a variant may override.
type Params struct {
	Prompt      string   `yaml:"prompt"`   // template file, relative to the evals folder
	Provider    string   `yaml:"provider"` // openai | azure | anthropic
	Model       string   `yaml:"model"`
	Temperature *float64 `yaml:"temperature"`
	MaxTokens   int      `yaml:"max_tokens"`
}

// UnmarshalYAML accepts "target: router" as well as a mapping.
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Type = n.Value
		return nil
	}
	type plain Target
	var p plain
	if err := decodeStrict(n, &p); err != nil {
		return err
	}
	*t = Target(p)
	return nil
}

// merge returns p with the fields o sets.
func (p Params) merge(o Params) Params {
	if o.Prompt != "" {
		p.Prompt = o.Prompt
	}
	if o.Provider != "" {
		p.Provider = o.Provider
	}
	if o.Model != "" {
		p.Model = o.Model
	}
	if o.Temperature != nil {
		p.Temperature = o.Temperature
	}
	if o.MaxTokens != 0 {
		p.MaxTokens = o.MaxTokens
	}
	return p
}

// resolved is a variant with the target's settings merged in and its
// prompt parsed.
type resolved struct {
	Name   string
	Params Params
	Prompt *prompts.Prompt // nil for the router target
}

// Gate is one threshold. Exactly one of Min, Max and MaxRegression is set.
type Gate struct {
	Metric string   `yaml:"metric"`
	Min    *float64 `yaml:"min"` // the variant's mean (pass rate) must be at least this
	Max    *float64 `yaml:"max"` // ... at most this (latency, cost)
	// MaxRegression is how much worse than the baseline the variant may
	// be (in the metric's unit, direction-aware), judged on the observed
	// mean difference.
	MaxRegression *float64 `yaml:"max_regression"`
}

// String is e.g. "mentions >= 0.80" or "similarity regression <= 0.05".
func (g Gate) String() string {
	switch {
	case g.Min != nil:
		return fmt.Sprintf("%s >= %s", g.Metric, num(*g.Min))
	case g.Max != nil:
		return fmt.Sprintf("%s <= %s", g.Metric, num(*g.Max))
	case g.MaxRegression != nil:
		return fmt.Sprintf("%s regression <= %s", g.Metric, num(*g.MaxRegression))
	}
	return g.Metric
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// DefaultBaseline is the baseline variant's name unless a suite says
// otherwise.
const DefaultBaseline = "baseline"

// LoadSuite reads and checks the suite file at path; dir is the evals
// folder its paths are relative to. It is strict: unknown keys, unknown
// metric types, gates on metrics the suite does not have, missing files
// and prompts that do not parse are errors.
func LoadSuite(dir, path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load suite: %w", err)
	}
	s := &Suite{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("suite %s: empty file", path)
	}
	if err := decodeStrict(doc.Content[0], s); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	s.Path, s.Dir = path, dir
	h := sha256.New()
	h.Write(data)
	if err := s.check(h); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))[:16]
	return s, nil
}

func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func (s *Suite) check(h interface{ Write([]byte) (int, error) }) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(s.Name) {
		bad("name %q: want lower-case letters, digits, '-', '_' or '.'", s.Name)
	}
	if s.Dataset == "" {
		bad("no dataset")
	} else if _, err := os.Stat(s.file(s.Dataset)); err != nil {
		bad("dataset: %v", err)
	}
	if s.Target.Type == "" {
		s.Target.Type = TargetPrompt
	}
	if s.Baseline == "" {
		s.Baseline = DefaultBaseline
	}
	if len(s.Variants) == 0 {
		s.Variants = map[string]Params{s.Baseline: {}}
	}
	if _, ok := s.Variants[s.Baseline]; !ok {
		bad("baseline %q is not one of the variants (%s)", s.Baseline, strings.Join(s.VariantNames(), ", "))
	}
	switch s.Runner {
	case "":
		s.Runner = RunnerLocal
	case RunnerLocal, RunnerKubernetes:
	default:
		bad("runner %q: want local or kubernetes", s.Runner)
	}
	if s.Shards < 0 || s.Shards > 100 {
		bad("shards %d: want 1..100", s.Shards)
	}
	if s.Shards == 0 {
		s.Shards = 2
	}
	if s.Concurrency < 0 || s.Concurrency > 64 {
		bad("concurrency %d: want 1..64", s.Concurrency)
	}
	if s.Concurrency == 0 {
		s.Concurrency = 4
	}
	s.variant = map[string]*resolved{}
	for _, name := range s.VariantNames() {
		if !nameRE.MatchString(name) {
			bad("variant %q: bad name", name)
			continue
		}
		p := s.Target.Params.merge(s.Variants[name])
		rv := &resolved{Name: name, Params: p}
		switch s.Target.Type {
		case TargetRouter:
			if p != (Params{}) {
				bad("variant %s: the router target takes no prompt, provider or model", name)
			}
		case TargetPrompt:
			if p.Prompt == "" || p.Model == "" || p.Provider == "" {
				bad("variant %s: a prompt target needs prompt, provider and model", name)
				continue
			}
			if p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 2) {
				bad("variant %s: temperature %v is outside 0..2", name, *p.Temperature)
			}
			if p.MaxTokens < 0 {
				bad("variant %s: negative max_tokens", name)
			}
			if p.MaxTokens == 0 {
				rv.Params.MaxTokens = 400
			}
			pr, err := s.loadPrompt("target", p.Prompt, h)
			if err != nil {
				bad("variant %s: %v", name, err)
				continue
			}
			rv.Prompt = pr
		default:
			bad("target type %q: want prompt or router", s.Target.Type)
		}
		s.variant[name] = rv
	}
	if len(s.Metrics) == 0 {
		bad("no metrics")
	}
	seen := map[string]bool{}
	for i := range s.Metrics {
		m := &s.Metrics[i]
		if err := m.check(s, h); err != nil {
			bad("metric %d (%s): %v", i+1, m.Type, err)
			continue
		}
		if seen[m.Name] {
			bad("metric %q appears twice (give one a name)", m.Name)
		}
		seen[m.Name] = true
	}
	for i, g := range s.Gates {
		n := 0
		for _, p := range []*float64{g.Min, g.Max, g.MaxRegression} {
			if p != nil {
				n++
			}
		}
		if n != 1 {
			bad("gate %d: set exactly one of min, max, max_regression", i+1)
		}
		if !seen[g.Metric] {
			bad("gate %d: no metric named %q", i+1, g.Metric)
		}
		if g.MaxRegression != nil && *g.MaxRegression < 0 {
			bad("gate %d: negative max_regression", i+1)
		}
	}
	return errors.Join(errs...)
}

// file resolves a path relative to the evals folder, refusing to leave it.
func (s *Suite) file(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(s.Dir, filepath.Clean(rel))
}

func (s *Suite) loadPrompt(kind, rel string, h interface{ Write([]byte) (int, error) }) (*prompts.Prompt, error) {
	b, err := os.ReadFile(s.file(rel))
	if err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	h.Write([]byte("\x00" + rel + "\x00"))
	h.Write(b)
	return prompts.Parse(kind, strings.TrimSuffix(filepath.Base(rel), filepath.Ext(rel)), string(b))
}

// VariantNames lists the variants, baseline first, the rest sorted.
func (s *Suite) VariantNames() []string {
	var out []string
	for n := range s.Variants {
		if n != s.Baseline {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if _, ok := s.Variants[s.Baseline]; ok {
		out = append([]string{s.Baseline}, out...)
	}
	return out
}

// Variant returns a resolved variant's settings.
func (s *Suite) Variant(name string) (Params, bool) {
	v, ok := s.variant[name]
	if !ok {
		return Params{}, false
	}
	return v.Params, true
}

// PromptVersion is the version header of a variant's prompt ("" for the
// router target).
func (s *Suite) PromptVersion(variant string) string {
	if v, ok := s.variant[variant]; ok && v.Prompt != nil {
		return v.Prompt.Version
	}
	return ""
}

// Metric returns the named metric.
func (s *Suite) Metric(name string) (*MetricSpec, bool) {
	for i := range s.Metrics {
		if s.Metrics[i].Name == name {
			return &s.Metrics[i], true
		}
	}
	return nil, false
}

// Pair resolves the variant and baseline of a run: an empty baseline is
// the suite's; an empty variant runs the baseline alone.
func (s *Suite) Pair(variant, baseline string) (string, string, error) {
	if baseline == "" {
		baseline = s.Baseline
	}
	if variant == "" {
		variant = baseline
	}
	for _, v := range []string{variant, baseline} {
		if _, ok := s.Variants[v]; !ok {
			return "", "", fmt.Errorf("%w: suite %s has no variant %q (it has %s)", action.ErrNotFound, s.Name, v, strings.Join(s.VariantNames(), ", "))
		}
	}
	return variant, baseline, nil
}

// Case is one dataset entry.
type Case struct {
	ID        string          `json:"id"`
	Input     json.RawMessage `json:"input"`     // a JSON string or object
	Expected  json.RawMessage `json:"expected"`  // metric-specific
	Reference string          `json:"reference"` // reference answer for similarity and judges
	Tags      []string        `json:"tags"`

	routing *RoutingCase  // the routing case, for the router target
	catalog []action.Spec // the specs it is scored against
}

// InputText is the input as the model sees it: a string as is, anything
// else as compact JSON.
func (c Case) InputText() string {
	var s string
	if json.Unmarshal(c.Input, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, c.Input) == nil {
		return b.String()
	}
	return string(c.Input)
}

// Dataset is a suite's cases with a hash of the file they came from.
type Dataset struct {
	Cases []Case
	Hash  string
	// routing is the routing dataset (router target only).
	routing *RoutingDataset
}

// LoadDataset reads the suite's dataset: JSONL for prompt targets (one
// {"id","input","expected","reference","tags"} object a line; blank lines
// and lines starting with "//" are skipped), a routing dataset
// (evals/README.md) for the router target, checked
// against the action specs of catalog.
func (s *Suite) LoadDataset(catalog []action.Spec) (*Dataset, error) {
	path := s.file(s.Dataset)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	sum := sha256.Sum256(data)
	ds := &Dataset{Hash: hex.EncodeToString(sum[:])[:16]}
	if s.Target.Type == TargetRouter {
		rds, err := ParseRoutingDataset(data, catalog)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", path, err)
		}
		ds.routing = rds
		for i := range rds.Cases {
			c := &rds.Cases[i]
			in, _ := json.Marshal(c.Text)
			exp, _ := json.Marshal(map[string]any{"action": c.Actions, "params": c.Params})
			ds.Cases = append(ds.Cases, Case{ID: fmt.Sprintf("line-%d", c.Line), Input: in, Expected: exp, Tags: c.Tags, routing: c, catalog: catalog})
		}
		return ds, nil
	}
	seen := map[string]int{}
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || bytes.HasPrefix(line, []byte("//")) {
			continue
		}
		var c Case
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %v", i+1, err))
			continue
		}
		if c.ID == "" || len(c.Input) == 0 {
			errs = append(errs, fmt.Errorf("line %d: a case needs an id and an input", i+1))
			continue
		}
		if first, dup := seen[c.ID]; dup {
			errs = append(errs, fmt.Errorf("line %d: duplicate id %q (first on line %d)", i+1, c.ID, first))
			continue
		}
		seen[c.ID] = i + 1
		ds.Cases = append(ds.Cases, c)
	}
	if len(errs) == 0 && len(ds.Cases) == 0 {
		errs = append(errs, errors.New("no cases"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	return ds, nil
}

// Catalog is the suites of an evals folder.
type Catalog struct {
	Dir    string
	Suites []*Suite // sorted by name
}

// LoadCatalog loads every evals/suites/*.yaml of dir. One bad suite is an
// error: suites are versioned with the code and checked in CI.
func LoadCatalog(dir string) (*Catalog, error) {
	files, err := filepath.Glob(filepath.Join(dir, "suites", "*.yaml"))
	if err != nil {
		return nil, err
	}
	c := &Catalog{Dir: dir}
	var errs []error
	names := map[string]string{}
	for _, f := range files {
		s, err := LoadSuite(dir, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := names[s.Name]; dup {
			errs = append(errs, fmt.Errorf("suite %s is defined in %s and %s", s.Name, prev, f))
			continue
		}
		names[s.Name] = f
		c.Suites = append(c.Suites, s)
	}
	slices.SortFunc(c.Suites, func(a, b *Suite) int { return strings.Compare(a.Name, b.Name) })
	return c, errors.Join(errs...)
}

// Suite returns the named suite.
func (c *Catalog) Suite(name string) (*Suite, error) {
	for _, s := range c.Suites {
		if s.Name == name {
			return s, nil
		}
	}
	var have []string
	for _, s := range c.Suites {
		have = append(have, s.Name)
	}
	return nil, fmt.Errorf("%w: no evaluation suite %q (have %s)", action.ErrNotFound, name, strings.Join(have, ", "))
}

// Names lists suite names and every variant name, for the router's
// inventory (intent.Inventory.EvalSuites and EvalVariants).
func (c *Catalog) Names() (suites, variants []string) {
	vs := map[string]bool{}
	for _, s := range c.Suites {
		suites = append(suites, s.Name)
		for v := range s.Variants {
			vs[v] = true
		}
	}
	for v := range vs {
		variants = append(variants, v)
	}
	sort.Strings(variants)
	return suites, variants
}
