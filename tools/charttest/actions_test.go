package charttest

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const (
	actionsFile = "testdata/values-actions.yaml"
	actionsDir  = "/etc/parley-actions"
	examplesDir = "../../examples/actions"
)

// actionsConfigMap returns the ConfigMap of the action files.
func actionsConfigMap(t *testing.T, r *rendered) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range all[*corev1.ConfigMap](r) {
		if cm.Name == fullname+"-actions" {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s-actions", fullname)
	return nil
}

// doctorPod returns the helm test hook's pod.
func doctorPod(t *testing.T, r *rendered) *corev1.Pod {
	t.Helper()
	for _, h := range r.hooks {
		if p, ok := h.obj.(*corev1.Pod); ok && p.Name == fullname+"-doctor" {
			return p
		}
	}
	t.Fatalf("no doctor hook pod")
	return nil
}

// actionsMount checks that a pod spec mounts the ConfigMap cm read-only at
// the actions folder in its only container.
func actionsMount(t *testing.T, what string, spec corev1.PodSpec, cm string) {
	t.Helper()
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "actions" {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != cm || len(vol.ConfigMap.Items) != 0 {
		t.Errorf("%s: actions volume = %+v, want the whole ConfigMap %s", what, vol, cm)
	}
	var mount *corev1.VolumeMount
	for i, m := range spec.Containers[0].VolumeMounts {
		if m.Name == "actions" {
			mount = &spec.Containers[0].VolumeMounts[i]
		}
	}
	// A subPath mount would never see an update of the ConfigMap.
	if mount == nil || mount.MountPath != actionsDir || !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("%s: actions mount = %+v, want %s read-only", what, mount, actionsDir)
	}
}

// secretEnvOf returns the container's env vars from secretKeyRefs:
// name -> "secret/key".
func secretEnvOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			out[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return out
}

// The actions scenario carries the examples of examples/actions verbatim,
// so that the chart is tested with the files the README documents.
func TestActionsScenarioIsTheExamples(t *testing.T) {
	b, err := os.ReadFile(actionsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Actions struct {
			Files map[string]string `json:"files"`
		} `json:"actions"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples in %s (%v)", examplesDir, err)
	}
	var names []string
	for _, p := range examples {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		names = append(names, name)
		if v.Actions.Files[name] != string(want) {
			t.Errorf("%s: actions.files.%s differs from %s: copy it again", actionsFile, name, p)
		}
	}
	if len(v.Actions.Files) != len(names) {
		t.Errorf("%s has files %v, the examples are %v", actionsFile, keysOf(v.Actions.Files), names)
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// With actions.files the chart renders them into a ConfigMap, mounts it
// where actions_dir points, in Parley's pod and in the doctor's, gives
// both the secrets the files read, and lets Parley run Jobs where the Job
// action runs them.
func TestActionsFromFiles(t *testing.T) {
	r := mustRender(t, []string{actionsFile})
	cm := actionsConfigMap(t, r)
	if got := keysOf(cm.Data); !slices.Equal(got, []string{"cdn-purge.yaml", "emails-drain-job.yaml", "emails-drain.yaml", "oncall-who.yaml"}) {
		t.Errorf("actions ConfigMap holds %v", got)
	}
	for name, content := range cm.Data {
		want, err := os.ReadFile(filepath.Join(examplesDir, name))
		if err != nil || content != string(want) {
			t.Errorf("%s in the ConfigMap differs from the file given (%v)", name, err)
		}
	}
	if got, _ := lookup(parleyConfig(t, r), "actions_dir"); got != actionsDir {
		t.Errorf("actions_dir = %v, want %s", got, actionsDir)
	}

	d := one[*appsv1.Deployment](t, r)
	doctor := doctorPod(t, r)
	actionsMount(t, "Deployment", d.Spec.Template.Spec, fullname+"-actions")
	actionsMount(t, "doctor", doctor.Spec, fullname+"-actions")
	for what, c := range map[string]corev1.Container{"Deployment": d.Spec.Template.Spec.Containers[0], "doctor": doctor.Spec.Containers[0]} {
		if got := secretEnvOf(c)["CDN_TOKEN"]; got != "parley-actions/cdn-token" {
			t.Errorf("%s: CDN_TOKEN from %q, want the Secret parley-actions, key cdn-token", what, got)
		}
	}

	// What the kubernetes_job runner calls, in ops and nowhere else:
	// create (and a dry-run create), get (waiting), delete (a timed-out
	// Job) on jobs; list and get on pods; get on pods/log.
	var role *rbacv1.Role
	for _, ro := range all[*rbacv1.Role](r) {
		if ro.Name == scoped+"-jobs" {
			if ro.Namespace != "ops" || role != nil {
				t.Errorf("a Jobs Role in %s", ro.Namespace)
			}
			role = ro
		}
	}
	if role == nil {
		t.Fatal("no Jobs Role")
	}
	grants := map[string][]string{}
	for _, ru := range role.Rules {
		for _, res := range ru.Resources {
			for _, g := range ru.APIGroups {
				grants[g+"/"+res] = append(grants[g+"/"+res], ru.Verbs...)
			}
		}
	}
	want := map[string][]string{
		"batch/jobs": {"create", "get", "list", "watch", "delete"},
		"/pods":      {"get", "list"},
		"/pods/log":  {"get"},
	}
	if len(grants) != len(want) {
		t.Errorf("the Jobs Role grants %v, want %v", grants, want)
	}
	for res, verbs := range want {
		if !slices.Equal(grants[res], verbs) {
			t.Errorf("the Jobs Role grants %v on %s, want %v", grants[res], res, verbs)
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if b.RoleRef.Name == scoped+"-jobs" && (b.Namespace != "ops" || len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != fullname) {
			t.Errorf("the Jobs Role is bound to %+v in %s", b.Subjects, b.Namespace)
		}
	}
	for _, want := range []string{"User-defined actions: ConfigMap " + fullname + "-actions", "cdn-purge.yaml, emails-drain-job.yaml, emails-drain.yaml, oncall-who.yaml", "Jobs only in: ops"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("notes lack %q:\n%s", want, r.notes)
		}
	}
}

// A ConfigMap the team manages: mounted, no ConfigMap of the chart's.
func TestActionsFromExistingConfigMap(t *testing.T) {
	r := mustRender(t, []string{"testdata/values-default.yaml"}, "actions.existingConfigMap=team-actions",
		"actions.secretEnv[0].name=CDN_TOKEN", "actions.secretEnv[0].secretName=cdn", "actions.secretEnv[0].key=token")
	for _, cm := range all[*corev1.ConfigMap](r) {
		if strings.HasSuffix(cm.Name, "-actions") {
			t.Errorf("the chart rendered %s although the team manages the actions' ConfigMap", cm.Name)
		}
	}
	if got, _ := lookup(parleyConfig(t, r), "actions_dir"); got != actionsDir {
		t.Errorf("actions_dir = %v", got)
	}
	d := one[*appsv1.Deployment](t, r)
	actionsMount(t, "Deployment", d.Spec.Template.Spec, "team-actions")
	actionsMount(t, "doctor", doctorPod(t, r).Spec, "team-actions")
	if got := secretEnvOf(d.Spec.Template.Spec.Containers[0])["CDN_TOKEN"]; got != "cdn/token" {
		t.Errorf("CDN_TOKEN from %q", got)
	}
	if !strings.Contains(r.notes, "rollout restart deployment/"+fullname) {
		t.Errorf("the notes do not say a change needs a restart:\n%s", r.notes)
	}

	// Without actions: no folder, no volume.
	r = mustRender(t, []string{"testdata/values-default.yaml"})
	if _, ok := lookup(parleyConfig(t, r), "actions_dir"); ok {
		t.Error("actions_dir set without actions")
	}
	for _, v := range one[*appsv1.Deployment](t, r).Spec.Template.Spec.Volumes {
		if v.Name == "actions" {
			t.Errorf("an actions volume without actions: %+v", v)
		}
	}
}

// A change of any action file or Job template rolls the pods; the
// same files render the same checksum.
func TestActionsChangeRollsPods(t *testing.T) {
	checksum := func(set ...string) string {
		r := mustRender(t, []string{actionsFile}, set...)
		return one[*appsv1.Deployment](t, r).Spec.Template.Annotations["checksum/config"]
	}
	base := checksum()
	if again := checksum(); again != base {
		t.Error("the same files gave two checksums")
	}
	dir := t.TempDir()
	job, err := os.ReadFile(filepath.Join(examplesDir, "emails-drain-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(changed, []byte(strings.Replace(string(job), "queue-tools:2.3.1", "queue-tools:2.3.2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := checksum(`file:actions.files.emails-drain-job\.yaml=` + changed); got == base {
		t.Error("a new image in the Job template did not change the checksum")
	}
	if got := checksum("actions.secretEnv[0].key=other"); got != base {
		t.Error("a secret reference changed the config checksum (it changes the pod spec itself)")
	}
}

// Values that would install actions Parley cannot run are refused, with
// a message naming the value.
func TestActionsNeedWhatTheyUse(t *testing.T) {
	ex := func(name string) string {
		return `file:actions.files.` + strings.ReplaceAll(name, ".", `\.`) + "=" + examplesDir + "/" + name
	}
	write := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "action.yaml")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cdnToken := []string{"actions.secretEnv[0].name=CDN_TOKEN", "actions.secretEnv[0].secretName=cdn", "actions.secretEnv[0].key=token"}
	fileSecret := strings.Replace(readExample(t, "cdn-purge.yaml"), "{secret: {env: CDN_TOKEN}", "{secret: {file: /var/run/secrets/cdn/token}", 1)
	for _, tc := range []struct {
		name string
		set  func(t *testing.T) []string
		want string
	}{
		{"files and an existing ConfigMap", func(*testing.T) []string {
			return []string{ex("oncall-who.yaml"), "actions.existingConfigMap=mine"}
		}, "actions.files and actions.existingConfigMap"},
		{"a secret env without actions", func(*testing.T) []string { return cdnToken }, "actions.secretEnv is for user-defined actions"},
		{"a secret env the chart sets", func(*testing.T) []string {
			return []string{ex("oncall-who.yaml"), "actions.secretEnv[0].name=SLACK_BOT_TOKEN", "actions.secretEnv[0].secretName=s", "actions.secretEnv[0].key=k"}
		}, "actions.secretEnv[0]: SLACK_BOT_TOKEN is set by the chart"},
		{"a secret env twice", func(*testing.T) []string {
			return append([]string{ex("oncall-who.yaml"), "extraEnv[0].name=CDN_TOKEN", "extraEnv[0].value=x"}, cdnToken...)
		}, "actions.secretEnv[0]: CDN_TOKEN is already set"},
		{"a secret env without its key", func(*testing.T) []string {
			return []string{ex("oncall-who.yaml"), "actions.secretEnv[0].name=CDN_TOKEN", "actions.secretEnv[0].secretName=cdn"}
		}, "/actions/secretEnv/0"},
		{"a file name that is not YAML", func(*testing.T) []string {
			return []string{`file:actions.files.oncall-who\.txt=` + examplesDir + "/oncall-who.yaml"}
		}, "'oncall-who.txt' not allowed"},
		{"a file that is not YAML", func(t *testing.T) []string {
			return []string{`file:actions.files.x\.yaml=` + write(t, "name: [unclosed\n")}
		}, "actions.files.x.yaml is not a YAML mapping"},
		{"an HTTP secret nobody provides", func(*testing.T) []string { return []string{ex("cdn-purge.yaml")} },
			"actions.files.cdn-purge.yaml: header Authorization reads its secret from env var CDN_TOKEN"},
		{"an HTTP secret from a file", func(t *testing.T) []string {
			return []string{`file:actions.files.cdn-purge\.yaml=` + write(t, fileSecret)}
		}, "reads its secret from file /var/run/secrets/cdn/token, which the chart does not mount"},
		{"a Job outside rbac.jobNamespaces", func(*testing.T) []string {
			return []string{ex("emails-drain.yaml"), ex("emails-drain-job.yaml"), "rbac.jobNamespaces[0]=batch"}
		}, "actions.files.emails-drain.yaml runs its Job in namespace ops, which rbac.jobNamespaces does not list"},
		{"a Job without its template", func(*testing.T) []string {
			return []string{ex("emails-drain.yaml"), "rbac.jobNamespaces[0]=ops"}
		}, "its Job template emails-drain-job.yaml is not in actions.files"},
		{"a Job template without its action", func(*testing.T) []string { return []string{ex("emails-drain-job.yaml")} },
			"actions.files.emails-drain-job.yaml is a Kubernetes manifest, but no action names it"},
		{"HTTP actions behind a closed NetworkPolicy", func(*testing.T) []string {
			return append([]string{ex("oncall-who.yaml"), ex("cdn-purge.yaml"), "networkPolicy.enabled=true", "networkPolicy.egress.apiServer.cidrs[0]=10.0.0.1/32"}, cdnToken...)
		}, "networkPolicy.egress.destinations is empty, but the HTTP actions cdn-purge.yaml, oncall-who.yaml call hosts"},
		{"Jobs as impersonated users nobody names", func(*testing.T) []string {
			return []string{"kubernetes.impersonation.enabled=true", "kubernetes.impersonation.identities.slack:U1.user=alice", "rbac.jobNamespaces[0]=ops"}
		}, "rbac.jobNamespaces with kubernetes.impersonation.enabled"},
		{"actions_dir by hand", func(*testing.T) []string { return []string{"config.actions_dir=/srv/actions"} }, "actions_dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set(t)
			_, err := render(t, []string{"testdata/values-default.yaml"}, set...)
			if err == nil {
				t.Fatalf("%v was accepted", set)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}

	// The same files with what they need install; a secret may also come
	// from extraEnv (valueFrom), and without a NetworkPolicy nothing is
	// needed for the hosts.
	for _, set := range [][]string{
		append([]string{ex("oncall-who.yaml"), ex("cdn-purge.yaml"), ex("emails-drain.yaml"), ex("emails-drain-job.yaml"), "rbac.jobNamespaces[0]=ops"}, cdnToken...),
		{ex("cdn-purge.yaml"), "extraEnv[0].name=CDN_TOKEN", "extraEnv[0].valueFrom.secretKeyRef.name=cdn", "extraEnv[0].valueFrom.secretKeyRef.key=token"},
		{ex("emails-drain.yaml"), ex("emails-drain-job.yaml"), "rbac.create=false"},
		{ex("oncall-who.yaml"), "networkPolicy.enabled=true", "networkPolicy.egress.apiServer.cidrs[0]=10.0.0.1/32",
			"networkPolicy.egress.destinations[0].name=oncall", "networkPolicy.egress.destinations[0].cidrs[0]=10.20.0.0/16", "networkPolicy.egress.destinations[0].ports[0]=443"},
		{"kubernetes.impersonation.enabled=true", "kubernetes.impersonation.identities.slack:U1.user=alice", "kubernetes.impersonation.identities.slack:U1.groups[0]=sre",
			"kubernetes.impersonation.writeGroups[0]=sre", "rbac.jobNamespaces[0]=ops", ex("emails-drain.yaml"), ex("emails-drain-job.yaml")},
	} {
		if _, err := render(t, []string{"testdata/values-default.yaml"}, set...); err != nil {
			t.Errorf("%v rejected: %v", set, err)
		}
	}
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
