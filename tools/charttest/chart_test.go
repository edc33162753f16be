package charttest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// TestManifestsDecodeStrictly renders every scenario and checks what holds
// for all of them: typed objects only, no Secret, the release namespace,
// the common labels.
func TestManifestsDecodeStrictly(t *testing.T) {
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true}
	for _, f := range valuesFiles {
		t.Run(name(f), func(t *testing.T) {
			r := mustRender(t, []string{f})
			if len(r.objects) < 5 {
				t.Fatalf("only %d objects rendered", len(r.objects))
			}
			seen := map[string]bool{}
			for _, o := range r.objects {
				id := o.kind + "/" + o.meta.GetNamespace() + "/" + o.meta.GetName()
				if seen[id] {
					t.Errorf("%s rendered twice", id)
				}
				seen[id] = true
				if o.kind == "Secret" {
					t.Errorf("%s: the chart must never render a Secret", o.source)
				}
				if o.kind == "Pod" {
					t.Errorf("%s: a bare Pod outside the helm test hook", o.source)
				}
				if clusterScoped[o.kind] {
					if o.meta.GetNamespace() != "" {
						t.Errorf("%s: cluster-scoped %s has a namespace", o.source, o.kind)
					}
				} else if o.meta.GetNamespace() == "" {
					t.Errorf("%s: %s %s has no namespace", o.source, o.kind, o.meta.GetName())
				}
				l := o.meta.GetLabels()
				if l["app.kubernetes.io/name"] != "parley" || l["app.kubernetes.io/instance"] != releaseName || l["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s: %s %s lacks the common labels: %v", o.source, o.kind, o.meta.GetName(), l)
				}
			}
			for _, want := range []string{"Deployment", "Service", "ServiceAccount", "ConfigMap", "ClusterRole"} {
				found := false
				for _, o := range r.objects {
					found = found || o.kind == want
				}
				if !found {
					t.Errorf("no %s rendered", want)
				}
			}
		})
	}
}

func TestDeploymentIsHardened(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(name(f), func(t *testing.T) {
			r := mustRender(t, []string{f})
			d := one[*appsv1.Deployment](t, r)
			pod := d.Spec.Template.Spec
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext not hardened: %+v", psc)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(pod.Containers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Fatal("container has no securityContext")
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Error("runAsNonRoot is not true")
			case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
				t.Error("runAsUser is not 65532")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("readOnlyRootFilesystem is not true")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("allowPrivilegeEscalation is not false")
			case sc.Privileged != nil && *sc.Privileged:
				t.Error("privileged")
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
				t.Errorf("capabilities are not drop ALL: %+v", sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("seccompProfile is not RuntimeDefault")
			}

			if want := []string{"serve", "--config", "/etc/parley/config.yaml"}; !slices.Equal(c.Args, want) {
				t.Errorf("args = %q, want %q", c.Args, want)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
				t.Errorf("ports = %+v, want http 8080", c.Ports)
			}
			checkProbe := func(what string, p *corev1.Probe, path string) {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s probe is not an HTTP GET", what)
					return
				}
				if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
					t.Errorf("%s probe = %s on %s, want %s on http", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
				}
			}
			checkProbe("liveness", c.LivenessProbe, "/healthz")
			checkProbe("readiness", c.ReadinessProbe, "/readyz")
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("memory request and limit must be set: %+v", c.Resources)
			}
			if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 10 {
				t.Errorf("terminationGracePeriodSeconds = %v", pod.TerminationGracePeriodSeconds)
			}
			if pod.ServiceAccountName != fullname {
				t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
			}

			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m
			}
			if m := mounts["config"]; m.MountPath != "/etc/parley" || !m.ReadOnly {
				t.Errorf("config mount = %+v", m)
			}
			if m := mounts["data"]; m.MountPath != "/var/lib/parley" || m.ReadOnly {
				t.Errorf("data mount = %+v, want writable /var/lib/parley", m)
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				volumes[v.Name] = v
			}
			data := volumes["data"]
			if name(f) == "values-production" || name(f) == "chart-values-production" {
				if data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != fullname {
					t.Errorf("persistence enabled but data is %+v", data.VolumeSource)
				}
				pvc := one[*corev1.PersistentVolumeClaim](t, r)
				if name(f) == "values-production" && (pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast-ssd" || pvc.Spec.Resources.Requests.Storage().String() != "5Gi") {
					t.Errorf("pvc = %+v", pvc.Spec)
				}
			} else if data.EmptyDir == nil {
				t.Errorf("data volume is not an emptyDir: %+v", data.VolumeSource)
			}
			if volumes["config"].ConfigMap == nil || volumes["config"].ConfigMap.Name != fullname {
				t.Errorf("config volume = %+v", volumes["config"])
			}
			if d.Spec.Template.Annotations["checksum/config"] == "" {
				t.Error("no checksum/config annotation")
			}
			sel := d.Spec.Selector.MatchLabels
			for k, v := range sel {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod labels", k, v)
				}
			}
			svc := one[*corev1.Service](t, r)
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("service ports = %+v", svc.Spec.Ports)
			}
			if !mapsEqual(svc.Spec.Selector, sel) {
				t.Errorf("service selector %v != deployment selector %v", svc.Spec.Selector, sel)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestImageAndStrategy(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"})
	d := one[*appsv1.Deployment](t, r)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/parley-chatops/parley:"+appVersion(t) {
		t.Errorf("default image = %q, want the appVersion tag %s", got, appVersion(t))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("one SQLite replica must use Recreate, got %q", d.Spec.Strategy.Type)
	}
	r = mustRender(t, []string{"testdata/values-production.yaml"}, "image.digest=sha256:"+strings.Repeat("ab", 32))
	if got := one[*appsv1.Deployment](t, r).Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/parley-chatops/parley@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("digest image = %q", got)
	}
	r = mustRender(t, []string{"testdata/values-multi-replica.yaml"})
	d = one[*appsv1.Deployment](t, r)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || *d.Spec.Replicas != 3 {
		t.Errorf("multi-replica: strategy %q replicas %d", d.Spec.Strategy.Type, *d.Spec.Replicas)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].LabelSelector == nil || tsc[0].LabelSelector.MatchLabels["app.kubernetes.io/instance"] != releaseName {
		t.Errorf("topologySpreadConstraints without the pod's labelSelector: %+v", tsc)
	}
}

