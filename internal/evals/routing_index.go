package evals

import (
	"slices"

	"github.com/parley-chatops/parley/internal/action"
)

// catalog is the set of action specs a dataset is checked and scored
// against: the actions of the running configuration (built-in and
// user-defined), never a list compiled into this package.
type actionIndex struct {
	byName map[string]action.Spec
	order  []string // spec names in catalog order, then none
}

func newActionIndex(specs []action.Spec) *actionIndex {
	c := &actionIndex{byName: make(map[string]action.Spec, len(specs))}
	for _, s := range specs {
		if _, dup := c.byName[s.Name]; dup || s.Name == action.None {
			continue
		}
		c.byName[s.Name] = s
		c.order = append(c.order, s.Name)
	}
	c.order = append(c.order, action.None)
	return c
}

func (c *actionIndex) spec(name string) (action.Spec, bool) {
	if c == nil {
		return action.Spec{}, false
	}
	s, ok := c.byName[name]
	return s, ok
}

// rank orders labels: single actions in catalog order, then none, then
// lists of acceptable actions. Without a catalog every action ranks
// alike, before none.
func (c *actionIndex) rank(label string) int {
	if c == nil {
		if label == action.None {
			return 1
		}
		return 0
	}
	if i := slices.Index(c.order, label); i >= 0 {
		return i
	}
	return len(c.order)
}

// isMutating reports whether the named action changes something.
func (c *actionIndex) isMutating(name string) bool {
	s, ok := c.spec(name)
	return ok && s.Kind == action.Mutating
}

// risky reports whether running the named action could change something:
// mutating actions and names the catalog does not know.
func (c *actionIndex) risky(name string) bool {
	if name == "" || name == action.None {
		return false
	}
	s, ok := c.spec(name)
	return !ok || s.Kind == action.Mutating
}

// paramType is the type of a parameter of any of the actions.
func (c *actionIndex) paramType(actions []string, name string) action.ParamType {
	for _, a := range actions {
		if s, ok := c.spec(a); ok {
			if p, ok := s.Param(name); ok {
				return p.Type
			}
		}
	}
	return ""
}
