package kubernetes

import "github.com/parley-chatops/parley/internal/action"

// Right is one Kubernetes API right Parley's Kubernetes actions or the
// inventory use, for parley doctor to check (a SelfSubjectAccessReview per
// right and namespace) and for operators to grant.
type Right struct {
	Verb        string
	Group       string // API group: "" for the core group, "apps", …
	Resource    string
	Subresource string
	// ClusterScoped rights (namespaces) are checked once, not per
	// namespace.
	ClusterScoped bool
	// Needed are the action names (and "inventory") that use it.
	Needed []string
}

// ByInventory names the inventory in Right.Needed: it lists deployments in
// kubernetes.namespaces, or cluster-wide when none are configured.
const ByInventory = "inventory"

// Access lists the rights the Kubernetes actions and the inventory use,
// as they call the API. An action that calls the API differently must
// change this list with it: parley doctor checks exactly these, in every
// namespace Parley is bound to.
func Access() []Right {
	return []Right{
		{Verb: "get", Group: "apps", Resource: "deployments", Needed: []string{action.KubernetesStatus, action.KubernetesScale, action.KubernetesRollback, action.KubernetesRestart}},
		{Verb: "list", Group: "apps", Resource: "deployments", Needed: []string{action.KubernetesStatus, ByInventory, PodsName, LogsName, ChangesName}},
		{Verb: "list", Group: "apps", Resource: "replicasets", Needed: []string{action.KubernetesStatus, action.KubernetesRollback, PodsName, LogsName, ChangesName}},
		{Verb: "list", Group: "", Resource: "pods", Needed: []string{action.KubernetesStatus, PodsName, LogsName}},
		{Verb: "get", Group: "", Resource: "pods", Subresource: "log", Needed: []string{LogsName}},
		{Verb: "list", Group: "", Resource: "events", Needed: []string{action.KubernetesStatus, ChangesName}},
		{Verb: "list", Group: "autoscaling", Resource: "horizontalpodautoscalers", Needed: []string{action.KubernetesScale}},
		{Verb: "get", Group: "apps", Resource: "deployments", Subresource: "scale", Needed: []string{action.KubernetesScale}},
		{Verb: "update", Group: "apps", Resource: "deployments", Subresource: "scale", Needed: []string{action.KubernetesScale}},
		{Verb: "update", Group: "apps", Resource: "deployments", Needed: []string{action.KubernetesRollback}},
		{Verb: "patch", Group: "apps", Resource: "deployments", Needed: []string{action.KubernetesRestart}},
	}
}
