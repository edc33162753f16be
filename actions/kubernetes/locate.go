package kubernetes

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// locate returns the namespace of the deployment a read names. Without a
// namespace, a deployment that exists in exactly one namespace is found
// there and the note says so; one in several namespaces needs the user to
// say which. Reads only: a change never acts on a guessed namespace.
//
// When it had to look, found is the deployment as listed, so the caller
// need not read it again; with a namespace given it is nil.
func (b base) locate(ctx context.Context, c kube.Interface, ns, name string) (_, note string, found *appsv1.Deployment, _ error) {
	if ns != "" {
		return ns, "", nil, nil
	}
	all, err := b.listDeployments(ctx, c, metav1.NamespaceAll, name)
	if err != nil {
		return "", "", nil, err
	}
	switch len(all.items) {
	case 0:
		where := "in any namespace"
		if len(all.unreadable) > 0 {
			where = "in any namespace Parley may read"
		}
		return "", "", nil, fmt.Errorf("%w: no deployment %q %s", action.ErrNotFound, name, where)
	case 1:
		d := &all.items[0]
		return d.Namespace, fmt.Sprintf("_No namespace given; %s exists only in %s._", name, d.Namespace), d, nil
	default:
		return "", "", nil, fmt.Errorf("%w: %s exists in namespaces %s; say which one", action.ErrInvalid, name, strings.Join(namespacesOf(all.items, name), ", "))
	}
}
