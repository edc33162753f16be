// Package llm is Parley's language-model intent router and incident
// summariser, built on langchaingo with native tool calling.
//
// The LLM proposes; Parley decides. Of the actions the asking user may
// run (Query.Catalog: the policy and the channel's bindings already
// applied), the ones the request is plausibly about are offered, each as
// one tool whose parameters are the action's JSON Schema, compacted (see
// shortlist.go: the words of the request against each action's own
// vocabulary, the offline router's reading, the thread's last action; all
// of them when the words point at none), with a none tool when the prompt
// offers one. The model's answer is never used as is: a call to a tool
// that was not offered, an unknown name, arguments that are not JSON or
// fail Spec.Validate, or names absent from the inventory all become
// action.None with a note saying which; only validated action.Params leave
// the router. A model may name an action by its tool name
// (kubernetes_scale) or its own (kubernetes.scale). The pipeline's policy and confirmation still guard whatever the
// router returns, so a model talked into "scale prod to 0" by a hostile
// message can at most propose a change the user could have typed, which
// then needs the same policy decision and confirmation.
//
// Prompt injection: the user text (and earlier turns) go only in the user
// message, encoded as a JSON object so that no text can close the data
// block; the system prompt says the data is never instructions. Text is
// passed through internal/redact before it leaves the process. Inventory
// names are filtered to plain identifiers.
//
// Cost: calls are priced (llmcost.Prices), checked against daily budgets
// before they are made, recorded after, and identical questions within a
// TTL are answered from a cache. Every Intent carries its Usage.
package llm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/redact"
	"github.com/parley-chatops/parley/prompts"
)

// Source is the Intent.Source of this router.
const Source = "llm"

// DefaultConfidence is the confidence of a clean tool call when the model
// reports none.
const DefaultConfidence = 0.8

// DefaultVariant is the router prompt used when no variants are
// configured.
const DefaultVariant = "v3"

// Variant is a prompt variant and its share of traffic.
type Variant struct {
	Name   string // prompts/router/<Name>.tmpl
	Weight int    // relative share; 0 = never chosen
}

// Budget checks and records model spend; *llmcost.Ledger implements it
// (over the store's llm_spend table in the service, so budgets hold
// across restarts and replicas).
type Budget interface {
	// Allow returns an error wrapping llmcost.ErrBudgetExceeded (a
	// *llmcost.BudgetError) when the subject's or channel's budget is used up.
	Allow(ctx context.Context, subject, channel string) error
	Record(ctx context.Context, r llmcost.Record) error
}

// Metrics receives model-call metrics; *telemetry.Metrics implements it.
type Metrics interface {
	LLMRequest(outcome string, u llmcost.Usage)
	LLMCacheHit(variant string)
	BudgetExhausted(scope string)
}

// Options configure a Router or a Summarizer. Provider and Model are
// required, and APIKey but for an OpenAI-compatible BaseURL that takes
// none (a local Ollama, llama.cpp or vLLM): then no Authorization header
// is sent.
type Options struct {
	Provider   string // OpenAI, Azure or Anthropic
	BaseURL    string // API base including /v1; default per provider. Azure: the resource endpoint.
	Model      string // model name (Azure: the deployment name)
	APIKey     string // never logged, never in an error
	APIVersion string // Azure only; default DefaultAzureAPIVersion

	Timeout      time.Duration // per Route/Summarize call, retries included; default 20s
	MaxRetries   int           // retries of 429/5xx/529/network errors; default 2, negative = none
	MaxRetryWait time.Duration // longest single wait (a longer Retry-After is not waited for); default 10s
	Temperature  float64       // default 0
	MaxTokens    int           // completion limit per call; default 256 (router), 700 (summaries)
	// LegacyMaxTokens sends max_tokens instead of max_completion_tokens,
	// for OpenAI-compatible servers that only know the old field.
	LegacyMaxTokens bool

	// Variants split traffic between prompt templates (router only);
	// default DefaultVariant only. A subject always gets the same variant.
	Variants []Variant
	// SummaryVariant is the summary template; default v2.
	SummaryVariant string
	// MaxWords bounds a summary; default 150.
	MaxWords int

	Prices   llmcost.Prices
	Budget   Budget        // nil = no budgets, no recording
	CacheTTL time.Duration // 0 = no response cache
	// CacheSize bounds the cache; default 1024 entries.
	CacheSize int
	// KnownActions are every action name that exists (the registry's), to
	// tell "you may not run it" from "unknown"; nil counts every name not
	// offered as unknown.
	KnownActions []string
	// Evidence is the offline router (router only): its reading of a
	// request is always among the tools offered for it. nil = the tools
	// are chosen from the request's words alone.
	Evidence intent.Router

	// Redact cleans text before it is sent; default redact.Redact.
	Redact     func(string) string
	Metrics    Metrics      // nil = none
	Logger     *slog.Logger // nil = discard
	HTTPClient *http.Client // nil = a client without its own timeout (the context bounds each call)
	Now        func() time.Time
}

