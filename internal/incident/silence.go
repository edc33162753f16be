package incident

import (
	"github.com/parley-chatops/parley/internal/action"
)

// SilenceOffer puts a "Silence 1h" button on a firing group's message: a
// suggested action like the others, so a click takes the same path as a
// typed request (policy, confirmation, audit). The silence matches the
// group's alert name and service as its alerts carry them.
type SilenceOffer struct {
	// Spec is the silence action's (alertmanager.silence, with alertname,
	// service and duration parameters); a suggestion its parameters do not
	// validate against is not offered.
	Spec action.Spec
	// ServiceLabel is the alert label the action's service parameter
	// matches ("service").
	ServiceLabel string
	// Duration is how long the offered silence lasts ("1h").
	Duration string
}

// silenceSuggestion is the offer for a group: the alert name and the
// service every alert of the group shares; none when the group shares
// neither (a silence never matches more than the group).
func (o *SilenceOffer) silenceSuggestion(s snapshot) (suggestion, bool) {
	if o == nil {
		return suggestion{}, false
	}
	params := action.Params{"duration": o.Duration}
	if n := s.CommonLabels["alertname"]; n != "" {
		params["alertname"] = n
	}
	if v := s.CommonLabels[o.ServiceLabel]; v != "" {
		params["service"] = v
	}
	if len(params) == 1 {
		return suggestion{}, false
	}
	valid, err := o.Spec.Validate(params)
	if err != nil {
		return suggestion{}, false
	}
	return suggestion{Label: "Silence " + o.Duration, Action: o.Spec.Name, Params: valid}, true
}