func TestConfigChecksumRollsPods(t *testing.T) {
	checksum := func(set ...string) string {
		r := mustRender(t, []string{"testdata/values-production.yaml"}, set...)
		return one[*appsv1.Deployment](t, r).Spec.Template.Annotations["checksum/config"]
	}
	base := checksum()
	if got := checksum("config.trail=false"); got == base {
		t.Error("a config change did not change the checksum")
	}
	if got := checksum("policy=default: deny"); got == base {
		t.Error("a policy change did not change the checksum")
	}
	if got := checksum("resources.requests.cpu=250m"); got != base {
		t.Error("a change outside the ConfigMap changed the checksum")
	}
}

// sentinel is put in every secret name and key; it may only come out as a
// secretKeyRef.
const sentinel = "sentinel-7f3a"

func TestNoSecretValuesRendered(t *testing.T) {
	secretKeys := []string{"slackBotToken", "slackAppToken", "slackSigningSecret", "discordToken", "prometheusToken", "lokiToken", "llmApiKey", "alertmanagerToken"}
	var set []string
	for _, k := range secretKeys {
		set = append(set, fmt.Sprintf("secrets.%s.name=%s-name-%s", k, sentinel, strings.ToLower(k)),
			fmt.Sprintf("secrets.%s.key=%s-key-%s", k, sentinel, strings.ToLower(k)))
	}
	set = append(set,
		"replicas=2", "store.driver=postgres", "leaderElection.enabled=true",
		"store.postgres.dsnSecret.name="+sentinel+"-name-dsn", "store.postgres.dsnSecret.key="+sentinel+"-key-dsn",
		"config.slack.mode=events", "ingress.enabled=true", "ingress.host=parley.example.com", "string:config.discord.application_id=1130000000000000000",
		"config.prometheus.url=http://prometheus:9090", "config.loki.url=http://loki:3100",
		"config.router.mode=llm", "config.router.llm.provider=anthropic", "config.router.llm.model=claude",
		"string:config.incidents.default_channel=slack:C0123456789")
	r := mustRender(t, []string{"testdata/values-default.yaml"}, set...)

	d := one[*appsv1.Deployment](t, r)
	env := map[string]corev1.EnvVar{}
	refs := 0
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
		if strings.Contains(e.Value, sentinel) {
			t.Errorf("env %s has the secret reference as a VALUE", e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if !strings.HasPrefix(ref.Name, sentinel+"-name-") || !strings.HasPrefix(ref.Key, sentinel+"-key-") {
				t.Errorf("env %s: secretKeyRef %s/%s is not the one given", e.Name, ref.Name, ref.Key)
			}
			refs++
		}
	}
	if refs != len(secretKeys)+1 {
		t.Errorf("%d secretKeyRefs, want %d", refs, len(secretKeys)+1)
	}
	for _, want := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN", "PROMETHEUS_BEARER_TOKEN", "LOKI_BEARER_TOKEN", "LLM_API_KEY", "ALERTMANAGER_WEBHOOK_TOKEN", "PARLEY_POSTGRES_DSN"} {
		if e, ok := env[want]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not from a secretKeyRef", want)
		}
	}

	// Outside the Deployment's secretKeyRefs the sentinel appears nowhere:
	// not in the ConfigMap, not in annotations, not in the notes.
	for _, o := range r.objects {
		text := o.raw
		if o.kind == "Deployment" {
			text = stripSecretKeyRefs(t, o.raw)
		}
		if strings.Contains(text, sentinel) {
			t.Errorf("%s: a secret name or key leaked outside a secretKeyRef", o.source)
		}
	}
	if strings.Contains(r.notes, sentinel) {
		t.Error("NOTES.txt shows a secret name or key")
	}

	// The config file refers to every secret by environment variable only.
	cfg := parleyConfig(t, r)
	for path, envName := range map[string]string{
		"slack.bot_token": "SLACK_BOT_TOKEN", "slack.app_token": "SLACK_APP_TOKEN", "slack.signing_secret": "SLACK_SIGNING_SECRET",
		"discord.token": "DISCORD_TOKEN", "prometheus.bearer_token": "PROMETHEUS_BEARER_TOKEN", "loki.bearer_token": "LOKI_BEARER_TOKEN",
		"store.dsn": "PARLEY_POSTGRES_DSN", "router.llm.api_key": "LLM_API_KEY", "incidents.auth.bearer_token": "ALERTMANAGER_WEBHOOK_TOKEN",
	} {
		v, ok := lookup(cfg, path)
		m, isMap := v.(map[string]any)
		if !ok || !isMap || len(m) != 1 || m["env"] != envName {
			t.Errorf("config %s = %v, want {env: %s}", path, v, envName)
		}
	}
}

