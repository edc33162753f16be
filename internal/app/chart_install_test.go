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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/pipeline"
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
// RBAC, changes only where the chart lets it, with impersonation acts as
// the chat user with the RBAC the chart generated for them, and with the
// example actions as actions.files loads them and plans their Job as the
// chart's ServiceAccount (installActions).
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

	installActions(t, c, helm, dir)
	t.Logf("chart install test: 6 installs and three Parley sessions on the control plane in %s", time.Since(testStart).Round(time.Millisecond))
}

// installActions installs a release with the example actions of
// examples/actions as actions.files (their Job namespace in
// rbac.jobNamespaces, cdn.purge's token from a Secret through
// actions.secretEnv), and runs Parley as the chart's ServiceAccount with
// the rendered configuration and the files read back from the ConfigMap
// the Deployment mounts: `config validate` loads them, and in chat the
// Job action's plan is the API server's dry run of the Job, as the
// ServiceAccount, in the Job namespace.
func installActions(t *testing.T, c *kubetest.Cluster, helm, dir string) {
	t.Helper()
	const examples = "../../examples/actions"
	jobNS := "ops" // the namespace emails-drain.yaml names
	c.CreateNamespace(t, jobNS)
	relNS := c.NewNamespace(t, "chart-actions")
	// The team's Secret, as it would be created beside the release; the
	// value is built from parts so that no token-shaped literal is in
	// the repository.
	token := strings.Join([]string{"cdn", "test", "4b1d9e"}, "-")
	if _, err := c.AdminClient().CoreV1().Secrets(relNS).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "parley-actions"}, StringData: map[string]string{"cdn-token": token},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(dir, "actions.yaml")
	writeFile(t, values, `
rbac:
  jobNamespaces: [ops]
actions:
  secretEnv:
    - {name: CDN_TOKEN, secretName: parley-actions, key: cdn-token}
policy: |
  groups:
    sre: [console:alice]
  rules:
    - name: anyone may read
      actions: [help, kubernetes.status, oncall.who]
      effect: allow
    - name: sre purges and drains after their own confirmation
      subjects: [group:sre]
      actions: [cdn.purge, emails.drain]
      effect: confirm
      approvers: [requester]
  default: deny
`)
	args := []string{"-f", values}
	files, err := filepath.Glob(filepath.Join(examples, "*.yaml"))
	if err != nil || len(files) != 4 {
		t.Fatalf("examples: %v (%v)", files, err)
	}
	for _, f := range files {
		args = append(args, "--set-file", "actions.files."+strings.ReplaceAll(filepath.Base(f), ".", `\.`)+"="+f)
	}
	in := install(t, c, helm, "parley", relNS, args...)
	if in.kinds["ConfigMap"] != 2 || in.kinds["Role"] != 1 || in.kinds["RoleBinding"] != 1 {
		t.Errorf("install with actions: %v, want the actions ConfigMap and the Jobs Role and binding", in.kinds)
	}
	sa := "system:serviceaccount:" + relNS + ":parley"
	checkAccess(t, c, sa, []access{
		{jobNS, "batch", "jobs", "", "create", true},
		{jobNS, "batch", "jobs", "", "get", true},
		{jobNS, "batch", "jobs", "", "delete", true},
		{jobNS, "", "pods", "", "list", true},
		{jobNS, "", "pods", "log", "get", true},
		{jobNS, "", "pods", "", "create", false},
		{jobNS, "", "secrets", "", "get", false},
		{relNS, "batch", "jobs", "", "create", false}, // Jobs only where the chart says
	})

	cfg := parleyAs(t, c, relNS, dir)
	cl := newCLI(t)
	// The container's CDN_TOKEN, resolved as the kubelet does: the
	// applied Deployment's secretKeyRef, read from the Secret.
	d, err := c.AdminClient().AppsV1().Deployments(relNS).Get(context.Background(), "parley", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if ref := e.ValueFrom; e.Name == "CDN_TOKEN" && ref != nil && ref.SecretKeyRef != nil {
			s, err := c.AdminClient().CoreV1().Secrets(relNS).Get(context.Background(), ref.SecretKeyRef.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cl.env["CDN_TOKEN"] = string(s.Data[ref.SecretKeyRef.Key])
		}
	}
	if cl.env["CDN_TOKEN"] != token {
		t.Fatalf("the Deployment does not get CDN_TOKEN from the Secret: %+v", d.Spec.Template.Spec.Containers[0].Env)
	}
	out, _ := cl.must("config", "validate", "--config", cfg)
	if !strings.Contains(out, ": ok") || !strings.Contains(out, "actions: 3 user-defined actions in ") {
		t.Errorf("config validate with the chart's actions:\n%s", out)
	}

	// Parley built from that configuration, as serve builds it: the
	// actions are in its registry, and asking for the Job action through
	// the pipeline (a "run" click: the same validation, policy and
	// confirmation as a typed request) plans it with the API server's
	// dry run of the Job, as the ServiceAccount, in the Job namespace.
	loaded, err := config.Load(cfg, func(k string) string { return cl.env[k] })
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	p, err := Build(context.Background(), Options{Config: loaded, Getenv: func(k string) string { return cl.env[k] }}, rec)
	if err != nil {
		t.Fatalf("Build with the chart's configuration and actions: %v", err)
	}
	defer p.Close(context.Background())
	for _, name := range []string{"cdn.purge", "emails.drain", "oncall.who"} {
		if _, ok := p.Actions.Get(name); !ok {
			t.Errorf("the registry lacks %s", name)
		}
	}
	seen := 0
	ask := func(event, name string, params map[string]any) string {
		p.Pipeline.Handle(context.Background(), chat.Message{
			Platform: chat.Console, Channel: "ops", Thread: "ops", User: "alice", EventID: event, Time: time.Now(),
			Action: &chat.ButtonClick{Action: "run", Value: encodeSuggestion(t, pipeline.Suggestion{Action: name, Params: params})},
		})
		got, n := rec.since(seen)
		seen = n
		return got
	}
	got := ask("drain-1", "emails.drain", map[string]any{"queue": "emails"})
	for _, want := range []string{
		"start Job " + jobNS + "/emails-drain-",
		"(emails-drain-job.yaml, image registry.example.com/ops/queue-tools:2.3.1) with PARLEY_PARAM_QUEUE=emails PARLEY_PARAM_BATCH=500",
		"and wait up to 10m for it",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the Job action's confirmation: no %q in:\n%s", want, got)
		}
	}
	got = ask("purge-1", "cdn.purge", map[string]any{"site": "shop"})
	if want := "POST https://cdn.internal.example.com/api/v2/purge/shop, Authorization: Bearer <secret>"; !strings.Contains(got, want) || strings.Contains(got, token) {
		t.Errorf("the HTTP action's confirmation: want %q and no token in:\n%s", want, got)
	}
	jobs, err := c.AdminClient().BatchV1().Jobs(jobNS).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("planning created Jobs in %s: %d (%v)", jobNS, len(jobs.Items), err)
	}

	// The dry run is the ServiceAccount's: without the Jobs Role the API
	// server refuses it before anyone is asked to confirm.
	if err := c.AdminClient().RbacV1().RoleBindings(jobNS).Delete(context.Background(), "parley-"+relNS+"-jobs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkAccess(t, c, sa, []access{{jobNS, "batch", "jobs", "", "create", false}})
	got = ask("drain-2", "emails.drain", map[string]any{"queue": "webhooks"})
	if want := `User "` + sa + `" cannot create resource "jobs" in API group "batch" in the namespace "` + jobNS + `"`; !strings.Contains(got, want) {
		t.Errorf("without the Jobs Role: no %q in:\n%s", want, got)
	}
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
	// The user-defined actions: the files of the ConfigMap the
	// Deployment mounts at actions_dir, as its volume holds them.
	if actionsDir, ok := cfg["actions_dir"].(string); ok {
		local := filepath.Join(dir, ns+".actions")
		writeActionFiles(t, c, ns, actionsDir, local)
		cfg["actions_dir"] = local
	}
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

// writeActionFiles writes into local the files of the ConfigMap that the
// release's Deployment in ns mounts at mountPath.
func writeActionFiles(t *testing.T, c *kubetest.Cluster, ns, mountPath, local string) {
	t.Helper()
	ctx := context.Background()
	d, err := c.AdminClient().AppsV1().Deployments(ns).Get(ctx, "parley", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	volume := ""
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.MountPath == mountPath {
			volume = m.Name
		}
	}
	cmName := ""
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	if cmName == "" {
		t.Fatalf("actions_dir is %s, but the Deployment mounts no ConfigMap there", mountPath)
	}
	cm, err := c.AdminClient().CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range cm.Data {
		writeFile(t, filepath.Join(local, name), content)
	}
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
