// Package action defines what an action is: its typed Spec (the public
// contract the routers, policy and LLM tools are built from), the Action
// interface that integrations implement, and an explicit Registry that
// internal/app fills. Actions never import adapters; both meet here and in
// internal/chat.
package action

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chatops/parley/internal/chat"
)

// Kind says whether an action only reads or changes a system.
type Kind string

const (
	Read     Kind = "read"
	Mutating Kind = "mutating"
)

// Action is one thing Parley can do.
type Action interface {
	Spec() Spec
	// Run performs the action with validated parameters. An error is an
	// infrastructure failure (backend down, forbidden, not found); use the
	// sentinel kinds below so the pipeline can word the reply.
	Run(ctx context.Context, req Request) (Result, error)
}

// Planner is implemented by mutating actions. Plan describes exactly what
// would change, without changing it, and fingerprints the target's current
// state. The pipeline shows the plan in the confirmation prompt and plans
// again just before running: a changed fingerprint means the target moved
// since the user confirmed, and the action is not run.
type Planner interface {
	Plan(ctx context.Context, req Request) (Plan, error)
}

// Request is a validated call of an action.
type Request struct {
	Action    string
	Params    Params
	Subject   string   // "platform:user" of the requester
	Groups    []string // platform groups of the requester (Slack user groups, Discord roles)
	Channel   string   // "platform:channel"
	RequestID string
	// Progress, when set, lets a long action (an evaluation run) keep one
	// message in the thread updated with how far it is. Nil-safe: use
	// req.Report(ctx, text).
	Progress Progress
}

// Progress receives progress reports of a running action.
type Progress interface {
	// Update replaces the action's progress message with text.
	Update(ctx context.Context, text string)
}

// Report sends a progress update when the request has a Progress.
func (r Request) Report(ctx context.Context, text string) {
	if r.Progress != nil {
		r.Progress.Update(ctx, text)
	}
}

// Plan is what a mutating action would do.
type Plan struct {
	Target  string   // e.g. "prod/checkout"
	Summary string   // e.g. "checkout replicas 3 -> 5"
	Changes []Change // each field that changes
	State   string   // fingerprint of the target state the plan was made from
}

// Change is one field before and after.
type Change struct {
	Field  string
	Before string
	After  string
}

// Result is what an action returns for the chat.
type Result struct {
	Text   string
	Fields []chat.Field
	Table  *chat.Table
	Code   string
	Images []chat.Image
	// Outcome is a short machine-readable summary recorded in the audit log
	// (for example {"replicas_before":"3","replicas_after":"5"}).
	Outcome map[string]string
	// Kind styles the reply when what the action reports is not a plain
	// success: chat.KindAttention (an unready deployment) or
	// chat.KindProgress (a rollout under way); chat.KindInfo for a neutral
	// state. Empty means chat.KindSuccess (and is left out of the JSON
	// form, so golden files of plain results do not change).
	Kind chat.ReplyKind `json:"Kind,omitempty"`
}

// Error kinds. Wrap them: fmt.Errorf("scale %s/%s: %w", ns, name, ErrNotFound).
var (
	ErrInvalid       = errors.New("invalid parameters")
	ErrNotFound      = errors.New("not found")
	ErrForbidden     = errors.New("forbidden")
	ErrNotConfigured = errors.New("not configured")
	ErrUnavailable   = errors.New("backend unavailable")
	ErrConflict      = errors.New("conflict")
)

// Registry is the set of actions this Parley instance offers. It is built
// explicitly in internal/app; there is no global registry.
type Registry struct {
	order   []string
	actions map[string]Action
	// specs are the actions' specs, taken once: a spec does not change,
	// and building one (patterns compiled, the catalog copied) is not for
	// every request.
	specs  []Spec
	byName map[string]int
}

// NewRegistry returns a registry holding the given actions. Duplicate names
// are an error.
func NewRegistry(actions ...Action) (*Registry, error) {
	r := &Registry{actions: make(map[string]Action), byName: make(map[string]int)}
	for _, a := range actions {
		spec := a.Spec()
		name := spec.Name
		if err := spec.Check(); err != nil {
			return nil, err
		}
		if _, dup := r.actions[name]; dup {
			return nil, fmt.Errorf("action %q registered twice", name)
		}
		r.actions[name] = a
		r.order = append(r.order, name)
		r.byName[name] = len(r.specs)
		r.specs = append(r.specs, spec)
	}
	return r, nil
}

// Get returns the named action.
func (r *Registry) Get(name string) (Action, bool) {
	a, ok := r.actions[name]
	return a, ok
}

// Specs returns the specs of all actions in registration order, as they
// were when registered. The slice is the caller's; the specs' own slices
// and maps are shared and must not be modified.
func (r *Registry) Specs() []Spec {
	return slices.Clone(r.specs)
}

// Spec returns the spec of the named action, as it was when registered.
func (r *Registry) Spec(name string) (Spec, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Spec{}, false
	}
	return r.specs[i], true
}
