// Package builtin lists the specs of Parley's built-in actions. Each spec
// (name, kind, typed parameters, examples, the words people use for it) is
// declared by the package that implements the action; this is the one list
// of them, in help order. internal/app registers the implementations in the
// same order and adds the user-defined actions; offline commands and tests
// read the specs from here without building any action.
package builtin

import (
	"slices"

	"github.com/parley-chatops/parley/actions/alertmanager"
	"github.com/parley-chatops/parley/actions/evaluation"
	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/actions/loki"
	"github.com/parley-chatops/parley/actions/prometheus"
	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/incident"
	"github.com/parley-chatops/parley/internal/pipeline"
)

// Specs returns the built-in actions' specs, a new slice on every call.
func Specs() []action.Spec {
	return slices.Concat(
		pipeline.Specs(),
		prometheus.Specs(),
		loki.Specs(),
		kubernetes.Specs(),
		alertmanager.Specs(),
		evaluation.Specs(),
		incident.Specs(),
	)
}
