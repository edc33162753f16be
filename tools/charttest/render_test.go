package charttest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../../charts/parley"
	releaseName = "t"
	namespace   = "parley"
	fullname    = "t-parley"
	// scoped names what lives outside the release namespace.
	scoped = fullname + "-" + namespace
)

// valuesFiles are the scenarios every generic test renders.
var valuesFiles = []string{
	"testdata/values-default.yaml",
	"testdata/values-production.yaml",
	"testdata/values-multi-replica.yaml",
	"testdata/values-discord-only.yaml",
	"testdata/values-impersonation.yaml",
	"testdata/values-actions.yaml",
	chartDir + "/values-production.yaml",
}

// object is one rendered manifest, decoded.
type object struct {
	source string // the template it came from
	raw    string
	kind   string
	meta   metav1.Object
	obj    any
}

// rendered is one install of the chart.
type rendered struct {
	objects []object
	hooks   []object // the helm test hook (the doctor pod)
	notes   string
}

// monitoringAPI is what a cluster with the prometheus-operator serves;
// render passes it as `helm template --api-versions` would.
var monitoringAPI = []string{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"}

// render installs the chart client-only (as `helm template` and
// `helm install --dry-run` do: values merged with the chart's, checked
// against values.schema.json, templates rendered) with the given values
// files and --set expressions, for a cluster with the prometheus-operator
// CRDs; an expression prefixed "string:" is a --set-string, one prefixed
// "file:" a --set-file.
func render(t *testing.T, files []string, set ...string) (*rendered, error) {
	t.Helper()
	return renderOn(t, monitoringAPI, files, set...)
}

// renderOn is render for a cluster serving the given extra API versions
// (none: a plain cluster).
func renderOn(t *testing.T, apiVersions []string, files []string, set ...string) (*rendered, error) {
	t.Helper()
	return renderIn(t, namespace, apiVersions, files, set...)
}

// renderIn is renderOn for a release in namespace ns.
func renderIn(t *testing.T, ns string, apiVersions []string, files []string, set ...string) (*rendered, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	opts := values.Options{ValueFiles: files}
	for _, s := range set {
		if v, ok := strings.CutPrefix(s, "string:"); ok {
			opts.StringValues = append(opts.StringValues, v)
		} else if v, ok := strings.CutPrefix(s, "file:"); ok {
			opts.FileValues = append(opts.FileValues, v)
		} else {
			opts.Values = append(opts.Values, s)
		}
	}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("values %v %v: %v", files, set, err)
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = releaseName
	install.Namespace = ns
	install.Replace = true
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	install.APIVersions = apiVersions
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	out := &rendered{notes: rel.Info.Notes}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, err := decode(manifests[k])
		if err != nil {
			t.Fatalf("%v %v: %v\n%s", files, set, err, manifests[k])
		}
		if o != nil {
			out.objects = append(out.objects, *o)
		}
	}
	for _, h := range rel.Hooks {
		o, err := decode(h.Manifest)
		if err != nil {
			t.Fatalf("%v %v: hook %s: %v\n%s", files, set, h.Path, err, h.Manifest)
		}
		if o != nil {
			out.hooks = append(out.hooks, *o)
		}
	}
	return out, nil
}

// mustRender is render for values that must install.
func mustRender(t *testing.T, files []string, set ...string) *rendered {
	t.Helper()
	r, err := render(t, files, set...)
	if err != nil {
		t.Fatalf("render %v %v: %v", files, set, err)
	}
	return r
}

// typed maps apiVersion/kind to the Go type a manifest must decode into.
// Anything else the chart renders is an error: a new kind needs a line here
// and a test.
var typed = map[string]func() any{
	"apps/v1/Deployment":                              func() any { return &appsv1.Deployment{} },
	"v1/Service":                                      func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                               func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                                    func() any { return &corev1.ConfigMap{} },
	"v1/PersistentVolumeClaim":                        func() any { return &corev1.PersistentVolumeClaim{} },
	"rbac.authorization.k8s.io/v1/ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"rbac.authorization.k8s.io/v1/Role":               func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding":        func() any { return &rbacv1.RoleBinding{} },
	"policy/v1/PodDisruptionBudget":                   func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":              func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":                    func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor":         func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":         func() any { return &monitoringv1.PrometheusRule{} },
	// Only as the helm test hook; TestManifestsDecodeStrictly checks that
	// the release itself renders no bare Pod.
	"v1/Pod": func() any { return &corev1.Pod{} },
}

// decode turns one manifest into its typed object. Unknown fields,
// duplicate keys and unknown kinds are errors.
func decode(manifest string) (*object, error) {
	// SplitManifests trims each document; helm writes each back followed
	// by a newline (install and template alike), which a block scalar at
	// the document's end keeps (a ConfigMap's last file ends in one).
	manifest = strings.TrimRight(manifest, "\n") + "\n"
	source := ""
	if first, _, ok := strings.Cut(manifest, "\n"); ok && strings.HasPrefix(first, "# Source: ") {
		source = strings.TrimPrefix(first, "# Source: ")
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(manifest), &tm); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if tm.Kind == "" && strings.TrimSpace(stripComments(manifest)) == "" {
		return nil, nil // an empty document
	}
	newObj, ok := typed[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: unexpected object %s %s", source, tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict([]byte(manifest), obj); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", source, tm.Kind, err)
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%s: %T has no metadata", source, obj)
	}
	return &object{source: source, raw: manifest, kind: tm.Kind, meta: meta, obj: obj}, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// all returns the objects of one Go type.
func all[T any](r *rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the single object of a type, failing otherwise.
func one[T any](t *testing.T, r *rendered) T {
	t.Helper()
	got := all[T](r)
	if len(got) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, got %d", zero, len(got))
	}
	return got[0]
}

// configMap returns the ConfigMap holding config.yaml.
func configMap(t *testing.T, r *rendered) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range all[*corev1.ConfigMap](r) {
		if cm.Name == fullname {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s", fullname)
	return nil
}

// parleyConfig decodes the rendered config.yaml.
func parleyConfig(t *testing.T, r *rendered) map[string]any {
	t.Helper()
	cm := configMap(t, r)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml is not YAML: %v", err)
	}
	return cfg
}

// lookup walks a decoded YAML map along dotted keys.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// name is a values file's scenario name: "values-production" for the
// test's, "chart-values-production" for the one shipped with the chart.
func name(file string) string {
	n := strings.TrimSuffix(filepath.Base(file), ".yaml")
	if strings.HasPrefix(file, chartDir) {
		n = "chart-" + n
	}
	return n
}

// manifestText is every rendered manifest and the notes, as one text.
func (r *rendered) manifestText() string {
	var b bytes.Buffer
	for _, o := range r.objects {
		b.WriteString(o.raw)
		b.WriteString("\n---\n")
	}
	b.WriteString(r.notes)
	return b.String()
}
