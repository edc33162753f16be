package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// callTimeout bounds each API call a helper makes.
const callTimeout = 30 * time.Second

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// WriteKubeconfig writes cfg (host, CA, bearer token or client
// certificate, impersonation) as a kubeconfig file with one context, mode
// 0600.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateGroups:     cfg.Impersonate.Groups,
	}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubetest: write kubeconfig: %w", err)
	}
	return nil
}

// Kubeconfig writes the admin's kubeconfig into the test's temporary
// directory and returns its path.
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(path, c.admin); err != nil {
		t.Fatal(err)
	}
	return path
}

// CreateNamespace creates the namespace name; one that already exists is
// fine, so tests on a shared cluster may ask for the same one.
func (c *Cluster) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	_, err := c.client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

var nsSeq atomic.Int64

// NewNamespace creates a namespace of its own for the test, named from
// prefix, and deletes it (in the background) when the test ends.
func (c *Cluster) NewNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	ns, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: fmt.Sprintf("%s-%d-", strings.TrimSuffix(prefix, "-"), nsSeq.Add(1)),
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s*: %v", prefix, err)
	}
	t.Cleanup(func() {
		if c.stopped.Load() {
			return
		}
		ctx, cancel := callCtx()
		defer cancel()
		if err := c.client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// ServiceAccountConfig creates the service account ns/name (if missing)
// and returns a config that authenticates with a token the API server
// issued for it (TokenRequest), valid for an hour.
func (c *Cluster) ServiceAccountConfig(t testing.TB, ns, name string) *rest.Config {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	_, err := c.client.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", ns, name, err)
	}
	hour := int64(3600)
	tr, err := c.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for service account %s/%s: %v", ns, name, err)
	}
	return c.configWithToken(tr.Status.Token)
}

// UserSubject, GroupSubject and ServiceAccountSubject name who Grant
// grants to.
func UserSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// GroupSubject is a group for Grant.
func GroupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

// ServiceAccountSubject is a service account for Grant.
func ServiceAccountSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

var grantSeq atomic.Int64

// Grant gives subject the rules in namespace ns (a Role and RoleBinding),
// or cluster-wide for the empty ns (a ClusterRole and ClusterRoleBinding),
// and waits until the API server's authorizer allows the first verb of
// each rule, so the test can use the rights at once. The objects are
// deleted when the test ends.
func (c *Cluster) Grant(t testing.TB, ns string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	if len(rules) == 0 {
		t.Fatal("kubetest: Grant without rules")
	}
	name := fmt.Sprintf("kubetest-grant-%d", grantSeq.Add(1))
	ctx, cancel := callCtx()
	defer cancel()
	rbac := c.client.RbacV1()
	var cleanup func(context.Context) error
	if ns == "" {
		if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create cluster role: %v", err)
		}
		if _, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create cluster role binding: %v", err)
		}
		cleanup = func(ctx context.Context) error {
			return errors.Join(ignoreNotFound(rbac.ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})),
				ignoreNotFound(rbac.ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})))
		}
	} else {
		if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create role: %v", err)
		}
		if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create role binding: %v", err)
		}
		cleanup = func(ctx context.Context) error {
			return errors.Join(ignoreNotFound(rbac.RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})),
				ignoreNotFound(rbac.Roles(ns).Delete(ctx, name, metav1.DeleteOptions{})))
		}
	}
	t.Cleanup(func() {
		if c.stopped.Load() {
			return
		}
		ctx, cancel := callCtx()
		defer cancel()
		if err := cleanup(ctx); err != nil {
			t.Errorf("revoke %s: %v", name, err)
		}
	})

	// RBAC reads bindings through informers: wait until they are seen.
	for _, r := range rules {
		if len(r.Verbs) == 0 || len(r.APIGroups) == 0 || len(r.Resources) == 0 || r.Verbs[0] == "*" || r.Resources[0] == "*" {
			continue
		}
		resource, sub, _ := strings.Cut(r.Resources[0], "/")
		attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: resource, Subresource: sub}
		if len(r.ResourceNames) > 0 {
			attrs.Name = r.ResourceNames[0]
		}
		WaitFor(t, callTimeout, fmt.Sprintf("%s to be allowed to %s %s", subject.Name, r.Verbs[0], r.Resources[0]), func(ctx context.Context) error {
			return c.allowed(ctx, subject, attrs)
		})
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// allowed asks the authorizer (SubjectAccessReview) whether subject may do
// attrs.
func (c *Cluster) allowed(ctx context.Context, subject rbacv1.Subject, attrs *authorizationv1.ResourceAttributes) error {
	spec := authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: attrs}
	switch subject.Kind {
	case rbacv1.UserKind:
		spec.User = subject.Name
	case rbacv1.GroupKind:
		spec.User, spec.Groups = "kubetest-probe", []string{subject.Name}
	case rbacv1.ServiceAccountKind:
		spec.User = "system:serviceaccount:" + subject.Namespace + ":" + subject.Name
		spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + subject.Namespace}
	}
	r, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx,
		&authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if !r.Status.Allowed {
		return fmt.Errorf("not allowed yet: %s", r.Status.Reason)
	}
	return nil
}

// ApplyYAML applies the objects of a multi-document YAML manifest with
// server-side apply as the admin (field manager "kubetest", conflicts
// forced), in order, and returns them as the API server stored them.
// Namespaced objects that name no namespace go to ns.
func (c *Cluster) ApplyYAML(t testing.TB, ns, manifest string) []*unstructured.Unstructured {
	t.Helper()
	out, err := c.apply(ns, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *Cluster) apply(ns, manifest string) ([]*unstructured.Unstructured, error) {
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		return nil, fmt.Errorf("kubetest: apply: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.admin)
	if err != nil {
		return nil, fmt.Errorf("kubetest: apply: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	ctx, cancel := callCtx()
	defer cancel()

	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("kubetest: apply: document %d: %w", i, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document
		}
		gvk := obj.GroupVersionKind()
		where := fmt.Sprintf("kubetest: apply: document %d (%s %s)", i, gvk.Kind, obj.GetName())
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) { // a kind the manifest itself just created
			mapper.Reset()
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(ns)
			}
			ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		got, err := ri.Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: "kubetest", Force: true})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, got)
	}
}

// Logs returns the last part of each component's output, for a test that
// wants to show it on failure.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", p.name, p.out.tail(8000))
	}
	return b.String()
}
