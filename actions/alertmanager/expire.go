package alertmanager

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/redact"
)

// Expirer is alertmanager.expire.
type Expirer struct{ c *Client }

// NewExpirer returns alertmanager.expire on the client.
func NewExpirer(c *Client) *Expirer { return &Expirer{c: c} }

// silenceIDPattern accepts a silence id as Alertmanager writes it (a UUID)
// or its first block of eight hex digits, as Parley's replies and the
// alerts table quote it.
var silenceIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$`)

// ExpireSpec is alertmanager.expire's public contract.
func ExpireSpec() action.Spec {
	return action.Spec{
		Name: ExpireName, Kind: action.Mutating,
		Description: "End an Alertmanager silence now, so the alerts it covered notify again.",
		Params: []action.Param{
			{Name: "silence", Type: action.String, Required: true, Pattern: silenceIDPattern,
				Description: "the silence id, or its first 8 characters as Parley shows them (e.g. 4b031b3b)",
				Words:       []string{"silence", "id", "silence id"}},
		},
		Examples: []action.Example{
			{Text: "expire silence 4b031b3b", Params: map[string]any{"silence": "4b031b3b"}},
			{Text: "unsilence 4b031b3b-1067-4cb6-a4bd-5e854c2c803c", Params: map[string]any{"silence": "4b031b3b-1067-4cb6-a4bd-5e854c2c803c"}},
			{Text: "end the silence 9f2c7a10, the fix is out", Params: map[string]any{"silence": "9f2c7a10"}},
			{Text: "unmute 0d7e22c4", Params: map[string]any{"silence": "0d7e22c4"}},
			{Text: "lift silence e41b9c02 please", Params: map[string]any{"silence": "e41b9c02"}},
			{Text: "/parley alertmanager.expire silence:4b031b3b", Params: map[string]any{"silence": "4b031b3b"}},
		},
		Vocabulary: action.Vocabulary{
			Verbs: []string{"unsilence", "unmute", "unsnooze", "expire", "end", "lift", "remove"},
			Cues:  map[string]float64{"silence": 2, "silences": 1.5, "mute": 1},
		},
	}
}

// Spec implements action.Action.
func (e *Expirer) Spec() action.Spec { return ExpireSpec() }

// find returns the silence a request names: by id, or by the first block
// of its id among all silences.
func (e *Expirer) find(ctx context.Context, req action.Request) (Silence, error) {
	id := strings.ToLower(req.Params.String("silence"))
	if !silenceIDPattern.MatchString(id) {
		return Silence{}, fmt.Errorf("%w: %q is not a silence id (a UUID, or its first 8 characters)", action.ErrInvalid, id)
	}
	if len(id) > 8 {
		return e.c.Silence(ctx, id)
	}
	all, err := e.c.Silences(ctx, nil)
	if err != nil {
		return Silence{}, err
	}
	var found []Silence
	for _, s := range all {
		if strings.HasPrefix(s.ID, id) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return Silence{}, fmt.Errorf("%w: no silence %s in Alertmanager", action.ErrNotFound, id)
	case 1:
		return found[0], nil
	}
	// Expired silences linger for a while; a live one is what people mean.
	live := slices.DeleteFunc(slices.Clone(found), func(s Silence) bool { return s.Status.State == SilenceExpired })
	if len(live) == 1 {
		return live[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.ID
	}
	return Silence{}, fmt.Errorf("%w: %s starts %d silence ids (%s); give the whole id", action.ErrInvalid, id, len(found), strings.Join(ids, ", "))
}

// Plan implements action.Planner: the silence that ends (matchers,
// creator, end, comment) and the alerts it covers now. The fingerprint is
// the silence's id, state, end and last update, so a silence extended or
// ended meanwhile stops the run.
func (e *Expirer) Plan(ctx context.Context, req action.Request) (action.Plan, error) {
	if err := e.c.configured(); err != nil {
		return action.Plan{}, err
	}
	s, err := e.find(ctx, req)
	if err != nil {
		return action.Plan{}, fmt.Errorf("expire silence %s: %w", req.Params.String("silence"), err)
	}
	now := e.c.now()
	if s.Status.State == SilenceExpired {
		return action.Plan{}, fmt.Errorf("expire silence %s: %w: it already ended at %s", s.ID, action.ErrInvalid, clock(s.EndsAt, now))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "expire silence %s %s (created by %s, %s %s", shortID(s.ID), s.Matchers, orDash(s.CreatedBy), endsWord(s, now), clock(s.EndsAt, now))
	if c := strings.TrimSpace(s.Comment); c != "" {
		fmt.Fprintf(&b, ", comment %q", redact.Redact(clip(c, 100)))
	}
	b.WriteString(")")
	if alerts, err := e.c.Alerts(ctx, s.Matchers); err != nil {
		return action.Plan{}, fmt.Errorf("expire silence %s: %w", s.ID, err)
	} else if covered := silencedBy(alerts, s.ID); len(covered) > 0 {
		fmt.Fprintf(&b, "; %d firing %s it silences will notify again: %s", len(covered), plural(len(covered), "alert", "alerts"),
			alertList(covered, s.Matchers, 5))
	} else {
		b.WriteString("; no firing alert is silenced by it now")
	}
	return action.Plan{
		Target:  "alertmanager silence " + s.ID,
		Summary: b.String(),
		Changes: []action.Change{{Field: "silence " + shortID(s.ID), Before: s.Status.State + " until " + clock(s.EndsAt, now), After: "expired"}},
		State:   fmt.Sprintf("id=%s;state=%s;ends=%s;updated=%s", s.ID, s.Status.State, s.EndsAt.UTC().Format(time.RFC3339Nano), s.UpdatedAt.UTC().Format(time.RFC3339Nano)),
	}, nil
}

// Run implements action.Action.
func (e *Expirer) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if err := e.c.configured(); err != nil {
		return action.Result{}, err
	}
	s, err := e.find(ctx, req)
	if err != nil {
		return action.Result{}, fmt.Errorf("expire silence %s: %w", req.Params.String("silence"), err)
	}
	now := e.c.now()
	if s.Status.State == SilenceExpired {
		return action.Result{}, fmt.Errorf("expire silence %s: %w: it already ended at %s", s.ID, action.ErrInvalid, clock(s.EndsAt, now))
	}
	if err := e.c.ExpireSilence(ctx, s.ID); err != nil {
		return action.Result{}, err
	}
	text := fmt.Sprintf("Expired silence %s %s (created by %s).", shortID(s.ID), s.Matchers, orDash(s.CreatedBy))
	if alerts, err := e.c.Alerts(ctx, s.Matchers); err != nil {
		text += " (Could not list the alerts it covered: " + err.Error() + ".)"
	} else {
		n := 0
		for _, a := range alerts {
			if len(a.Status.SilencedBy) == 0 && len(a.Status.InhibitedBy) == 0 {
				n++
			}
		}
		text += fmt.Sprintf(" %d matching %s firing and notifying now.", n, plural(n, "alert is", "alerts are"))
	}
	fields := []chat.Field{{Label: "Silence", Value: s.ID}}
	if link := e.c.SilenceLink(s.ID); link != "" {
		fields = append(fields, chat.Field{Label: "Alertmanager", Value: link})
	}
	return action.Result{Text: text, Fields: fields, Outcome: map[string]string{
		"silence_id": s.ID, "matchers": s.Matchers.String(), "was": s.Status.State,
	}}, nil
}

// silencedBy returns the alerts the silence id silences.
func silencedBy(alerts []Alert, id string) []Alert {
	var out []Alert
	for _, a := range alerts {
		if slices.Contains(a.Status.SilencedBy, id) {
			out = append(out, a)
		}
	}
	return out
}

// endsWord is "ends" for a live silence, "starts … ends" wording aside.
func endsWord(s Silence, now time.Time) string {
	if s.Status.State == SilencePending {
		return "starting " + clock(s.StartsAt, now) + ", ends"
	}
	return "ends"
}
