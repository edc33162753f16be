package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/actions/kubernetes"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/kube"
)

// kubernetes checks that the cluster answers, that Parley's own identity
// has every right the Kubernetes actions use (kubernetes.Access) in every
// namespace it is bound to, that it may hold its leader Lease, and that it
// may impersonate the identities the configuration maps chat users to.
// Each right is asked with a SelfSubjectAccessReview: nothing is changed.
func (d *doctor) kubernetes(ctx context.Context, cfg *config.Config, p *Parley) {
	switch {
	case cfg.Kubernetes.Sandbox:
		d.skip("kubernetes", "not configured: the in-memory sandbox cluster (kubernetes.kubeconfig or in_cluster)")
		return
	case p == nil:
		d.skip("kubernetes", "cannot run: Parley did not build (see actions above)")
		return
	}
	c, err := p.Kube("")
	if err != nil {
		d.fail("kubernetes", err, "check kubernetes.kubeconfig / kubernetes.context or in_cluster")
		return
	}
	vctx, cancel := context.WithTimeout(ctx, d.timeout)
	version, err := c.ServerVersion(vctx)
	cancel()
	if err != nil {
		d.fail("kubernetes", err, "check that the API server is reachable from here (kubeconfig server address, NetworkPolicy egress) and that the credentials are valid")
		d.skip("kubernetes rbac", "cannot run: the API server did not answer")
		return
	}
	gitVersion := version.GitVersion
	if gitVersion == "" {
		gitVersion = "version unknown"
	}
	d.pass("kubernetes", "the API server answers ("+gitVersion+")")

	namespaces := boundNamespaces(cfg)
	var missing, granted []string
	for _, r := range kubernetes.Access() {
		where := namespaces
		if r.ClusterScoped || len(where) == 0 {
			where = []string{""}
		}
		if slices.Contains(r.Needed, kubernetes.ByInventory) && len(cfg.Kubernetes.Namespaces) == 0 && !slices.Contains(where, "") {
			// Without kubernetes.namespaces the inventory lists cluster-wide.
			where = append(slices.Clone(where), "")
		}
		for _, ns := range where {
			ok, why, err := d.allowed(ctx, c, authv1.ResourceAttributes{Namespace: ns, Verb: r.Verb, Group: r.Group, Resource: r.Resource, Subresource: r.Subresource})
			right := describeRight(r.Verb, r.Group, r.Resource, r.Subresource, ns)
			switch {
			case err != nil:
				d.fail("kubernetes rbac", err, "Parley must be allowed to create selfsubjectaccessreviews (every authenticated user is, by default)")
				return
			case !ok:
				entry := right + " (for " + strings.Join(r.Needed, ", ") + ")"
				if why != "" {
					entry += ": " + why
				}
				missing = append(missing, entry)
			default:
				granted = append(granted, right)
			}
		}
	}
	scope := "in every namespace"
	if len(namespaces) > 0 {
		scope = "in " + strings.Join(namespaces, ", ")
	}
	if len(missing) > 0 {
		d.fail("kubernetes rbac", fmt.Errorf("Parley lacks %d of the %d rights its actions use %s", len(missing), len(missing)+len(granted), scope),
			"grant them to Parley's identity (the Helm chart's rbac values create them), e.g. a Role with these verbs and resources bound in each namespace",
			missing...)
	} else {
		d.pass("kubernetes rbac", fmt.Sprintf("all %d rights the actions use, %s", len(granted), scope))
	}

	if le := cfg.LeaderElection; le != nil && le.Kubeconfig == "" {
		ns := le.LeaseNamespace
		var lacks []string
		for _, verb := range []string{"get", "create", "update"} {
			ok, _, err := d.allowed(ctx, c, authv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "coordination.k8s.io", Resource: "leases", Name: le.LeaseName})
			if err != nil || !ok {
				lacks = append(lacks, verb)
			}
		}
		if len(lacks) > 0 {
			d.fail("leader election", fmt.Errorf("Parley may not %s Lease %s/%s", strings.Join(lacks, ", "), ns, le.LeaseName),
				"grant get, create and update on leases (coordination.k8s.io) in "+ns+" (the Helm chart does with leaderElection.enabled)")
		} else {
			d.pass("leader election", fmt.Sprintf("Parley may hold Lease %s/%s", ns, le.LeaseName))
		}
	}

	if len(cfg.Kubernetes.Impersonate) > 0 {
		var lacks []string
		subjects := make([]string, 0, len(cfg.Kubernetes.Impersonate))
		for s := range cfg.Kubernetes.Impersonate {
			subjects = append(subjects, s)
		}
		slices.Sort(subjects)
		for _, s := range subjects {
			id := cfg.Kubernetes.Impersonate[s]
			ok, _, err := d.allowed(ctx, c, authv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: id.User})
			if err != nil || !ok {
				lacks = append(lacks, fmt.Sprintf("impersonate user %s (for %s)", id.User, s))
			}
			for _, g := range id.Groups {
				ok, _, err := d.allowed(ctx, c, authv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: g})
				if err != nil || !ok {
					lacks = append(lacks, fmt.Sprintf("impersonate group %s (for %s)", g, s))
				}
			}
		}
		if len(lacks) > 0 {
			d.fail("kubernetes impersonation", fmt.Errorf("Parley may not impersonate %d of the identities kubernetes.impersonate maps to", len(lacks)),
				"grant the impersonate verb on those users and groups to Parley's identity (a ClusterRole with resourceNames)", lacks...)
		} else {
			d.pass("kubernetes impersonation", fmt.Sprintf("Parley may act as the %d mapped identities", len(subjects)))
		}
	}
}

// allowed asks the API server whether Parley's identity may do attrs.
func (d *doctor) allowed(ctx context.Context, c kube.Interface, attrs authv1.ResourceAttributes) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	review, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("access review: %w", err)
	}
	return review.Status.Allowed, review.Status.Reason, nil
}

// boundNamespaces are the namespaces Parley acts in: the channel bindings'
// and kubernetes.namespaces, sorted; none means every namespace.
func boundNamespaces(cfg *config.Config) []string {
	var out []string
	for _, ch := range cfg.Channels {
		if ch.Namespace != "" && !slices.Contains(out, ch.Namespace) {
			out = append(out, ch.Namespace)
		}
	}
	for _, ns := range cfg.Kubernetes.Namespaces {
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

func describeRight(verb, group, resource, sub, ns string) string {
	r := resource
	if group != "" {
		r += "." + group
	}
	if sub != "" {
		r += "/" + sub
	}
	where := "cluster-wide"
	if ns != "" {
		where = "in " + ns
	}
	return verb + " " + r + " " + where
}
