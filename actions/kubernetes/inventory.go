package kubernetes

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/intent"
)

// Inventory lists the namespaces that have deployments and the deployments
// in each, as Parley itself sees them (ClientFor with the empty subject).
// It implements intent.InventorySource. Services default to the deployment
// names; other sources (configuration, the evals folder) fill the rest.
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

	deployments, err := inv.listDeployments(ctx, c, metav1.NamespaceAll)
	if err != nil {
		return intent.Inventory{}, fmt.Errorf("kubernetes inventory: %w", err)
	}

	// listDeployments sorts by namespace and name, so the lists come out sorted.
	out := intent.Inventory{Deployments: map[string][]string{}}
	services := map[string]bool{}
	for _, d := range deployments {
		if _, ok := out.Deployments[d.Namespace]; !ok {
			out.Namespaces = append(out.Namespaces, d.Namespace)
		}
		out.Deployments[d.Namespace] = append(out.Deployments[d.Namespace], d.Name)
		services[d.Name] = true
	}
	for s := range services {
		out.Services = append(out.Services, s)
	}
	slices.Sort(out.Services)
	return out, nil
}
