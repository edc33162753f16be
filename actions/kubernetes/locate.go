package kubernetes

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/parley-chatops/parley/internal/action"
)

// locate returns the namespace of the deployment a read names. Without a
// namespace, a deployment that exists in exactly one namespace is found
// there and the note says so; one in several namespaces needs the user to
// say which. Reads only: a change never acts on a guessed namespace.
func (b base) locate(ctx context.Context, c clientset.Interface, ns, name string) (string, string, error) {
	if ns != "" {
		return ns, "", nil
	}
	all, err := b.listDeployments(ctx, c, metav1.NamespaceAll)
	if err != nil {
		return "", "", err
	}
	var found []string
	for _, d := range all.items {
		if d.Name == name {
			found = append(found, d.Namespace)
		}
	}
	switch len(found) {
	case 0:
		where := "in any namespace"
		if len(all.unreadable) > 0 {
			where = "in any namespace Parley may read"
		}
		return "", "", fmt.Errorf("%w: no deployment %q %s", action.ErrNotFound, name, where)
	case 1:
		return found[0], fmt.Sprintf("_No namespace given; %s exists only in %s._", name, found[0]), nil
	default:
		return "", "", fmt.Errorf("%w: %s exists in namespaces %s; say which one", action.ErrInvalid, name, strings.Join(found, ", "))
	}
}
