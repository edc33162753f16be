package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/parley-chatops/parley/internal/testenv/kubetest"
)

// chartDir is the Helm chart, from this package's directory.
const chartDir = "../../charts/parley"

// helmBin finds the helm that scripts/build-helm.sh builds (the version
// tools/charttest pins): $PARLEY_HELM, .cache/bin/helm at the module root,
// or helm on PATH. Missing, the test skips, or fails under
// PARLEY_REQUIRE_INTEGRATION=1.
func helmBin(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("PARLEY_HELM"), filepath.Join("..", "..", ".cache", "bin", "helm")}
	if p, err := exec.LookPath("helm"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); c != "" && err == nil && st.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	if os.Getenv(kubetest.RequireEnv) == "1" {
		t.Fatal("helm not found: build it with scripts/build-helm.sh (or set PARLEY_HELM)")
	}
	t.Skip("helm not found: build it with scripts/build-helm.sh (or set PARLEY_HELM)")
	return ""
}

// helmTemplate renders the chart as `helm template` does for a release in
// ns, on a cluster without the prometheus-operator.
func helmTemplate(t *testing.T, helm, release, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, append([]string{"template", release, chartDir, "--namespace", ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// installed is a chart release applied to the control plane.
type installed struct {
	ns, release string
	kinds       map[string]int
}

// install renders the chart and applies it with server-side apply, as the
// admin (who installs a chart), into ns.
func install(t *testing.T, c *kubetest.Cluster, helm, release, ns string, args ...string) installed {
	t.Helper()
	start := time.Now()
	manifest := helmTemplate(t, helm, release, ns, args...)
	objs := c.ApplyYAML(t, ns, manifest)
	in := installed{ns: ns, release: release, kinds: map[string]int{}}
	for _, o := range objs {
		in.kinds[o.GetKind()]++
	}
	t.Logf("installed %s in %s (%v): %d objects %v in %s", release, ns, args, len(objs), in.kinds, time.Since(start).Round(time.Millisecond))
	return in
}

// The chart installs on a real kube-apiserver + controller-manager (server-
// side apply of what helm renders) with its default values and with
// values-production.yaml, twice under the same release name in two
// namespaces; and Parley, running as the chart's ServiceAccount with the
// configuration the chart installed, answers status with only namespaced
// RBAC, changes only where the chart lets it, and, with impersonation,
// acts as the chat user with the RBAC the chart generated for them.
func TestChartInstallsOnControlPlane(t *testing.T) {
	helm := helmBin(t)
	c := kubetest.Shared(t)
	testStart := time.Now()

	// Default values, and the production values twice: same release name,
	// two namespaces, nothing collides (cluster-scoped names carry the
	// namespace).
	def := install(t, c, helm, "parley", c.NewNamespace(t, "chart-default"))
	if def.kinds["Deployment"] != 1 || def.kinds["ClusterRole"] != 1 || def.kinds["ClusterRoleBinding"] != 1 {
		t.Errorf("default install: %v", def.kinds)
	}
	for i := range 2 {
		prod := install(t, c, helm, "parley", c.NewNamespace(t, fmt.Sprintf("chart-prod%d", i)), "-f", chartDir+"/values-production.yaml")
		if prod.kinds["PersistentVolumeClaim"] != 1 || prod.kinds["ServiceMonitor"] != 0 || prod.kinds["PrometheusRule"] != 0 {
			t.Errorf("production install on a plain cluster: %v", prod.kinds)
		}
	}

	// Namespaced reads: read in team-a and team-b, write in team-a; a
	// hidden namespace Parley may not see.
	teamA, teamB, hidden := "chart-team-a", "chart-team-b", "chart-hidden"
	for _, ns := range []string{teamA, teamB, hidden} {
		c.CreateNamespace(t, ns)
	}
	deploy := func(ns, name string) {
		c.ApplyYAML(t, ns, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: app, image: "shop/%[1]s:1.0.0"}]}
`, name))
	}
	deploy(teamA, "api")
	deploy(teamB, "worker")
	deploy(hidden, "vault")

	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	writeFile(t, values, fmt.Sprintf(`
rbac:
  readNamespaces: [%[1]s, %[2]s]
  writeNamespaces: [%[1]s]
policy: |
  groups:
    sre: [console:alice]
  rules:
    - name: anyone may read
      actions: [help, kubernetes.status]
      effect: allow
    - name: sre changes with their own confirmation
      subjects: [group:sre]
      actions: [kubernetes.scale, kubernetes.rollback, kubernetes.restart]
      effect: confirm
      approvers: [requester]
  default: deny
`, teamA, teamB))
	relNS := c.NewNamespace(t, "chart-parley")
	nsd := install(t, c, helm, "parley", relNS, "-f", values)
	if nsd.kinds["ClusterRoleBinding"] != 0 || nsd.kinds["RoleBinding"] != 3 {
		t.Errorf("namespaced install: %v, want no ClusterRoleBinding and 3 RoleBindings", nsd.kinds)
	}
	sa := "system:serviceaccount:" + relNS + ":parley"
	checkAccess(t, c, sa, []access{
		{teamA, "apps", "deployments", "", "list", true},
		{teamA, "", "pods", "", "watch", true},
		{teamA, "", "pods", "log", "get", true},
		{teamA, "", "events", "", "list", true},
		{teamA, "events.k8s.io", "events", "", "watch", true},
		{teamA, "apps", "replicasets", "", "list", true},
		{teamA, "apps", "deployments", "scale", "update", true},
		{teamB, "apps", "deployments", "", "get", true},
		{teamB, "apps", "deployments", "scale", "update", false},
		{hidden, "apps", "deployments", "", "get", false},
		{"", "apps", "deployments", "", "list", false}, // no cluster-wide list
		{"", "", "namespaces", "", "list", false},
		{teamA, "", "secrets", "", "get", false},
	})

	cfg := parleyAs(t, c, relNS, dir)
	cl := newCLI(t)
	cl.stdin = []byte(strings.Join([]string{
		"alice@ops: status of api in " + teamA,
		"alice@ops: status",
		"alice@ops: status of vault in " + hidden,
		"alice@ops: scale api to 3 in " + teamA,
		"alice@ops: confirm",
		"alice@ops: scale worker to 3 in " + teamB,
	}, "\n") + "\n")
	out, _ := cl.must("chat", "--config", cfg, "--transcript", "-")
	for _, want := range []string{
		"api (" + teamA + "): 0/2 ready", // no kubelet runs the pods
		teamA + "/api: 0/2 ready",
		teamB + "/worker: 0/2 ready",
		// Parley cannot see the hidden namespace, so it cannot even name it.
		`no deployment "vault" in any namespace Parley reads`,
		"Scaled api (" + teamA + ") 2 -> 3",
		`User "` + sa + `" cannot get resource "deployments/scale" in API group "apps" in the namespace "` + teamB + `"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Parley as the chart's ServiceAccount: no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "vault: ") {
		t.Errorf("a deployment of a namespace Parley may not read was listed:\n%s", out)
	}
	d, err := c.AdminClient().AppsV1().Deployments(teamA).Get(context.Background(), "api", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 3 {
		t.Errorf("api replicas after the confirmed scale: %v %v", d, err)
	}

	// Impersonation: the chart binds the reads to the impersonated users
	// and groups, the writes to writeGroups only, and lets the
	// ServiceAccount impersonate exactly them. Parley's policy lets both
	// alice and bob ask; the cluster lets only the sre group change.
	values = filepath.Join(dir, "impersonation.yaml")
	writeFile(t, values, fmt.Sprintf(`
kubernetes:
  impersonation:
    enabled: true
    identities:
      "console:alice": {user: alice@example.com, groups: [sre]}
      "console:bob": {user: bob@example.com, groups: [developers]}
    writeGroups: [sre]
rbac:
  readNamespaces: [%[1]s]
  writeNamespaces: [%[1]s]
policy: |
  groups:
    askers: [console:alice, console:bob, console:carol]
  rules:
    - name: anyone may read
      actions: [help, kubernetes.status]
      effect: allow
    - name: askers may ask for changes
      subjects: [group:askers]
      actions: [kubernetes.scale]
      effect: confirm
      approvers: [requester]
  default: deny
`, teamA))
	impNS := c.NewNamespace(t, "chart-imp")
	install(t, c, helm, "parley", impNS, "-f", values)
	checkAccess(t, c, "system:serviceaccount:"+impNS+":parley", []access{
		{teamA, "apps", "deployments", "scale", "update", false}, // the unused write Role is not bound to it
		{teamA, "apps", "deployments", "", "list", true},         // its own reads, for the inventory
	})
	cfg = parleyAs(t, c, impNS, dir)
	cl = newCLI(t)
	cl.stdin = []byte(strings.Join([]string{
		"bob@ops: status of api in " + teamA,
		"bob@ops: scale api to 4 in " + teamA,
		"alice@ops: scale api to 4 in " + teamA,
		"alice@ops: confirm",
		"carol@ops: scale api to 5 in " + teamA,
	}, "\n") + "\n")
	out, _ = cl.must("chat", "--config", cfg, "--transcript", "-")
	for _, want := range []string{
		"api (" + teamA + "): 0/3 ready",
		`User "bob@example.com" cannot get resource "deployments/scale" in API group "apps" in the namespace "` + teamA + `"`,
		"Scaled api (" + teamA + ") 3 -> 4",
		"no Kubernetes identity is mapped for console:carol",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Parley impersonating: no %q in:\n%s", want, out)
		}
	}
	t.Logf("chart install test: 5 installs and two Parley sessions on the control plane in %s", time.Since(testStart).Round(time.Millisecond))
}

// parleyAs writes the configuration the chart installed in ns (read back
// from the cluster's ConfigMap), pointed at a kubeconfig holding a token of
// the chart's ServiceAccount instead of the pod's mounted one, and the
// database and policy into dir. It returns the config file's path.
func parleyAs(t *testing.T, c *kubetest.Cluster, ns, dir string) string {
	t.Helper()
	cm, err := c.AdminClient().CoreV1().ConfigMaps(ns).Get(context.Background(), "parley", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, ns+".kubeconfig")
	if err := kubetest.WriteKubeconfig(kubeconfig, c.ServiceAccountConfig(t, ns, "parley")); err != nil {
		t.Fatal(err)
	}
	k8s, _ := cfg["kubernetes"].(map[string]any)
	if k8s["in_cluster"] != true {
		t.Fatalf("the chart's config is not in-cluster: %v", k8s)
	}
	delete(k8s, "in_cluster")
	k8s["kubeconfig"] = kubeconfig
	k8s["timeout"] = "30s"
	policy := filepath.Join(dir, ns+".policy.yaml")
	writeFile(t, policy, cm.Data["policy.yaml"])
	cfg["policy"] = policy
	cfg["database"] = filepath.Join(dir, ns+".db")
	delete(cfg, "listen")
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ns+".config.yaml")
	writeFile(t, path, string(b))
	return path
}

// access is one SubjectAccessReview and the answer the chart must give.
type access struct {
	ns, group, resource, sub, verb string
	allowed                        bool
}

// checkAccess asks the API server's authorizer what user may do, waiting
// for the RBAC informers to see the bindings just applied.
func checkAccess(t *testing.T, c *kubetest.Cluster, user string, checks []access) {
	t.Helper()
	ns := strings.Split(user, ":")
	groups := []string{"system:serviceaccounts", "system:authenticated"}
	if len(ns) == 4 {
		groups = append(groups, "system:serviceaccounts:"+ns[2])
	}
	for _, a := range checks {
		kubetest.WaitFor(t, 30*time.Second, fmt.Sprintf("%s %s %s/%s in %q allowed=%v", user, a.verb, a.resource, a.sub, a.ns, a.allowed), func(ctx context.Context) error {
			r, err := c.AdminClient().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: a.ns, Group: a.group, Resource: a.resource, Subresource: a.sub, Verb: a.verb,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if r.Status.Allowed != a.allowed {
				return fmt.Errorf("allowed=%v (%s)", r.Status.Allowed, r.Status.Reason)
			}
			return nil
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
