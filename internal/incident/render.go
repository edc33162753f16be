package incident

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/pipeline"
)

// Bounds that keep a group's message readable in a storm.
const (
	maxTableRows  = 10 // alerts listed; the rest are "+N more"
	maxNameCounts = 8  // alert names counted; the rest are summed
	maxNoteAlerts = 5  // alerts named in one thread note
)

// view is what one message of a group shows.
type view struct {
	key, receiver string
	snap          snapshot
	firstSeen     time.Time
	now           time.Time
	hasLogs       bool
	window        string
	gathers       bool          // evidence will be gathered
	silence       *SilenceOffer // "Silence 1h" is offered
	podLogs       *action.Spec  // "Show pod logs" is offered without a log store
}

// nameCount is how many alerts of one name fire and are resolved.
type nameCount struct {
	name             string
	firing, resolved int
}

func (v view) byName() []nameCount {
	m := map[string]*nameCount{}
	for _, a := range v.snap.Alerts {
		n := a.name()
		c := m[n]
		if c == nil {
			c = &nameCount{name: n}
			m[n] = c
		}
		if a.Status == Firing {
			c.firing++
		} else {
			c.resolved++
		}
	}
	out := make([]nameCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b nameCount) int {
		if c := cmp.Compare(b.firing+b.resolved, a.firing+a.resolved); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	return out
}

func (v view) firing() (firing, resolved int) {
	for _, a := range v.snap.Alerts {
		if a.Status == Firing {
			firing++
		} else {
			resolved++
		}
	}
	return firing, resolved
}

// counts is "HighErrorRate: 3 firing, 1 resolved; …": every alert of the
// group is counted, however many there are.
func (v view) counts() string {
	names := v.byName()
	var parts []string
	rest := nameCount{}
	for i, c := range names {
		if i >= maxNameCounts {
			rest.firing += c.firing
			rest.resolved += c.resolved
			continue
		}
		parts = append(parts, c.name+": "+firingResolved(c.firing, c.resolved))
	}
	if n := len(names) - maxNameCounts; n > 0 {
		parts = append(parts, fmt.Sprintf("%d other names: %s", n, firingResolved(rest.firing, rest.resolved)))
	}
	if v.snap.Truncated > 0 {
		parts = append(parts, fmt.Sprintf("+%d more that Alertmanager left out (max_alerts)", v.snap.Truncated))
	}
	return strings.Join(parts, "; ")
}

func firingResolved(f, r int) string {
	switch {
	case r == 0:
		return fmt.Sprintf("%d firing", f)
	case f == 0:
		return fmt.Sprintf("%d resolved", r)
	}
	return fmt.Sprintf("%d firing, %d resolved", f, r)
}

// reply renders the group's message and the suggestions on it.
func (v view) reply() (chat.Reply, []suggestion) {
	t := targetOf(v.snap)
	firing, resolved := v.firing()
	names := v.byName()
	title := names[0].name
	if len(names) > 1 {
		title += fmt.Sprintf(" +%d more", len(names)-1)
	}
	where := ""
	if t.service != "" {
		where = " — " + t.service
		if t.namespace != "" {
			where += " in " + t.namespace
		}
	}
	var b strings.Builder
	r := chat.Reply{Kind: chat.KindError}
	if firing > 0 {
		fmt.Fprintf(&b, "*[FIRING:%d] %s*%s\n", firing, title, where)
	} else {
		fmt.Fprintf(&b, "*[RESOLVED] %s*%s\n", title, where)
		r.Kind = chat.KindSuccess
	}
	if t.summary != "" {
		b.WriteString(clip(oneLine(t.summary), 300) + "\n")
	}
	desc := v.snap.CommonAnnotations["description"]
	if desc == "" && len(v.snap.Alerts) == 1 {
		desc = v.snap.Alerts[0].Annotations["description"]
	}
	if desc != "" && desc != t.summary {
		b.WriteString(clip(oneLine(desc), 500) + "\n")
	}
	start, end := v.span()
	if firing > 0 {
		fmt.Fprintf(&b, "Firing since %s (%s).", clock(start), ago(v.now, start))
	} else {
		fmt.Fprintf(&b, "Resolved at %s after %s.", clock(end), action.FormatDuration(max(end.Sub(start), time.Second).Round(time.Second)))
	}
	e := v.snap.Evidence
	if e != nil && e.Diagnosis != "" {
		by := ""
		if e.ByModel {
			by = " (written by a model from the evidence below)"
		}
		fmt.Fprintf(&b, "\n*Diagnosis*%s: %s", by, e.Diagnosis)
	} else if e != nil && e.Note != "" {
		b.WriteString("\n" + e.Note)
	}
	r.Text = b.String()

	r.Fields = append(r.Fields, chat.Field{Label: "Alerts", Value: v.counts()})
	if l := labelString(v.snap.CommonLabels, []string{"alertname"}, 400); l != "" {
		r.Fields = append(r.Fields, chat.Field{Label: "Labels", Value: l})
	}
	if e != nil {
		for _, it := range e.Items {
			r.Fields = append(r.Fields, chat.Field{Label: it.Title, Value: it.Value})
		}
		if ro := e.Rollout; ro != nil {
			val := fmt.Sprintf("rollout to revision %d at %s, %s before the alert", ro.Revision, clock(ro.Created), ro.Before)
			switch {
			case ro.restart():
				val = fmt.Sprintf("restart (revision %d, image unchanged) at %s, %s before the alert", ro.Revision, clock(ro.Created), ro.Before)
			case ro.Image != "" && ro.PreviousImage != "":
				val += " (" + ro.PreviousImage + " → " + ro.Image + ")"
			case ro.Image != "":
				val += " (" + ro.Image + ")"
			}
			r.Fields = append(r.Fields, chat.Field{Label: "Recent change", Value: val})
		}
		if len(e.Logs) > 0 {
			r.Code = strings.Join(e.Logs, "\n")
		}
	}
	if len(v.snap.Alerts) > 1 {
		r.Table = v.table()
	}
	var sugg []suggestion
	if firing > 0 {
		sugg = suggestions(t, e, v.hasLogs, v.window, v.podLogs)
		if s, ok := v.silence.silenceSuggestion(v.snap); ok {
			sugg = append(sugg, s)
		}
		for _, s := range sugg {
			val, err := pipeline.EncodeSuggestion(pipeline.Suggestion{Action: s.Action, Params: s.Params})
			if err != nil { // a suggestion built from bad values is not offered, and the message says so
				r.Context = append(r.Context, "A suggested next step could not be offered: "+err.Error())
				continue
			}
			r.Buttons = append(r.Buttons, chat.Button{Label: s.Label, Action: "run", Value: val})
		}
	}
	if u := v.alertmanagerLink(); u != "" {
		r.Context = append(r.Context, "Alertmanager: "+u)
	}
	if u := v.generatorURL(); u != "" {
		r.Context = append(r.Context, "Source: "+u)
	}
	switch {
	case e != nil && !e.Done:
		r.Context = append(r.Context, "Gathering evidence…")
	case e == nil && v.gathers && firing > 0 && resolved == 0:
		r.Context = append(r.Context, "Gathering evidence…")
	}
	r.Context = append(r.Context, fmt.Sprintf("receiver %s · updated %s", v.receiver, clock(v.now)))
	return r, sugg
}

// span is when the group's alerts started and (when all are resolved)
// ended.
func (v view) span() (start, end time.Time) {
	for _, a := range v.snap.Alerts {
		if start.IsZero() || a.StartsAt.Before(start) {
			start = a.StartsAt
		}
		if a.EndsAt.After(end) {
			end = a.EndsAt
		}
	}
	return start, end
}

// table lists the alerts, firing first, newest first, cut at
// maxTableRows with the rest counted.
func (v view) table() *chat.Table {
	alerts := slices.Clone(v.snap.Alerts)
	slices.SortStableFunc(alerts, func(a, b alertRec) int {
		if a.Status != b.Status {
			if a.Status == Firing {
				return -1
			}
			return 1
		}
		return b.StartsAt.Compare(a.StartsAt)
	})
	common := slices.Collect(maps.Keys(v.snap.CommonLabels))
	t := &chat.Table{Header: []string{"status", "alert", "labels", "since"}}
	for i, a := range alerts {
		if i == maxTableRows {
			f, r := 0, 0
			for _, x := range alerts[i:] {
				if x.Status == Firing {
					f++
				} else {
					r++
				}
			}
			t.Rows = append(t.Rows, []string{"", fmt.Sprintf("+%d more", len(alerts)-i), firingResolved(f, r), ""})
			break
		}
		t.Rows = append(t.Rows, []string{a.Status, a.name(), labelString(a.Labels, append(common, "alertname"), 120), clock(a.StartsAt)})
	}
	return t
}

func (v view) alertmanagerLink() string {
	if v.snap.ExternalURL == "" {
		return ""
	}
	var filters []string
	for _, k := range slices.Sorted(maps.Keys(v.snap.GroupLabels)) {
		filters = append(filters, fmt.Sprintf("%s=%q", k, v.snap.GroupLabels[k]))
	}
	u := strings.TrimRight(v.snap.ExternalURL, "/") + "/#/alerts?receiver=" + url.QueryEscape(v.receiver)
	if len(filters) > 0 {
		u += "&filter=" + url.QueryEscape("{"+strings.Join(filters, ",")+"}")
	}
	return u
}

func (v view) generatorURL() string {
	for _, a := range v.snap.Alerts {
		if a.GeneratorURL != "" {
			if u, err := url.Parse(a.GeneratorURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				return clip(a.GeneratorURL, 500)
			}
		}
	}
	return ""
}

// notes are the thread notes for what changed since the message last
// showed posted: new alerts, resolutions, alerts firing again.
func notes(posted map[string]string, alerts []alertRec, now time.Time) []string {
	var added, resolved, refired []alertRec
	stillFiring := 0
	for _, a := range alerts {
		before, known := posted[a.Fingerprint]
		switch {
		case !known && a.Status == Firing:
			added = append(added, a)
		case !known || (before == Firing && a.Status == Resolved):
			resolved = append(resolved, a)
		case before == Resolved && a.Status == Firing:
			refired = append(refired, a)
		}
		if a.Status == Firing {
			stillFiring++
		}
	}
	var out []string
	if len(added) > 0 {
		out = append(out, fmt.Sprintf("+%d %s: %s", len(added), plural(len(added), "alert", "alerts"), alertList(added)))
	}
	if len(refired) > 0 {
		out = append(out, fmt.Sprintf("Firing again: %s", alertList(refired)))
	}
	if len(resolved) > 0 {
		end := now
		for _, a := range resolved {
			if !a.EndsAt.IsZero() {
				end = a.EndsAt
			}
		}
		if stillFiring == 0 {
			out = append(out, fmt.Sprintf("Resolved at %s: all %d %s.", clock(end), len(alerts), plural(len(alerts), "alert", "alerts")))
		} else {
			out = append(out, fmt.Sprintf("%d resolved at %s: %s; %d still firing.", len(resolved), clock(end), alertList(resolved), stillFiring))
		}
	}
	return out
}

// alertList names a few alerts by their name and distinguishing labels.
func alertList(alerts []alertRec) string {
	var parts []string
	for i, a := range alerts {
		if i == maxNoteAlerts {
			parts = append(parts, fmt.Sprintf("+%d more", len(alerts)-i))
			break
		}
		s := a.name()
		if l := labelString(a.Labels, []string{"alertname", "severity", "job"}, 80); l != "" {
			s += "{" + l + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// labelString is "k=v, k=v" in key order, without the skipped keys, cut
// at n bytes.
func labelString(labels map[string]string, skip []string, n int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if slices.Contains(skip, k) {
			continue
		}
		parts = append(parts, k+"="+labels[k])
	}
	return clip(strings.Join(parts, ", "), n)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("15:04:05 UTC")
}

func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < time.Second {
		return "just now"
	}
	return action.FormatDuration(d) + " ago"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