// stripSecretKeyRefs re-encodes a Deployment without its secretKeyRef
// names and keys.
func stripSecretKeyRefs(t *testing.T, manifest string) string {
	t.Helper()
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(manifest), &d); err != nil {
		t.Fatal(err)
	}
	for i := range d.Spec.Template.Spec.Containers {
		for j := range d.Spec.Template.Spec.Containers[i].Env {
			if vf := d.Spec.Template.Spec.Containers[i].Env[j].ValueFrom; vf != nil && vf.SecretKeyRef != nil {
				vf.SecretKeyRef.Name, vf.SecretKeyRef.Key = "", ""
			}
		}
	}
	out, err := yaml.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Every {env: NAME} in config.yaml must be an env var the pod gets, or
// Parley stops at start-up with "environment variable NAME is empty".
func TestConfigEnvReferencesAreProvided(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(name(f), func(t *testing.T) {
			r := mustRender(t, []string{f})
			env := map[string]bool{}
			for _, e := range one[*appsv1.Deployment](t, r).Spec.Template.Spec.Containers[0].Env {
				env[e.Name] = true
			}
			var walk func(path string, v any)
			walk = func(path string, v any) {
				switch v := v.(type) {
				case map[string]any:
					if n, ok := v["env"].(string); ok && len(v) == 1 {
						if !env[n] {
							t.Errorf("config %s reads $%s, which the pod does not get", path, n)
						}
						return
					}
					for k, c := range v {
						walk(path+"."+k, c)
					}
				case []any:
					for i, c := range v {
						walk(fmt.Sprintf("%s[%d]", path, i), c)
					}
				}
			}
			walk("", parleyConfig(t, r))
		})
	}
}

