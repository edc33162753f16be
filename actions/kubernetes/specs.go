package kubernetes

import "github.com/parley-chatops/parley/internal/action"

// Specs are the Kubernetes actions' public contracts, in help order: what
// each is called, its typed parameters, how people ask for it (the offline
// router reads Vocabulary, Examples and the parameters' Words) and what
// help and the LLM tools show. A new Kubernetes action adds its spec here.
func Specs() []action.Spec {
	return []action.Spec{statusSpec(), scaleSpec(), rollbackSpec(), restartSpec()}
}

func deploymentParam(required bool) action.Param {
	return action.Param{Name: "deployment", Type: action.String, Source: action.Deployments, Required: required,
		Description: "Kubernetes Deployment name, e.g. checkout"}
}

func namespaceParam(required bool) action.Param {
	return action.Param{Name: "namespace", Type: action.String, Source: action.Namespaces, Required: required,
		Description: "Kubernetes namespace, e.g. prod; defaults to the channel's bound namespace"}
}

func intp(n int) *int { return &n }

func statusSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesStatus, Kind: action.Read,
		Description: "Show a Deployment's replicas, image, revision, conditions, restarts and recent warning events.",
		Params:      []action.Param{deploymentParam(false), namespaceParam(false)},
		Examples: []action.Example{
			{Text: "status of checkout in prod", Params: map[string]any{"deployment": "checkout", "namespace": "prod"}},
			{Text: "kubectl get deploy/auth -n staging", Params: map[string]any{"deployment": "auth", "namespace": "staging"}},
		},
	}
}

func scaleSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesScale, Kind: action.Mutating,
		Description: "Set a Deployment's replica count.",
		Params: []action.Param{deploymentParam(true), namespaceParam(true),
			{Name: "replicas", Type: action.Int, Required: true, Min: intp(0), Max: intp(1000), Description: "desired replica count"}},
		Examples: []action.Example{
			{Text: "scale checkout to 5 in prod", Params: map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 5}},
			{Text: "kubectl scale deploy/auth --replicas=3 -n staging", Params: map[string]any{"deployment": "auth", "namespace": "staging", "replicas": 3}},
		},
	}
}

func rollbackSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesRollback, Kind: action.Mutating,
		Description: "Roll a Deployment back to its previous revision, or to a named revision (kubectl rollout undo).",
		Params: []action.Param{deploymentParam(true), namespaceParam(true),
			{Name: "revision", Type: action.Int, Min: intp(1), Description: "revision to roll back to; omitted means the previous one"}},
		Examples: []action.Example{
			{Text: "roll back payments in prod", Params: map[string]any{"deployment": "payments", "namespace": "prod"}},
			{Text: "rollback checkout to revision 3 in staging", Params: map[string]any{"deployment": "checkout", "namespace": "staging", "revision": 3}},
		},
	}
}

func restartSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesRestart, Kind: action.Mutating,
		Description: "Restart a Deployment's pods with a rolling restart (kubectl rollout restart).",
		Params:      []action.Param{deploymentParam(true), namespaceParam(true)},
		Examples: []action.Example{
			{Text: "restart checkout in staging", Params: map[string]any{"deployment": "checkout", "namespace": "staging"}},
			{Text: "kubectl rollout restart deploy/auth -n prod", Params: map[string]any{"deployment": "auth", "namespace": "prod"}},
		},
	}
}
