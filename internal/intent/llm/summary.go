package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/prompts"
)

// Evidence is what was gathered about an incident, as structured data.
// Every item gets an id (M1, L1, K1, R1 in order) that the summary cites.
type Evidence struct {
	Title    string // alert group or question, e.g. "HighErrorRate checkout"
	Service  string
	Window   string // e.g. "30m"
	Channel  string // where the summary goes, for accounting ("platform:id")
	Metrics  []Metric
	Logs     []LogLine
	Kube     []Fact // Kubernetes state: "deployment/checkout (prod)": "3/5 ready, 2 restarts"
	Rollouts []Fact // recent rollouts: "checkout rev 42": "image v1.4.2 at 10:02"
}

// Metric is one measured number.
type Metric struct {
	Name  string  // "error_rate", "latency_p99"
	Value float64 // as measured
	Unit  string  // "ratio", "seconds", "req/s"
}

// LogLine is one log line; its text is data, never instructions.
type LogLine struct {
	Time time.Time
	Text string
}

// Fact is one observed state.
type Fact struct {
	Subject string
	Text    string
}

// Bounds on the evidence sent.
const (
	maxLogLines  = 50
	maxLogBytes  = 500
	maxFactBytes = 300
	maxFacts     = 30
)

// Summarizer writes grounded incident summaries. It offers the model no
// tools, so nothing in the evidence (a hostile log line included) can
// make it act. It is safe for concurrent use.
type Summarizer struct {
	o      Options
	c      *client
	prompt *prompts.Prompt
	log    *slog.Logger
}

// NewSummarizer returns a Summarizer; Variants and CacheTTL are ignored.
func NewSummarizer(o Options) (*Summarizer, error) {
	if err := o.defaults(true); err != nil {
		return nil, err
	}
	p, err := prompts.Load(prompts.Summary, o.SummaryVariant)
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	return &Summarizer{o: o, c: newClient(o), prompt: p,
		log: o.Logger.With("summarizer", o.SummaryVariant, "provider", o.Provider, "model", o.Model)}, nil
}

type evidenceItem struct {
	ID      string   `json:"id"`
	Name    string   `json:"name,omitempty"`
	Value   *float64 `json:"value,omitempty"`
	Unit    string   `json:"unit,omitempty"`
	Time    string   `json:"time,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Text    string   `json:"text,omitempty"`
}

// evidenceMessage is the user message: the evidence as one JSON object.
func (s *Summarizer) evidenceMessage(ev Evidence) string {
	red := s.o.Redact
	var m struct {
		Title    string         `json:"title,omitempty"`
		Service  string         `json:"service,omitempty"`
		Window   string         `json:"window,omitempty"`
		Metrics  []evidenceItem `json:"metrics,omitempty"`
		Logs     []evidenceItem `json:"logs,omitempty"`
		Kube     []evidenceItem `json:"kubernetes,omitempty"`
		Rollouts []evidenceItem `json:"rollouts,omitempty"`
	}
	m.Title, m.Service, m.Window = clip(red(ev.Title), 200), clip(ev.Service, 100), clip(ev.Window, 20)
	for i, x := range ev.Metrics {
		v := x.Value
		m.Metrics = append(m.Metrics, evidenceItem{ID: fmt.Sprintf("M%d", i+1), Name: clip(x.Name, 100), Value: &v, Unit: clip(x.Unit, 20)})
	}
	logs := ev.Logs
	if len(logs) > maxLogLines {
		logs = logs[len(logs)-maxLogLines:]
	}
	for i, l := range logs {
		it := evidenceItem{ID: fmt.Sprintf("L%d", i+1), Text: clip(red(l.Text), maxLogBytes)}
		if !l.Time.IsZero() {
			it.Time = l.Time.UTC().Format(time.RFC3339)
		}
		m.Logs = append(m.Logs, it)
	}
	facts := func(prefix string, fs []Fact) []evidenceItem {
		var out []evidenceItem
		for i, f := range fs {
			if i == maxFacts {
				break
			}
			out = append(out, evidenceItem{ID: fmt.Sprintf("%s%d", prefix, i+1), Subject: clip(red(f.Subject), 100), Text: clip(red(f.Text), maxFactBytes)})
		}
		return out
	}
	m.Kube, m.Rollouts = facts("K", ev.Kube), facts("R", ev.Rollouts)
	b, _ := json.Marshal(m)
	return string(b)
}

// Summarize writes the summary of the evidence. The text is redacted and
// defanged (Defang) before it is returned; usage is set even when err is not nil (as far
// as it is known).
func (s *Summarizer) Summarize(ctx context.Context, ev Evidence) (string, llmcost.Usage, error) {
	system, err := s.prompt.Render(struct{ MaxWords int }{s.o.MaxWords})
	if err != nil {
		return "", llmcost.Usage{}, fmt.Errorf("summarize: %w", err)
	}
	if s.o.Budget != nil {
		// A summary spends the channel's budget like a routing call; over
		// it, the caller writes its deterministic summary instead.
		if err := s.o.Budget.Allow(ctx, "", ev.Channel); err != nil {
			var be *llmcost.BudgetError
			if errors.As(err, &be) && s.o.Metrics != nil {
				s.o.Metrics.BudgetExhausted(string(be.Scope))
			}
			return "", llmcost.Usage{}, fmt.Errorf("summarize: %w", err)
		}
	}
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, system),
		llms.TextParts(llms.ChatMessageTypeHuman, s.evidenceMessage(ev)),
	}
	res, err := s.c.generate(ctx, call{temperature: s.o.Temperature, maxTokens: s.o.MaxTokens, msgs: msgs}) // no tools: a summary cannot act
	res.usage.Variant = "summary-" + s.o.SummaryVariant
	if err != nil {
		outcome := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = "timeout"
		}
		if s.o.Metrics != nil {
			s.o.Metrics.LLMRequest(outcome, res.usage)
		}
		return "", res.usage, fmt.Errorf("summarize: %w", err)
	}
	if s.o.Metrics != nil {
		s.o.Metrics.LLMRequest("ok", res.usage)
	}
	if s.o.Budget != nil {
		rec := llmcost.Record{Time: s.o.Now(), Channel: ev.Channel, Purpose: "summary", Usage: res.usage}
		if err := s.o.Budget.Record(ctx, rec); err != nil {
			s.log.Warn("recording model usage failed", "err", err)
		}
	}
	var parts []string
	for _, ch := range res.resp.Choices {
		if t := strings.TrimSpace(ch.Content); t != "" {
			parts = append(parts, t)
		}
	}
	if len(parts) == 0 {
		return "", res.usage, fmt.Errorf("summarize: %s returned no text", s.o.Provider)
	}
	// the model's words: redacted, and links and commands made inert
	return Defang(s.o.Redact(strings.Join(parts, "\n"))), res.usage, nil
}
