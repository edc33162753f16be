package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/kube"
)

// Inventory lists the namespaces that have deployments and the deployments
// in each, as Parley itself sees them (ClientFor with the empty subject).
// It implements intent.InventorySource. Services default to the deployment
// names; other sources (configuration, the evals folder) fill the rest.
//
// With Options.Namespaces it reads those namespaces one by one, so a
// Parley bound to read only there (RoleBindings, no ClusterRoleBinding)
// needs no cluster-wide right; a namespace it may not read is left out
// and the others still count.
type Inventory struct{ base }

// NewInventory returns the cluster's inventory source.
func NewInventory(o Options) (*Inventory, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &Inventory{base{o}}, nil
}

var _ intent.InventorySource = (*Inventory)(nil)

// Inventory implements intent.InventorySource.
func (inv *Inventory) Inventory(ctx context.Context) (intent.Inventory, error) {
	c, err := inv.o.Clients("")
	if err != nil {
		return intent.Inventory{}, fmt.Errorf("kubernetes inventory: client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, inv.o.Timeout)
	defer cancel()

	list, err := inv.listDeployments(ctx, c, metav1.NamespaceAll, "")
	if err != nil {
		return intent.Inventory{}, fmt.Errorf("kubernetes inventory: %w", err)
	}

	// listDeployments sorts by namespace and name, so the lists come out sorted.
	out := intent.Inventory{Deployments: map[string][]string{}}
	services := map[string]bool{}
	for _, d := range list.items {
		if _, ok := out.Deployments[d.Namespace]; !ok {
			out.Namespaces = append(out.Namespaces, d.Namespace)
		}
		out.Deployments[d.Namespace] = append(out.Deployments[d.Namespace], d.Name)
		services[d.Name] = true
	}
	// A configured namespace without deployments is still a namespace
	// people name ("status in team-b").
	for _, ns := range inv.o.Namespaces {
		if _, ok := out.Deployments[ns]; !ok && list.unreadable[ns] == "" {
			out.Namespaces = append(out.Namespaces, ns)
		}
	}
	slices.Sort(out.Namespaces)
	for s := range services {
		out.Services = append(out.Services, s)
	}
	slices.Sort(out.Services)
	return out, nil
}

// deploymentList is what listDeployments found.
type deploymentList struct {
	items []appsv1.Deployment // sorted by namespace, then name
	// unreadable maps a configured namespace Parley may not list to the
	// API server's reason; the other namespaces are in items.
	unreadable map[string]string
}

// note says which namespaces were left out, or "".
func (l deploymentList) note() string {
	if len(l.unreadable) == 0 {
		return ""
	}
	ns := make([]string, 0, len(l.unreadable))
	for n := range l.unreadable {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return fmt.Sprintf("_Not shown: Parley may not list deployments in %s._", strings.Join(ns, ", "))
}

// listDeployments lists the deployments of ns or, for the empty ns, of
// every namespace Parley reads: each of Options.Namespaces in turn when
// they are configured (no cluster-wide right needed; a namespace it may
// not read is reported in unreadable, and only when it may read none is
// that an error), else one list across all namespaces. A name narrows the
// lists to the deployments of that name (a field selector, so the API
// server sends only those).
func (b base) listDeployments(ctx context.Context, c kube.Interface, ns, name string) (deploymentList, error) {
	var out deploymentList
	var opts metav1.ListOptions
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	if ns == "" && len(b.o.Namespaces) == 0 {
		list, err := c.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, opts)
		if apierrors.IsForbidden(err) {
			return out, fmt.Errorf("%w: Parley may not list deployments in all namespaces (%v); set kubernetes.namespaces to the namespaces it may read, or grant it a cluster-wide read",
				action.ErrForbidden, err)
		}
		if err != nil {
			return out, apiError(err)
		}
		out.items = list.Items
	} else {
		namespaces := []string{ns}
		if ns == "" {
			namespaces = b.o.Namespaces
		}
		var forbidden error
		for _, ns := range namespaces {
			list, err := c.AppsV1().Deployments(ns).List(ctx, opts)
			switch {
			case apierrors.IsForbidden(err) && len(namespaces) > 1:
				if out.unreadable == nil {
					out.unreadable = map[string]string{}
				}
				out.unreadable[ns] = "forbidden"
				forbidden = errors.Join(forbidden, err)
				continue
			case err != nil:
				return deploymentList{}, apiError(err)
			}
			out.items = append(out.items, list.Items...)
		}
		if len(out.unreadable) == len(namespaces) {
			return deploymentList{}, fmt.Errorf("%w: Parley may not list deployments in any of %s: %v",
				action.ErrForbidden, strings.Join(namespaces, ", "), forbidden)
		}
	}
	if name != "" { // a server (or fake) that ignores field selectors
		out.items = slices.DeleteFunc(out.items, func(d appsv1.Deployment) bool { return d.Name != name })
	}
	sort.Slice(out.items, func(i, j int) bool {
		if out.items[i].Namespace != out.items[j].Namespace {
			return out.items[i].Namespace < out.items[j].Namespace
		}
		return out.items[i].Name < out.items[j].Name
	})
	return out, nil
}