func TestConfigFile(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(name(f), func(t *testing.T) {
			r := mustRender(t, []string{f})
			cfg := parleyConfig(t, r)
			for path, want := range map[string]any{
				"listen":                "0.0.0.0:8080",
				"database":              "/var/lib/parley/parley.db",
				"policy":                "/etc/parley/policy.yaml",
				"kubernetes.in_cluster": true,
				"log.format":            "json",
			} {
				if got, _ := lookup(cfg, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
			for _, k := range []string{"sandbox", "kubeconfig", "manifests"} {
				if _, ok := lookup(cfg, "kubernetes."+k); ok {
					t.Errorf("kubernetes.%s must not be set in a cluster", k)
				}
			}
			_, hasSlack := cfg["slack"]
			_, hasDiscord := cfg["discord"]
			wantSlack := name(f) == "values-production" || name(f) == "values-multi-replica"
			if hasSlack != wantSlack {
				t.Errorf("slack section present=%v, want %v", hasSlack, wantSlack)
			}
			if hasDiscord != (name(f) == "values-discord-only") {
				t.Errorf("discord section present=%v", hasDiscord)
			}
			_, hasStore := cfg["store"]
			_, hasLE := cfg["leader_election"]
			if multi := name(f) == "values-multi-replica"; hasStore != multi || hasLE != multi {
				t.Errorf("store present=%v leader_election present=%v, want both %v", hasStore, hasLE, multi)
			}

			var pol map[string]any
			if err := yaml.Unmarshal([]byte(configMap(t, r).Data["policy.yaml"]), &pol); err != nil {
				t.Fatalf("policy.yaml is not YAML: %v", err)
			}
			if pol["default"] != "deny" || pol["rules"] == nil {
				t.Errorf("policy has no rules or does not default to deny: %v", pol)
			}
		})
	}

	r := mustRender(t, []string{"testdata/values-production.yaml"})
	cfg := parleyConfig(t, r)
	if v, _ := lookup(cfg, "kubernetes.impersonate"); v == nil {
		t.Error("impersonation enabled but config has no kubernetes.impersonate")
	}
	if v, _ := lookup(cfg, "loki.push_audit"); v != true {
		t.Error("loki settings were not passed through")
	}
	if v, _ := lookup(cfg, "kubernetes.namespaces"); fmt.Sprint(v) != "[prod staging]" {
		t.Errorf("kubernetes.namespaces = %v", v)
	}
	r = mustRender(t, []string{"testdata/values-multi-replica.yaml"})
	cfg = parleyConfig(t, r)
	if v, _ := lookup(cfg, "leader_election.lease_name"); v != fullname {
		t.Errorf("leader_election.lease_name = %v", v)
	}
	if v, _ := lookup(cfg, "store.driver"); v != "postgres" {
		t.Errorf("store.driver = %v", v)
	}
}

// rbacRule is a rule with where it is granted.
type rbacRule struct {
	kind, namespace, name string
	rbacv1.PolicyRule
}

func rules(r *rendered) []rbacRule {
	var out []rbacRule
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		for _, p := range cr.Rules {
			out = append(out, rbacRule{"ClusterRole", "", cr.Name, p})
		}
	}
	for _, ro := range all[*rbacv1.Role](r) {
		for _, p := range ro.Rules {
			out = append(out, rbacRule{"Role", ro.Namespace, ro.Name, p})
		}
	}
	return out
}

func TestRBACLeastPrivilege(t *testing.T) {
	readVerbs := []string{"get", "list", "watch"}
	cases := []struct {
		file        string
		write       []string // namespaces with write roles
		jobs        []string // namespaces with job roles
		impersonate bool
		leases      bool
	}{
		{"testdata/values-default.yaml", nil, nil, false, false},
		{"testdata/values-production.yaml", []string{"prod", "staging"}, nil, true, false},
		{"testdata/values-multi-replica.yaml", []string{"staging"}, nil, false, true},
		{"testdata/values-discord-only.yaml", nil, nil, false, false},
		{"testdata/values-impersonation.yaml", []string{"team-a"}, []string{"parley-jobs"}, true, false},
		{"testdata/values-actions.yaml", nil, []string{"ops"}, false, false},
		{chartDir + "/values-production.yaml", nil, nil, false, false},
	}
	for _, tc := range cases {
		t.Run(name(tc.file), func(t *testing.T) {
			r := mustRender(t, []string{tc.file})
			var writeNS, jobNS []string
			sawImpersonate, sawLeases := false, false
			for _, ru := range rules(r) {
				for _, v := range append(append([]string{}, ru.Verbs...), append(ru.Resources, ru.APIGroups...)...) {
					if v == "*" {
						t.Errorf("%s %s: wildcard in %+v", ru.kind, ru.name, ru.PolicyRule)
					}
				}
				if len(ru.NonResourceURLs) > 0 {
					t.Errorf("%s %s: non-resource URLs", ru.kind, ru.name)
				}
				var writes []string
				for _, v := range ru.Verbs {
					if !slices.Contains(readVerbs, v) {
						writes = append(writes, v)
					}
				}
				for _, res := range ru.Resources {
					switch res {
					case "secrets", "configmaps", "namespaces", "nodes", "clusterroles", "roles", "rolebindings", "clusterrolebindings":
						t.Errorf("%s %s grants access to %s", ru.kind, ru.name, res)
					}
				}
				if len(writes) == 0 {
					continue
				}
				switch {
				case slices.Equal(writes, []string{"impersonate"}):
					sawImpersonate = true
					if ru.kind != "ClusterRole" || len(ru.ResourceNames) == 0 {
						t.Errorf("impersonation not restricted to named identities: %s %s %+v", ru.kind, ru.name, ru.PolicyRule)
					}
				case ru.kind == "Role" && slices.Equal(ru.APIGroups, []string{"coordination.k8s.io"}) && slices.Equal(ru.Resources, []string{"leases"}):
					sawLeases = true
					if ru.namespace != namespace {
						t.Errorf("lease role in %s, want the release namespace", ru.namespace)
					}
					if !slices.Equal(ru.Verbs, []string{"create"}) && !slices.Equal(ru.ResourceNames, []string{fullname}) {
						t.Errorf("lease rule %v is not restricted to the lease %s", ru.Verbs, fullname)
					}
				case ru.kind == "Role" && slices.Equal(ru.APIGroups, []string{"batch"}):
					if !slices.Equal(ru.Resources, []string{"jobs"}) || !slices.Equal(writes, []string{"create", "delete"}) {
						t.Errorf("job rule in %s: %+v", ru.namespace, ru.PolicyRule)
					}
					jobNS = append(jobNS, ru.namespace)
				case ru.kind == "Role" && slices.Equal(ru.APIGroups, []string{"apps"}):
					for _, res := range ru.Resources {
						if res != "deployments" && res != "deployments/scale" {
							t.Errorf("write on %s in %s", res, ru.namespace)
						}
					}
					for _, w := range writes {
						if w != "patch" && w != "update" {
							t.Errorf("write verb %s in %s", w, ru.namespace)
						}
					}
					if !slices.Contains(writeNS, ru.namespace) {
						writeNS = append(writeNS, ru.namespace)
					}
				default:
					t.Errorf("unexpected write rule: %s %s/%s %+v", ru.kind, ru.namespace, ru.name, ru.PolicyRule)
				}
			}
			slices.Sort(writeNS)
			if !slices.Equal(writeNS, tc.write) {
				t.Errorf("write roles in %v, want exactly %v", writeNS, tc.write)
			}
			if !slices.Equal(jobNS, tc.jobs) {
				t.Errorf("job roles in %v, want exactly %v", jobNS, tc.jobs)
			}
			if sawImpersonate != tc.impersonate {
				t.Errorf("impersonate granted=%v, want %v", sawImpersonate, tc.impersonate)
			}
			if sawLeases != tc.leases {
				t.Errorf("leases granted=%v, want %v", sawLeases, tc.leases)
			}
			checkBindings(t, r, tc.impersonate)
		})
	}
}

