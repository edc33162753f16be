package alertmanager

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
)

// Severities are the values of alertmanager.alerts' severity parameter,
// matched on the alerts' severity label.
var Severities = []string{"critical", "warning", "info"}

// maxGroups is how many alert groups one reply lists; the rest are
// counted.
const maxGroups = 25

// Alerts is alertmanager.alerts.
type Alerts struct{ c *Client }

// NewAlerts returns alertmanager.alerts on the client.
func NewAlerts(c *Client) *Alerts { return &Alerts{c: c} }

// AlertsSpec is alertmanager.alerts' public contract.
func AlertsSpec() action.Spec {
	return action.Spec{
		Name: AlertsName, Kind: action.Read,
		Description: "Show the alerts firing in Alertmanager, grouped by alert and service, with how long each has fired and whether it is silenced or inhibited.",
		Params: []action.Param{
			serviceParam("only alerts of this service, e.g. checkout"),
			{Name: "severity", Type: action.Enum, Enum: Severities, Description: "only alerts of this severity",
				Words: []string{"severity", "sev"},
				Synonyms: map[string][]string{
					"critical": {"crit", "criticals", "critical-severity"},
					"warning":  {"warn", "warnings", "warns"},
					"info":     {"informational", "infos"},
				}},
			alertnameParam("only alerts with this name, e.g. HighErrorRate"),
		},
		Examples: []action.Example{
			{Text: "what's firing right now?"},
			{Text: "show alerts for checkout", Params: map[string]any{"service": "checkout"}},
			{Text: "any critical alerts?", Params: map[string]any{"severity": "critical"}},
			{Text: "is HighErrorRate still firing?", Params: map[string]any{"alertname": "HighErrorRate"}},
			{Text: "what is paging for payments", Params: map[string]any{"service": "payments"}},
			{Text: "list active alerts in alertmanager"},
			{Text: "crit alerts on payments", Params: map[string]any{"service": "payments", "severity": "critical"}},
			{Text: "which alerts are silenced at the moment"},
		},
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"alerts": 3, "alert": 2, "firing": 3, "fired": 1.5, "paging": 2.5, "pages": 2,
			"alertmanager": 3, "alarms": 2, "silenced": 1.5, "inhibited": 2, "pager": 1, "alerting": 2.5,
			// "what's on fire?", "anything on fire": what fires, no service named
			"(what|whats|anything|something) ... on fire": 3,
		}},
	}
}

// Spec implements action.Action.
func (a *Alerts) Spec() action.Spec { return AlertsSpec() }

// alertGroup is the alerts of one alert name and service.
type alertGroup struct {
	name, service, severity string
	alerts                  []Alert
	start                   time.Time // earliest startsAt
	active, silenced, inhib int
	silences                []string // silence ids, first seen first
}

// Run implements action.Action.
func (a *Alerts) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if err := a.c.configured(); err != nil {
		return action.Result{}, err
	}
	var ms Matchers
	if v := req.Params.String("alertname"); v != "" {
		ms = append(ms, equalMatcher("alertname", v))
	}
	if v := req.Params.String("service"); v != "" {
		ms = append(ms, equalMatcher(a.c.serviceLabel, v))
	}
	if v := req.Params.String("severity"); v != "" {
		ms = append(ms, equalMatcher("severity", v))
	}
	what := describeFilter(req.Params)
	alerts, err := a.c.Alerts(ctx, ms)
	if err != nil {
		return action.Result{}, fmt.Errorf("alerts%s: %w", what, err)
	}
	now := a.c.now()
	if len(alerts) == 0 {
		return action.Result{Text: fmt.Sprintf("Nothing is firing%s.", what),
			Outcome: map[string]string{"alerts": "0"}}, nil
	}
	groups := a.group(alerts)

	// The silences' end times, for "silenced until"; a failure here only
	// costs that detail.
	var notes []string
	ends := map[string]time.Time{}
	if slices.ContainsFunc(groups, func(g *alertGroup) bool { return g.silenced > 0 }) {
		sils, err := a.c.Silences(ctx, nil)
		if err != nil {
			notes = append(notes, "_Could not read the silences' end times: "+err.Error()+"_")
		}
		for _, s := range sils {
			ends[s.ID] = s.EndsAt
		}
	}

	active, silenced, inhibited := 0, 0, 0
	for _, g := range groups {
		active, silenced, inhibited = active+g.active, silenced+g.silenced, inhibited+g.inhib
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Firing%s: %d %s in %d %s", what, len(alerts), plural(len(alerts), "alert", "alerts"),
		len(groups), plural(len(groups), "group", "groups"))
	var parts []string
	if active > 0 {
		parts = append(parts, fmt.Sprintf("%d not silenced", active))
	}
	if silenced > 0 {
		parts = append(parts, fmt.Sprintf("%d silenced", silenced))
	}
	if inhibited > 0 {
		parts = append(parts, fmt.Sprintf("%d inhibited", inhibited))
	}
	fmt.Fprintf(&b, " (%s).", strings.Join(parts, ", "))

	t := &chat.Table{Header: []string{"alert", "service", "severity", "firing for", "state", "summary"}}
	for i, g := range groups {
		if i == maxGroups {
			notes = append(notes, fmt.Sprintf("_%d more groups not shown; narrow with a service, severity or alert name._", len(groups)-maxGroups))
			break
		}
		name := g.name
		if len(g.alerts) > 1 {
			name += fmt.Sprintf(" ×%d", len(g.alerts))
		}
		t.Rows = append(t.Rows, []string{name, orDash(g.service), orDash(g.severity), since(now.Sub(g.start)),
			g.state(ends, now), orDash(summaryOf(g))})
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n"))
	}
	return action.Result{Text: b.String(), Table: t, Outcome: map[string]string{
		"alerts": fmt.Sprint(len(alerts)), "groups": fmt.Sprint(len(groups)),
		"active": fmt.Sprint(active), "silenced": fmt.Sprint(silenced), "inhibited": fmt.Sprint(inhibited),
	}}, nil
}

