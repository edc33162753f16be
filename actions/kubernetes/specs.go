package kubernetes

import "github.com/parley-chatops/parley/internal/action"

// Specs are the Kubernetes actions' public contracts, in help order: what
// each is called, its typed parameters, how people ask for it (the offline
// router reads Vocabulary, Examples and the parameters' Words) and what
// help and the LLM tools show. A new Kubernetes action adds its spec here.
func Specs() []action.Spec {
	return []action.Spec{statusSpec(), scaleSpec(), rollbackSpec(), restartSpec(), PodsSpec(), LogsSpec(), ChangesSpec()}
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
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"status": 3, "describe": 3,
			"state": 2.5, "health": 2.5, "healthy": 2.5,
			"version": 2, "versions": 2, "image": 2, "images": 2, "tag": 2, "events": 2, "event": 2,
			"unhealthy": 1.5, "rollout": 1.5, "details": 1.5, "detail": 1.5, "overview": 1.5,
			"replicas": 1.5, "replica": 1.5, "pods": 1.5, "pod": 1.5, "instances": 1.5, "instance": 1.5, "copies": 1.5, "containers": 1,
			"running": 1.5, "ready": 1.5, "available": 1.5, "deployed": 1.5, "alive": 1.5,
			"revision": 1, "down": 1, "deployment": 1, "deploy": 1, "deployments": 1,
			"up": 0.5, "deploying": 0.5, "get": 0.5, "show": 0.5, "check": 0.5, "display": 0.5, "see": 0.5, "list": 0.5,
			"fetch": 0.5, "pull": 0.5, "chk": 0.5,
			"scaled": 0.5, "scaling": 0.5, "restarted": 0.5, "restarting": 0.5, "rolled": 0.5, "reverted": 0.5,
			"bounced": 0.5, "recycled": 0.5, "rollbacks": 0.5, "rollouts": 0.5, "deploys": 0.5,
			"(kubectl|k) (get|describe)":           3,
			"(kubectl|k) rollout (status|history)": 3,
			// is a rollout finished? "is frontend fully rolled out yet", "did the deploy of x finish"
			"(rolled|rolling) out":                          2.5,
			"(" + deployWords + ") ... (" + doneWords + ")": 2.5,
			"(" + doneWords + ") ... (" + deployWords + ")": 2.5,
			// how many pods run? "how many checkout pods are up"
			"how many ... (" + podWords + ")":                                   2.5,
			"(" + podWords + ") (up|ready|available|alive)":                     2.5,
			"(" + podWords + ") (are|is) (up|running|ready|available|alive)":    2.5,
			"how ... (deployment|deploy|deployments|pods|pod|replicas|replica)": 2, // "how's the checkout deploy looking"
			"what is deployed": 3, // what runs now ("what was deployed" is a change: kubernetes.changes)
			"<deployment>":     0.4,
			action.CueNamed:    1, // "checkout prod?": the deployment's state
		}},
	}
}

const (
	deployWords = "deploy|deploys|deployment|deploying|deployed|rollout|release|rollouts|redeploy"
	doneWords   = "done|finished|finish|complete|completed|through|over|landed|succeeded|succeed|yet|progress|stuck|progressing|live|successful|fail|failed|go|went"
	podWords    = "pods|pod|replicas|replica|instances|instance|copies|containers"
)

func scaleSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesScale, Kind: action.Mutating,
		Description: "Set a Deployment's replica count.",
		Params: []action.Param{deploymentParam(true), namespaceParam(true),
			{Name: "replicas", Type: action.Int, Required: true, Min: intp(0), Max: intp(1000), Description: "desired replica count",
				Words: []string{"replicas", "replica", "pods", "pod", "instances", "instance", "copies", "containers"}}},
		Examples: []action.Example{
			{Text: "scale checkout to 5 in prod", Params: map[string]any{"deployment": "checkout", "namespace": "prod", "replicas": 5}},
			{Text: "kubectl scale deploy/auth --replicas=3 -n staging", Params: map[string]any{"deployment": "auth", "namespace": "staging", "replicas": 3}},
		},
		// "bump frontend to 6 pods", "we need twelve checkout pods": a
		// verb of setting or wanting with a replica count is a scale too
		Vocabulary: action.Vocabulary{Verbs: []string{"scale", "rescale", "resize", "upscale", "downscale"}},
	}
}

func rollbackSpec() action.Spec {
	return action.Spec{
		Name: action.KubernetesRollback, Kind: action.Mutating,
		Description: "Roll a Deployment back to its previous revision, or to a named revision (kubectl rollout undo).",
		Params: []action.Param{deploymentParam(true), namespaceParam(true),
			{Name: "revision", Type: action.Int, Min: intp(1), Description: "revision to roll back to; omitted means the previous one",
				Words: []string{"revision", "rev", "r", "v", "version", "generation", "to-revision", "#"}}},
		Examples: []action.Example{
			{Text: "roll back payments in prod", Params: map[string]any{"deployment": "payments", "namespace": "prod"}},
			{Text: "rollback checkout to revision 3 in staging", Params: map[string]any{"deployment": "checkout", "namespace": "staging", "revision": 3}},
		},
		Vocabulary: action.Vocabulary{
			Verbs: []string{"rollback", "roll-back", "roll back", "roll ... back", "revert", "undo", "downgrade", "rb", "rev back"},
			// "return x to the previous release", "put x back to the prior version"
			Cues: map[string]float64{
				"(previous|prior|earlier|last|old|older|good|known|stable|working) (version|release|build|revision|rollout|image|deployment|deploy)": 2.5,
			},
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
		Vocabulary: action.Vocabulary{Verbs: []string{"restart", "re-start", "bounce", "recycle", "reboot", "respawn", "redeploy",
			"kick", "cycle", "roll ... pod|pods"}},
	}
}