// The reads the actions need, in the namespaces they may read: status
// (deployments, replicasets, pods, events), pod logs, recent changes
// (events.k8s.io), and nothing cluster-scoped.
func TestReadRoleCoversTheActions(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"})
	var read *rbacv1.ClusterRole
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		if cr.Name == scoped+"-read" {
			read = cr
		}
	}
	if read == nil {
		t.Fatalf("no ClusterRole %s-read", scoped)
	}
	allows := func(group, resource, verb string) bool {
		for _, ru := range read.Rules {
			if slices.Contains(ru.APIGroups, group) && slices.Contains(ru.Resources, resource) && slices.Contains(ru.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, need := range [][3]string{
		{"apps", "deployments", "get"}, {"apps", "deployments", "list"}, {"apps", "replicasets", "list"},
		{"", "pods", "get"}, {"", "pods", "list"}, {"", "pods", "watch"}, {"", "pods/log", "get"},
		{"", "events", "list"}, {"", "events", "watch"}, {"events.k8s.io", "events", "list"}, {"events.k8s.io", "events", "watch"},
	} {
		if !allows(need[0], need[1], need[2]) {
			t.Errorf("the read role does not allow %s %s/%s", need[2], need[0], need[1])
		}
	}
}

// checkBindings: every binding refers to a role this chart rendered, every
// rendered role is bound (no unused Role), and the subjects are Parley's
// ServiceAccount or, with impersonation, identities it impersonates. With
// impersonation the ServiceAccount itself is bound to no write role: its
// writes would bypass the users' RBAC.
func checkBindings(t *testing.T, r *rendered, impersonation bool) {
	t.Helper()
	roles := map[string]bool{}
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		roles["ClusterRole/"+cr.Name] = true
	}
	for _, ro := range all[*rbacv1.Role](r) {
		roles["Role/"+ro.Namespace+"/"+ro.Name] = true
	}
	bound := map[string]bool{}
	cfg := parleyConfig(t, r)
	imp, _ := lookup(cfg, "kubernetes.impersonate")
	users, groups := map[string]bool{}, map[string]bool{}
	if m, ok := imp.(map[string]any); ok {
		for _, id := range m {
			idm := id.(map[string]any)
			users[idm["user"].(string)] = true
			gs, _ := idm["groups"].([]any)
			for _, g := range gs {
				groups[g.(string)] = true
			}
		}
	}
	checkSubjects := func(what, role string, subjects []rbacv1.Subject) {
		if len(subjects) == 0 {
			t.Errorf("%s binds nobody", what)
		}
		for _, s := range subjects {
			switch {
			case s.Kind == "ServiceAccount" && s.Name == fullname && s.Namespace == namespace:
				if impersonation && (strings.HasSuffix(role, "-write") || strings.HasSuffix(role, "-jobs")) {
					t.Errorf("%s binds the ServiceAccount to %s although Parley acts as the impersonated users", what, role)
				}
			case impersonation && s.Kind == "User" && users[s.Name] && s.APIGroup == rbacv1.GroupName:
			case impersonation && s.Kind == "Group" && groups[s.Name] && s.APIGroup == rbacv1.GroupName:
			default:
				t.Errorf("%s binds %+v", what, s)
			}
		}
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
		key := "ClusterRole/" + b.RoleRef.Name
		if b.RoleRef.Kind != "ClusterRole" || !roles[key] {
			t.Errorf("ClusterRoleBinding %s refers to %+v", b.Name, b.RoleRef)
		}
		bound[key] = true
		checkSubjects("ClusterRoleBinding "+b.Name, b.RoleRef.Name, b.Subjects)
	}
	for _, b := range all[*rbacv1.RoleBinding](r) {
		key := b.RoleRef.Kind + "/" + b.Namespace + "/" + b.RoleRef.Name
		if b.RoleRef.Kind == "ClusterRole" {
			key = "ClusterRole/" + b.RoleRef.Name
		}
		if !roles[key] {
			t.Errorf("RoleBinding %s/%s refers to %+v", b.Namespace, b.Name, b.RoleRef)
		}
		bound[key] = true
		checkSubjects("RoleBinding "+b.Namespace+"/"+b.Name, b.RoleRef.Name, b.Subjects)
	}
	for role := range roles {
		if !bound[role] {
			t.Errorf("%s is rendered but bound to nobody", role)
		}
	}
}

// Impersonation: the chat users' identities get the reads and, for the
// named group, the writes; Parley's ServiceAccount gets only its own reads
// and the right to impersonate exactly them.
func TestImpersonationRBAC(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-impersonation.yaml"})
	subjectsOf := func(role string) map[string][]string {
		out := map[string][]string{}
		for _, b := range all[*rbacv1.RoleBinding](r) {
			if b.RoleRef.Name == role {
				for _, s := range b.Subjects {
					out[b.Namespace] = append(out[b.Namespace], s.Kind+":"+s.Name)
				}
			}
		}
		return out
	}
	read := subjectsOf(scoped + "-read")
	want := []string{"ServiceAccount:" + fullname, "User:alice@example.com", "User:bob@example.com", "Group:developers", "Group:sre"}
	for _, ns := range []string{"team-a", "team-b"} {
		if !slices.Equal(read[ns], want) {
			t.Errorf("read in %s bound to %v, want %v", ns, read[ns], want)
		}
	}
	if write := subjectsOf(scoped + "-write"); len(write) != 1 || !slices.Equal(write["team-a"], []string{"Group:sre"}) {
		t.Errorf("write bound to %v, want only Group:sre in team-a", write)
	}
	// Job actions run as the chat user too: the Jobs Role goes to the
	// same writers, not to the ServiceAccount.
	if jobs := subjectsOf(scoped + "-jobs"); len(jobs) != 1 || !slices.Equal(jobs["parley-jobs"], []string{"Group:sre"}) {
		t.Errorf("jobs bound to %v, want only Group:sre in parley-jobs", jobs)
	}
	if len(all[*rbacv1.ClusterRoleBinding](r)) != 1 {
		t.Errorf("cluster-wide bindings: %d, want only the impersonation one", len(all[*rbacv1.ClusterRoleBinding](r)))
	}
	// Without grantRead the identities' reads are the operator's business.
	r = mustRender(t, []string{"testdata/values-impersonation.yaml"}, "kubernetes.impersonation.grantRead=false")
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if b.RoleRef.Name == scoped+"-read" && len(b.Subjects) != 1 {
			t.Errorf("grantRead=false still binds %v", b.Subjects)
		}
	}
}

