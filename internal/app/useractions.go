package app

import (
	"fmt"

	"github.com/parley-chatops/parley/actions/useraction"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
)

// loadUserActions loads the user-defined actions in dir (actions_dir in
// the configuration, or --actions): every command that reads actions calls
// it, so chat, serve, classify, eval routing, policy check and config
// validate accept and refuse exactly the same files. builtins are the
// names the files may not take. An empty dir means none. A file that does
// not load is an error naming file:line, and the command stops.
func loadUserActions(dir string, builtins []string, o useraction.Options) ([]action.Action, error) {
	if dir == "" {
		return nil, nil
	}
	o.Builtins = builtins
	if o.UserAgent == "" {
		o.UserAgent = "parley/" + Version
	}
	loaded, err := useraction.LoadDir(dir, o)
	if err != nil {
		return nil, fmt.Errorf("user-defined actions in %s:\n%w", dir, err)
	}
	out := make([]action.Action, len(loaded))
	for i, a := range loaded {
		out[i] = a
	}
	return out, nil
}

// builtinNames are the names of the built-in actions.
func builtinNames() []string {
	var out []string
	for _, s := range builtin.Specs() {
		out = append(out, s.Name)
	}
	return append(out, action.None)
}

// specsOf returns the specs of actions.
func specsOf(acts []action.Action) []action.Spec {
	out := make([]action.Spec, len(acts))
	for i, a := range acts {
		out[i] = a.Spec()
	}
	return out
}

// offlineSpecs are the specs of the user-defined actions in dir, for the
// commands that route or decide without running anything (classify, eval
// routing, policy check): secrets are not read.
func offlineSpecs(dir string) ([]action.Spec, error) {
	user, err := loadUserActions(dir, builtinNames(), useraction.Options{NoSecrets: true})
	if err != nil {
		return nil, err
	}
	return specsOf(user), nil
}