func (o *Options) defaults(summary bool) error {
	o.Provider = strings.ToLower(strings.TrimSpace(o.Provider))
	keyless := o.APIKey == "" && o.Provider == OpenAI && o.BaseURL != ""
	switch o.Provider {
	case OpenAI:
		o.BaseURL = cmp.Or(o.BaseURL, DefaultOpenAIBaseURL)
	case Anthropic:
		o.BaseURL = cmp.Or(o.BaseURL, DefaultAnthropicBaseURL)
	case Azure:
		if o.BaseURL == "" {
			return fmt.Errorf("llm: provider azure needs a base URL (the resource endpoint)")
		}
		o.APIVersion = cmp.Or(o.APIVersion, DefaultAzureAPIVersion)
	case "":
		return fmt.Errorf("llm: no provider (openai, azure or anthropic)")
	default:
		return fmt.Errorf("llm: unknown provider %q (openai, azure or anthropic)", o.Provider)
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if !strings.HasPrefix(o.BaseURL, "http://") && !strings.HasPrefix(o.BaseURL, "https://") {
		return fmt.Errorf("llm: base URL must start with http:// or https://")
	}
	if strings.TrimSpace(o.Model) == "" {
		return fmt.Errorf("llm: no model")
	}
	if o.APIKey == "" && !keyless {
		return fmt.Errorf("llm: no API key for provider %s (only an OpenAI-compatible base URL may take none)", o.Provider)
	}
	if o.Timeout < 0 || o.MaxRetryWait < 0 || o.CacheTTL < 0 || o.MaxTokens < 0 || o.MaxWords < 0 {
		return fmt.Errorf("llm: negative timeout, wait, TTL or limit")
	}
	if o.Temperature < 0 || o.Temperature > 2 {
		return fmt.Errorf("llm: temperature %v is outside 0..2", o.Temperature)
	}
	o.Timeout = cmp.Or(o.Timeout, 20*time.Second)
	o.MaxRetryWait = cmp.Or(o.MaxRetryWait, 10*time.Second)
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = 2
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = 256
		if summary {
			o.MaxTokens = 700
		}
	}
	o.MaxWords = cmp.Or(o.MaxWords, 150)
	o.SummaryVariant = cmp.Or(o.SummaryVariant, "v2")
	if len(o.Variants) == 0 {
		o.Variants = []Variant{{Name: DefaultVariant, Weight: 100}}
	}
	if err := o.Prices.Check(); err != nil {
		return fmt.Errorf("llm: %w", err)
	}
	if o.Redact == nil {
		o.Redact = redact.Redact
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// scrubber hides the key (should a server echo it) and anything else
// redact recognises.
func scrubber(key string, red func(string) string) func(string) string {
	return func(s string) string {
		if key != "" {
			s = strings.ReplaceAll(s, key, "<secret>")
		}
		return red(s)
	}
}

// Router is the LLM intent router. It is safe for concurrent use.
type Router struct {
	o        Options
	c        *client
	variants []loadedVariant
	total    int
	cache    *llmcost.Cache[intent.Intent]
	log      *slog.Logger
}

type loadedVariant struct {
	Variant
	prompt     *prompts.Prompt
	confidence bool // ask for a confidence argument
	noneTool   bool // offer the none tool
}

var _ intent.Router = (*Router)(nil)

// New returns a Router; it fails on bad options or a missing prompt
// variant, and makes no network call.
func New(o Options) (*Router, error) {
	if err := o.defaults(false); err != nil {
		return nil, err
	}
	r := &Router{o: o, c: newClient(o),
		log: o.Logger.With("router", Source, "provider", o.Provider, "model", o.Model)}
	seen := map[string]bool{}
	for _, v := range o.Variants {
		if v.Weight < 0 {
			return nil, fmt.Errorf("llm: variant %s has a negative weight", v.Name)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("llm: variant %s listed twice", v.Name)
		}
		seen[v.Name] = true
		p, err := prompts.Load(prompts.Router, v.Name)
		if err != nil {
			return nil, fmt.Errorf("llm: %w", err)
		}
		r.variants = append(r.variants, loadedVariant{Variant: v, prompt: p, confidence: p.Meta["tool-confidence"] == "true",
			noneTool: p.Meta["none-tool"] == "true"})
		r.total += v.Weight
	}
	if r.total == 0 {
		return nil, fmt.Errorf("llm: every prompt variant has weight 0")
	}
	r.cache = llmcost.NewCache[intent.Intent](o.CacheTTL, o.CacheSize, o.Now)
	return r, nil
}

// chooseVariant picks a variant by hashing the subject (or the request id,
// or the text), so one user keeps one variant.
func (r *Router) chooseVariant(q intent.Query) loadedVariant {
	h := fnv.New64a()
	h.Write([]byte(cmp.Or(q.Subject, q.RequestID, q.Text)))
	n := int(h.Sum64() % uint64(r.total))
	for _, v := range r.variants {
		if n < v.Weight {
			return v
		}
		n -= v.Weight
	}
	return r.variants[len(r.variants)-1]
}

// UsageOf returns the model usage of an intent, for accounting and
// evaluation reports.
func UsageOf(in intent.Intent) (llmcost.Usage, bool) {
	if in.Usage == nil {
		return llmcost.Usage{}, false
	}
	return *in.Usage, true
}

// Route implements intent.Router. It returns an error when no answer
// could be had from the model (endpoint down, timeout, budget used up:
// errors.Is(err, llmcost.ErrBudgetExceeded)); a model answer that cannot
// be used is action.None with a note, not an error.
func (r *Router) Route(ctx context.Context, q intent.Query) (intent.Intent, error) {
	permitted := offeredSpecs(q.Catalog)
	v := r.chooseVariant(q)
	tag := fmt.Sprintf("llm %s, prompt %s", r.o.Model, v.Name)
	if len(permitted) == 0 {
		return intent.Intent{Action: action.None, Params: action.Params{}, Confidence: 1, Source: Source, Variant: v.Name,
			Note: "no actions are available to you here; the model was not asked (" + tag + ")"}, nil
	}
	hint := ""
	if r.o.Evidence != nil {
		if ri, err := r.o.Evidence.Route(ctx, q); err == nil {
			hint = ri.Action
		}
	}
	offered := shortlist(q, permitted, hint)
	tools, names := buildTools(offered, v.confidence, v.noneTool)
	system, err := v.prompt.Render(struct{ Inventory string }{inventoryText(q.Inventory, offered)})
	if err != nil {
		return intent.Intent{}, fmt.Errorf("llm route: %w", err)
	}
	user := userMessage(q, r.o.Redact)
	nq := q
	nq.Text = normalize(q.Text)
	key := llmcost.Key(r.o.Provider, r.o.Model, v.Name, v.prompt.Version, system, userMessage(nq, r.o.Redact), toolsFingerprint(tools))
	if in, ok := r.cache.Get(key); ok {
		in.Params = in.Params.Clone()
		if in.Proposal != nil {
			pr := *in.Proposal
			in.Proposal = &pr
		}
		u := llmcost.Usage{Provider: r.o.Provider, Model: r.o.Model, Variant: v.Name, Prompt: v.promptName(),
			PromptVersion: v.prompt.Version, Cached: true}
		in.Usage = &u
		in.Note = fmt.Sprintf("%s (%s, cached)", in.Note, tag)
		if r.o.Metrics != nil {
			r.o.Metrics.LLMCacheHit(v.Name)
		}
		return in, nil
	}
	if r.o.Budget != nil {
		if err := r.o.Budget.Allow(ctx, q.Subject, q.Channel); err != nil {
			var be *llmcost.BudgetError
			if errors.As(err, &be) && r.o.Metrics != nil {
				r.o.Metrics.BudgetExhausted(string(be.Scope))
			}
			return intent.Intent{}, err // says whose budget, in plain words
		}
	}
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, system),
		llms.TextParts(llms.ChatMessageTypeHuman, user),
	}
	res, err := r.c.generate(ctx, call{temperature: r.o.Temperature, maxTokens: r.o.MaxTokens, msgs: msgs, tools: tools})
	res.usage.Variant, res.usage.Prompt, res.usage.PromptVersion = v.Name, v.promptName(), v.prompt.Version
	if err != nil {
		outcome := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = "timeout"
		}
		if r.o.Metrics != nil {
			r.o.Metrics.LLMRequest(outcome, res.usage)
		}
		r.log.Warn("model call failed", "variant", v.Name, "attempts", res.usage.Attempts, "err", err)
		if res.usage.PromptTokens > 0 { // the provider answered, unreadably: it bills the call
			r.record(ctx, q, action.None, res.usage)
		}
		return intent.Intent{}, &llmcost.CallError{Usage: res.usage, Err: err} // plain words: the chat shows them
	}
	in, clean := interpret(res.resp, answerCtx{shortlist: offered, names: names, permitted: permitted, known: r.o.KnownActions,
		inv: q.Inventory, askConfidence: v.confidence, red: r.o.Redact})
	in.Source, in.Variant = Source, v.Name
	u := res.usage
	in.Usage = &u
	base := in.Note
	if u.Estimated {
		in.Note = fmt.Sprintf("%s (%s, ~%d+%d tokens, estimated: the response had no usage)", in.Note, tag, u.PromptTokens, u.CompletionTokens)
	} else {
		in.Note = fmt.Sprintf("%s (%s, %d+%d tokens)", in.Note, tag, u.PromptTokens, u.CompletionTokens)
	}
	if r.o.Metrics != nil {
		r.o.Metrics.LLMRequest("ok", u)
	}
	r.record(ctx, q, in.Action, u)
	if clean {
		c := in
		c.Params, c.Note, c.Usage = in.Params.Clone(), base, nil
		if in.Proposal != nil {
			pr := *in.Proposal
			c.Proposal = &pr
		}
		r.cache.Put(key, c)
	}
	return in, nil
}

// record charges a call to the budgets.
func (r *Router) record(ctx context.Context, q intent.Query, act string, u llmcost.Usage) {
	if r.o.Budget == nil {
		return
	}
	rec := llmcost.Record{Time: r.o.Now(), RequestID: q.RequestID, Subject: q.Subject, Channel: q.Channel,
		Action: act, Purpose: "route", Usage: u}
	if err := r.o.Budget.Record(ctx, rec); err != nil {
		r.log.Warn("recording model usage failed", "err", err)
	}
}

// promptName names the template: "router/v3".
func (v loadedVariant) promptName() string { return v.prompt.Kind + "/" + v.prompt.Variant }

// normalize folds case and runs of space, so that trivially different
// spellings of one question share a cache entry.
func normalize(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}