// The same release name in two namespaces: nothing collides.
func TestTwoReleasesSameName(t *testing.T) {
	ids := func(ns string) map[string]bool {
		r, err := renderIn(t, ns, monitoringAPI, []string{"testdata/values-impersonation.yaml"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, o := range r.objects {
			out[o.kind+"/"+o.meta.GetNamespace()+"/"+o.meta.GetName()] = true
		}
		return out
	}
	a, b := ids("parley-a"), ids("parley-b")
	for id := range a {
		if b[id] {
			t.Errorf("both releases render %s", id)
		}
	}
}

func TestAppVersionIsARelease(t *testing.T) {
	v := appVersion(t)
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`).MatchString(v) {
		t.Errorf("Chart.yaml appVersion %q is not a release version: the default image tag would not exist", v)
	}
}

// appVersion reads the chart's appVersion.
func appVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(chartDir + "/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AppVersion
}

func TestImpersonationNamesAreExact(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-production.yaml"})
	got := map[string][]string{}
	for _, ru := range rules(r) {
		if slices.Contains(ru.Verbs, "impersonate") {
			for _, res := range ru.Resources {
				got[res] = append(got[res], ru.ResourceNames...)
			}
		}
	}
	if !slices.Equal(got["users"], []string{"alice@example.com", "bob@example.com"}) || !slices.Equal(got["groups"], []string{"oncall", "sre"}) {
		t.Errorf("impersonation names = %v", got)
	}
	if len(got) != 2 {
		t.Errorf("impersonation on %v, want users and groups only", got)
	}
}

func TestReadScope(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-multi-replica.yaml"})
	var readNS []string
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == scoped+"-read" {
			readNS = append(readNS, b.Namespace)
		}
	}
	slices.Sort(readNS)
	if !slices.Equal(readNS, []string{"prod", "staging"}) {
		t.Errorf("read bound in %v, want [prod staging]", readNS)
	}
	if n := len(all[*rbacv1.ClusterRoleBinding](r)); n != 0 {
		t.Errorf("rbac.readNamespaces set, but %d ClusterRoleBindings: Parley must need no cluster-wide right", n)
	}
	// Parley reads exactly those namespaces, one by one: without this, it
	// would list deployments cluster-wide, which these bindings forbid.
	if v, _ := lookup(parleyConfig(t, r), "kubernetes.namespaces"); fmt.Sprint(v) != "[staging prod]" {
		t.Errorf("kubernetes.namespaces = %v, want rbac.readNamespaces [staging prod]", v)
	}
	// kubernetes.namespaces, when given, wins (within what may be read).
	r = mustRender(t, []string{"testdata/values-multi-replica.yaml"}, "kubernetes.namespaces={prod}")
	if v, _ := lookup(parleyConfig(t, r), "kubernetes.namespaces"); fmt.Sprint(v) != "[prod]" {
		t.Errorf("kubernetes.namespaces = %v, want [prod]", v)
	}
	// Reading everywhere: no list in the config, one ClusterRoleBinding.
	r = mustRender(t, []string{"testdata/values-default.yaml"})
	if v, ok := lookup(parleyConfig(t, r), "kubernetes.namespaces"); ok {
		t.Errorf("kubernetes.namespaces = %v without any namespace list", v)
	}
}

// ServiceMonitor and PrometheusRule only where the prometheus-operator's
// CRDs are served; elsewhere the install goes on without them and NOTES
// says what is missing and how to get it.
func TestMonitoringNeedsTheOperator(t *testing.T) {
	for _, f := range []string{"testdata/values-production.yaml", chartDir + "/values-production.yaml"} {
		with := mustRender(t, []string{f})
		if len(all[*monitoringv1.ServiceMonitor](with)) != 1 || len(all[*monitoringv1.PrometheusRule](with)) != 1 {
			t.Errorf("%s: with the CRDs, the ServiceMonitor and PrometheusRule are missing", name(f))
		}
		if strings.Contains(with.notes, "WARNING: serviceMonitor") {
			t.Errorf("%s: a warning although the CRDs are there:\n%s", name(f), with.notes)
		}
		plain, err := renderOn(t, nil, []string{f})
		if err != nil {
			t.Fatalf("%s on a plain cluster: %v", name(f), err)
		}
		if len(all[*monitoringv1.ServiceMonitor](plain)) != 0 || len(all[*monitoringv1.PrometheusRule](plain)) != 0 {
			t.Errorf("%s: monitoring objects rendered for a cluster without the CRDs", name(f))
		}
		for _, want := range []string{"WARNING: serviceMonitor.enabled=true", "WARNING: prometheusRule.enabled=true", "monitoring.coreos.com/v1", "--api-versions monitoring.coreos.com/v1"} {
			if !strings.Contains(plain.notes, want) {
				t.Errorf("%s: notes lack %q:\n%s", name(f), want, plain.notes)
			}
		}
	}
}

// Slack's Events API needs a public HTTPS endpoint: the Ingress exposes
// only that path.
func TestIngress(t *testing.T) {
	if n := len(all[*networkingv1.Ingress](mustRender(t, []string{"testdata/values-default.yaml"}))); n != 0 {
		t.Errorf("default renders %d Ingresses", n)
	}
	r := mustRender(t, []string{"testdata/values-multi-replica.yaml"})
	in := one[*networkingv1.Ingress](t, r)
	if in.Spec.IngressClassName == nil || *in.Spec.IngressClassName != "nginx" || len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName != "parley-tls" {
		t.Errorf("ingress spec %+v", in.Spec)
	}
	if len(in.Spec.Rules) != 1 || in.Spec.Rules[0].Host != "parley.example.com" {
		t.Fatalf("rules %+v", in.Spec.Rules)
	}
	paths := in.Spec.Rules[0].HTTP.Paths
	if len(paths) != 1 || paths[0].Path != "/slack/events" || *paths[0].PathType != networkingv1.PathTypeExact ||
		paths[0].Backend.Service.Name != fullname || paths[0].Backend.Service.Port.Name != "http" {
		t.Errorf("paths %+v: want only /slack/events to the http port", paths)
	}
	if !strings.Contains(r.notes, "https://parley.example.com/slack/events") {
		t.Errorf("notes do not give the request URL:\n%s", r.notes)
	}
}

func TestPodDisruptionBudgetOnlyWithReplicas(t *testing.T) {
	for _, f := range valuesFiles {
		r := mustRender(t, []string{f})
		pdbs := all[*policyv1.PodDisruptionBudget](r)
		multi := name(f) == "values-multi-replica"
		if (len(pdbs) == 1) != multi || len(pdbs) > 1 {
			t.Errorf("%s: %d PDBs", name(f), len(pdbs))
		}
		if multi && len(pdbs) == 1 {
			if pdbs[0].Spec.MinAvailable == nil || pdbs[0].Spec.MinAvailable.IntValue() != 2 {
				t.Errorf("minAvailable = %v", pdbs[0].Spec.MinAvailable)
			}
			if pdbs[0].Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != releaseName {
				t.Errorf("PDB selector = %v", pdbs[0].Spec.Selector)
			}
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"})
	if n := len(all[*networkingv1.NetworkPolicy](r)); n != 0 {
		t.Errorf("default renders %d NetworkPolicies", n)
	}
	r = mustRender(t, []string{"testdata/values-production.yaml"})
	np := one[*networkingv1.NetworkPolicy](t, r)
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) {
		t.Errorf("policyTypes = %v", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("want one ingress rule, got %d", len(np.Spec.Ingress))
	}
	in := np.Spec.Ingress[0]
	if len(in.Ports) != 1 || in.Ports[0].Port.String() != "http" || len(in.From) == 0 {
		t.Errorf("ingress = %+v, want only the http port from listed peers", in)
	}
	var dns, api, https bool
	for _, e := range np.Spec.Egress {
		if len(e.To) == 0 || len(e.Ports) == 0 {
			t.Errorf("egress rule %+v allows every destination or port", e)
		}
		for _, to := range e.To {
			if to.IPBlock != nil && to.IPBlock.CIDR == "10.0.0.1/32" {
				api = true
			}
			if to.IPBlock != nil && to.IPBlock.CIDR == "0.0.0.0/0" {
				https = len(to.IPBlock.Except) == 3 && len(e.Ports) == 1 && e.Ports[0].Port.IntValue() == 443
			}
		}
		for _, p := range e.Ports {
			dns = dns || p.Port.IntValue() == 53
		}
	}
	if !dns || !api || !https {
		t.Errorf("egress dns=%v api=%v https=%v", dns, api, https)
	}
	// No ingress peers at all means no ingress, not "from anywhere".
	r = mustRender(t, []string{"testdata/values-production.yaml"}, "networkPolicy.ingress.sameNamespace=false", "networkPolicy.ingress.namespaces=null")
	if np := one[*networkingv1.NetworkPolicy](t, r); len(np.Spec.Ingress) != 0 {
		t.Errorf("ingress = %+v, want none", np.Spec.Ingress)
	}
}

func TestNotes(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"})
	for _, want := range []string{"rollout status deployment/" + fullname, "emptyDir", "no chat platform", "change nothing"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("default notes lack %q:\n%s", want, r.notes)
		}
	}
	r = mustRender(t, []string{"testdata/values-production.yaml"})
	if strings.Contains(r.notes, "emptyDir") || !strings.Contains(r.notes, "prod, staging") {
		t.Errorf("production notes:\n%s", r.notes)
	}
}

// TestInstallIsDeterministic: the same values render the same manifests.
func TestInstallIsDeterministic(t *testing.T) {
	sum := func() [32]byte {
		return sha256.Sum256([]byte(mustRender(t, []string{"testdata/values-production.yaml"}).manifestText()))
	}
	if first, second := sum(), sum(); first != second {
		t.Error("two renders of the same values differ")
	}
}

func TestIncidentsBasicAuth(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"},
		"string:config.incidents.default_channel=slack:C0123456789", "config.incidents.auth.basic.user=alertmanager",
		"secrets.alertmanagerPassword.name=parley-am", "secrets.alertmanagerPassword.key=password")
	cfg := parleyConfig(t, r)
	if v, _ := lookup(cfg, "incidents.auth.basic.user"); v != "alertmanager" {
		t.Errorf("incidents.auth.basic.user = %v", v)
	}
	if v, _ := lookup(cfg, "incidents.auth.basic.password.env"); v != "ALERTMANAGER_WEBHOOK_PASSWORD" {
		t.Errorf("incidents.auth.basic.password = %v", v)
	}
	if _, ok := lookup(cfg, "incidents.auth.bearer_token"); ok {
		t.Error("basic auth and a bearer token both set")
	}
}
