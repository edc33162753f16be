package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
)

// Silencer is alertmanager.silence.
type Silencer struct{ c *Client }

// NewSilencer returns alertmanager.silence on the client.
func NewSilencer(c *Client) *Silencer { return &Silencer{c: c} }

// maxComment bounds a silence comment typed in chat.
const maxComment = 500

// SilenceSpec is alertmanager.silence's public contract.
func SilenceSpec() action.Spec {
	return action.Spec{
		Name: SilenceName, Kind: action.Mutating,
		Description: "Silence alerts in Alertmanager by alert name and/or service for a while (default 1h, at most 7d); the requester is recorded as the silence's creator.",
		Params: []action.Param{
			alertnameParam("alert name to silence, e.g. HighErrorRate"),
			serviceParam("service whose alerts to silence, e.g. checkout"),
			{Name: "duration", Type: action.Duration, Default: action.FormatDuration(DefaultSilence),
				Description: "how long the silence lasts, e.g. 30m, 2h (default 1h, at most 7d)",
				Words:       []string{"for", "during", "lasting"}},
			{Name: "comment", Type: action.String, Description: "why, kept on the silence (e.g. the incident or ticket)",
				Words: []string{"comment", "because", "reason", "note", "issue", "ticket"}},
		},
		Examples: []action.Example{
			{Text: "silence HighErrorRate for 2h", Params: map[string]any{"alertname": "HighErrorRate", "duration": "2h"}},
			{Text: "mute alerts for checkout", Params: map[string]any{"service": "checkout"}},
			{Text: "snooze the payments alerts for 30 minutes", Params: map[string]any{"service": "payments", "duration": "30m"}},
			{Text: "silence KubePodCrashLooping on payments for 4h because of INC-231",
				Params: map[string]any{"alertname": "KubePodCrashLooping", "service": "payments", "duration": "4h", "comment": "INC-231"}},
			{Text: "ack HighLatency for checkout, I'm on it", Params: map[string]any{"alertname": "HighLatency", "service": "checkout"}},
			{Text: "please mute DiskFillingUp for 1d", Params: map[string]any{"alertname": "DiskFillingUp", "duration": "1d"}},
			{Text: "/parley alertmanager.silence alertname:HighErrorRate duration:1h", Params: map[string]any{"alertname": "HighErrorRate", "duration": "1h"}},
		},
		Vocabulary: action.Vocabulary{
			Verbs: []string{"silence", "mute", "snooze", "ack", "acknowledge", "shush", "quiet", "hush"},
			Cues:  map[string]float64{"alerts": 1, "alert": 1, "pager": 1, "paging": 1},
		},
	}
}

// Spec implements action.Action.
func (s *Silencer) Spec() action.Spec { return SilenceSpec() }

// silenceRequest is a checked request: what the silence will match and
// for how long.
type silenceRequest struct {
	matchers Matchers
	duration time.Duration
	comment  string
}

func (s *Silencer) read(req action.Request) (silenceRequest, error) {
	var r silenceRequest
	name, svc := req.Params.String("alertname"), req.Params.String("service")
	if name == "" && svc == "" {
		return r, fmt.Errorf("%w: say which alerts to silence: an alert name, a service, or both (a silence never matches everything)", action.ErrInvalid)
	}
	if name != "" {
		r.matchers = append(r.matchers, equalMatcher("alertname", name))
	}
	if svc != "" {
		r.matchers = append(r.matchers, equalMatcher(s.c.serviceLabel, svc))
	}
	d := DefaultSilence
	if v := req.Params.String("duration"); v != "" {
		var err error
		if d, err = action.ParseDuration(v); err != nil {
			return r, fmt.Errorf("%w: duration: %v", action.ErrInvalid, err)
		}
	}
	if d < MinSilence || d > MaxSilence {
		return r, fmt.Errorf("%w: a silence lasts between %s and %s, not %s", action.ErrInvalid,
			action.FormatDuration(MinSilence), action.FormatDuration(MaxSilence), action.FormatDuration(d))
	}
	r.duration = d
	r.comment = strings.TrimSpace(req.Params.String("comment"))
	if len(r.comment) > maxComment {
		return r, fmt.Errorf("%w: the comment is longer than %d bytes", action.ErrInvalid, maxComment)
	}
	return r, nil
}

// silenceState is what a plan saw: the firing alerts the silence would
// cover and the live silences with exactly the same matchers.
type silenceState struct {
	alerts []Alert
	same   []Silence
}