// group puts alerts of the same name and service together: those not
// silenced first, then by severity, then the longest firing.
func (a *Alerts) group(alerts []Alert) []*alertGroup {
	byKey := map[string]*alertGroup{}
	var out []*alertGroup
	for _, al := range alerts {
		name, svc := al.Labels["alertname"], al.Labels[a.c.serviceLabel]
		key := name + "\x00" + svc
		g := byKey[key]
		if g == nil {
			g = &alertGroup{name: orDash(name), service: svc}
			byKey[key] = g
			out = append(out, g)
		}
		g.alerts = append(g.alerts, al)
		if g.start.IsZero() || al.StartsAt.Before(g.start) {
			g.start = al.StartsAt
		}
		if sev := al.Labels["severity"]; severityRank(sev) < severityRank(g.severity) || g.severity == "" {
			g.severity = sev
		}
		switch {
		case len(al.Status.SilencedBy) > 0:
			g.silenced++
			for _, id := range al.Status.SilencedBy {
				if !slices.Contains(g.silences, id) {
					g.silences = append(g.silences, id)
				}
			}
		case len(al.Status.InhibitedBy) > 0:
			g.inhib++
		default:
			g.active++
		}
	}
	slices.SortStableFunc(out, func(x, y *alertGroup) int {
		if c := cmp.Compare(boolRank(x.active == 0), boolRank(y.active == 0)); c != 0 {
			return c
		}
		if c := cmp.Compare(severityRank(x.severity), severityRank(y.severity)); c != 0 {
			return c
		}
		if c := x.start.Compare(y.start); c != 0 {
			return c
		}
		return cmp.Compare(x.name+x.service, y.name+y.service)
	})
	return out
}

// state is "firing", "silenced until 15:04 UTC (4b031b3b)", "inhibited"
// or counts of each when the group is mixed.
func (g *alertGroup) state(ends map[string]time.Time, now time.Time) string {
	n := len(g.alerts)
	switch {
	case g.active == n:
		return "firing"
	case g.silenced == n:
		s := "silenced"
		var end time.Time
		for _, id := range g.silences {
			if e, ok := ends[id]; ok && e.After(end) {
				end = e
			}
		}
		if !end.IsZero() {
			s += " until " + clock(end, now)
		}
		return s + " (" + shortID(g.silences[0]) + ")"
	case g.inhib == n:
		return "inhibited"
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{g.active, "firing"}, {g.silenced, "silenced"}, {g.inhib, "inhibited"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}

// summaryOf is the summary (or description) of the group's oldest alert,
// redacted and cut to a table cell.
func summaryOf(g *alertGroup) string {
	oldest := g.alerts[0]
	for _, a := range g.alerts[1:] {
		if a.StartsAt.Before(oldest.StartsAt) {
			oldest = a
		}
	}
	s := oldest.Annotations["summary"]
	if s == "" {
		s = oldest.Annotations["description"]
	}
	return redact.Redact(clip(strings.Join(strings.Fields(s), " "), 80))
}

// describeFilter is " for checkout (critical, HighErrorRate)" or "".
func describeFilter(p action.Params) string {
	var s string
	if v := p.String("service"); v != "" {
		s = " for " + v
	}
	var extra []string
	if v := p.String("severity"); v != "" {
		extra = append(extra, v)
	}
	if v := p.String("alertname"); v != "" {
		extra = append(extra, v)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical", "page", "error":
		return 0
	case "warning", "warn":
		return 1
	case "info", "none":
		return 2
	case "":
		return 4
	}
	return 3
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// shortID is the first block of a silence id, as people quote it.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

// since is a coarse duration: 45s, 12m, 2h5m, 3d4h.
func since(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

// clock is a time as "15:04 UTC", with the date when it is not today.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 UTC")
	}
	return t.Format("Jan 2 15:04 UTC")
}