func (s *Silencer) look(ctx context.Context, r silenceRequest) (silenceState, error) {
	var st silenceState
	alerts, err := s.c.Alerts(ctx, r.matchers)
	if err != nil {
		return st, err
	}
	st.alerts = alerts
	sils, err := s.c.Silences(ctx, r.matchers)
	if err != nil {
		return st, err
	}
	for _, sil := range sils {
		if sil.Status.State != SilenceExpired && sameMatchers(sil.Matchers, r.matchers) {
			st.same = append(st.same, sil)
		}
	}
	slices.SortFunc(st.same, func(a, b Silence) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}

// Plan implements action.Planner: the matchers, the end if confirmed now,
// the alerts it silences now and any live silence already doing the same.
// The fingerprint is the matchers and the ids of those live silences, so
// a silence someone adds or ends meanwhile stops the run.
func (s *Silencer) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	if err := s.c.configured(); err != nil {
		return action.Plan{}, err
	}
	r, err := s.read(req)
	if err != nil {
		return action.Plan{}, err
	}
	st, err := s.look(ctx, r)
	if err != nil {
		return action.Plan{}, fmt.Errorf("silence %s: %w", r.matchers, err)
	}
	now := s.c.now()
	end := now.Add(r.duration)
	var b strings.Builder
	fmt.Fprintf(&b, "silence alerts matching %s for %s (until about %s)", r.matchers, action.FormatDuration(r.duration), clock(end, now))
	switch n := len(st.alerts); n {
	case 0:
		b.WriteString("; no alert matching it is firing now (names are case-sensitive)")
	default:
		fmt.Fprintf(&b, "; it silences %d firing %s now: %s", n, plural(n, "alert", "alerts"), alertList(st.alerts, r.matchers, 5))
	}
	for _, sil := range st.same {
		fmt.Fprintf(&b, "; silence %s by %s already does this until %s", shortID(sil.ID), sil.CreatedBy, clock(sil.EndsAt, now))
	}
	ids := make([]string, len(st.same))
	for i, sil := range st.same {
		ids[i] = sil.ID
	}
	return action.Plan{
		Target:  "alertmanager " + r.matchers.String(),
		Summary: b.String(),
		Changes: []action.Change{{Field: "silence", Before: "none", After: r.matchers.String() + " until " + clock(end, now)}},
		State:   "matchers=" + r.matchers.String() + ";same=" + strings.Join(ids, ","),
	}, nil
}

// Run implements action.Action: creates the silence, from now for the
// duration, with the requester as its creator.
func (s *Silencer) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if err := s.c.configured(); err != nil {
		return action.Result{}, err
	}
	r, err := s.read(req)
	if err != nil {
		return action.Result{}, err
	}
	if req.Subject == "" {
		return action.Result{}, fmt.Errorf("%w: a silence needs a requester to record as its creator", action.ErrInvalid)
	}
	now := s.c.now().UTC()
	comment := r.comment
	if comment == "" {
		comment = "Silenced from chat"
	}
	if req.RequestID != "" {
		comment += " (Parley request " + req.RequestID + ")"
	}
	sil := Silence{Matchers: r.matchers, StartsAt: now, EndsAt: now.Add(r.duration), CreatedBy: req.Subject, Comment: comment}
	id, err := s.c.CreateSilence(ctx, sil)
	if err != nil {
		if errors.Is(err, action.ErrUnavailable) {
			// The request may have reached Alertmanager before the failure.
			err = fmt.Errorf("%w; the silence may or may not exist now: check Alertmanager's silences before asking again", err)
		}
		return action.Result{}, fmt.Errorf("silence %s: %w", r.matchers, err)
	}
	text := fmt.Sprintf("Silenced %s until %s (%s).", r.matchers, clock(sil.EndsAt, now), action.FormatDuration(r.duration))
	// What it covers now; the silence stands whatever this read says.
	if alerts, err := s.c.Alerts(ctx, r.matchers); err != nil {
		text += " (Could not list the alerts it covers: " + err.Error() + ".)"
	} else {
		n := 0
		for _, a := range alerts {
			if slices.Contains(a.Status.SilencedBy, id) {
				n++
			}
		}
		text += fmt.Sprintf(" %d firing %s silenced now.", n, plural(n, "alert is", "alerts are"))
	}
	text += fmt.Sprintf(" To end it early: expire silence %s.", shortID(id))
	fields := []chat.Field{
		{Label: "Silence", Value: id},
		{Label: "Ends", Value: sil.EndsAt.Format(time.RFC3339)},
		{Label: "Created by", Value: req.Subject},
		{Label: "Comment", Value: redact.Redact(comment)},
	}
	if link := s.c.SilenceLink(id); link != "" {
		fields = append(fields, chat.Field{Label: "Alertmanager", Value: link})
	}
	return action.Result{Text: text, Fields: fields, Outcome: map[string]string{
		"silence_id": id, "matchers": r.matchers.String(), "ends_at": sil.EndsAt.Format(time.RFC3339),
	}}, nil
}

// sameMatchers reports whether two matcher sets are the same set.
func sameMatchers(a, b Matchers) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(m Matcher) string { return m.String() }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// alertList names up to n alerts by the labels that tell them apart (not
// the matched ones), "and N more" for the rest.
func alertList(alerts []Alert, matched Matchers, n int) string {
	alerts = slices.Clone(alerts)
	slices.SortFunc(alerts, func(a, b Alert) int { return a.StartsAt.Compare(b.StartsAt) })
	skip := map[string]bool{"severity": true}
	for _, m := range matched {
		skip[m.Name] = true
	}
	var parts []string
	for i, a := range alerts {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(alerts)-n))
			break
		}
		parts = append(parts, clip(labelText(a.Labels, skip), 120))
	}
	return strings.Join(parts, ", ")
}

// labelText is name{k="v", ...} for an alert, leaving out skipped labels.
func labelText(labels map[string]string, skip map[string]bool) string {
	name := labels["alertname"]
	var keys []string
	for k := range labels {
		if k != "alertname" && !skip[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ms := make(Matchers, 0, len(keys))
	for _, k := range keys {
		ms = append(ms, equalMatcher(k, labels[k]))
	}
	if len(ms) == 0 {
		return name
	}
	return name + ms.String()
}
