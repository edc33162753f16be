package useraction

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/action"
)

// Loading a kubernetes_job runner: its keys, and the Job template it names.

var jobKeys = []string{"namespace", "template", "timeout", "logs"}

func (l *loader) parseJob(n *yaml.Node, actionName, file, dir string, o *Options) (*jobRunner, []byte, bool) {
	r := &jobRunner{timeout: DefaultJobTimeout, logs: true, clients: o.Kube, poll: o.PollInterval}
	ok := true
	var nsNode, tmplNode *yaml.Node
	if !l.mapping(n, "run.kubernetes_job", jobKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "namespace":
			nsNode = v
			ns, good := l.text(v, "run.kubernetes_job.namespace")
			if good {
				if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
					l.errorf(v, "run.kubernetes_job.namespace: %q is not a namespace name: %s", ns, errs[0])
					good = false
				}
			}
			ok = ok && good
			r.namespace = ns
		case "template":
			tmplNode = v
			r.templateFile, _ = l.text(v, "run.kubernetes_job.template")
		case "timeout":
			d, good := l.duration(v, "run.kubernetes_job.timeout")
			switch {
			case !good:
				ok = false
			case d > MaxJobTimeout:
				l.errorf(v, "run.kubernetes_job.timeout: %s is longer than the %s allowed", action.FormatDuration(d), action.FormatDuration(MaxJobTimeout))
				ok = false
			case d < 10*time.Second:
				l.errorf(v, "run.kubernetes_job.timeout: %s is too short (at least 10s)", d)
				ok = false
			default:
				r.timeout = d
			}
		case "logs":
			s, good := l.text(v, "run.kubernetes_job.logs")
			switch {
			case !good:
				ok = false
			case s == "tail":
				r.logs = true
			case s == "none":
				r.logs = false
			default:
				l.errorf(v, "run.kubernetes_job.logs: %q is not tail or none", s)
				ok = false
			}
		}
	}) {
		return nil, nil, false
	}
	if nsNode == nil {
		l.errorf(n, "run.kubernetes_job: missing namespace (where the Job runs)")
		ok = false
	}
	if tmplNode == nil {
		l.errorf(n, "run.kubernetes_job: missing template (a batch/v1 Job manifest, relative to this file)")
		return nil, nil, false
	}
	if r.templateFile == "" {
		return nil, nil, false
	}
	path, err := templatePath(r.templateFile, file, dir)
	if err != nil {
		l.errorf(tmplNode, "run.kubernetes_job.template: %v", err)
		return nil, nil, false
	}
	data, err := readLimited(path)
	if err != nil {
		l.errorf(tmplNode, "run.kubernetes_job.template: %v", err)
		return nil, nil, false
	}
	job, err := decodeJob(data, r.namespace)
	if err != nil {
		l.errorf(tmplNode, "run.kubernetes_job.template %s: %v", r.templateFile, err)
		return nil, nil, false
	}
	r.job = job
	r.prefix = jobPrefix(job, actionName)
	return r, data, ok
}

// templatePath resolves a template path written in file, which must stay
// inside the actions folder dir (symbolic links followed).
func templatePath(rel, file, dir string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q: give a path relative to the action file, inside the actions folder", rel)
	}
	outside := fmt.Errorf("%q is outside the actions folder", rel)
	inside := func(dir, p string) bool {
		r, err := filepath.Rel(dir, p)
		return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absFile, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(absFile), rel)
	if !inside(absDir, p) {
		return "", outside
	}
	// Symbolic links are followed, and must not lead out either.
	realDir, err := filepath.EvalSymlinks(absDir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file", rel)
		}
		return "", err
	}
	if !inside(realDir, real) {
		return "", outside
	}
	return real, nil
}

func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), maxFileSize)
	}
	return os.ReadFile(path)
}

// newJobDecoder decodes YAML strictly into the types of a scheme that
// holds only batch/v1, the one group a template may be (client-go's
// scheme registers every group Kubernetes has, at the start of every
// process that links it).
func newJobDecoder() (runtime.Decoder, error) {
	s := runtime.NewScheme()
	if err := batchv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("job scheme: %w", err)
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true}), nil
}

// decodeJob decodes and checks a Job template: one batch/v1 Job, decoded
// strictly, used as written (no {{ }}: parameters reach it only as
// environment variables), with containers and a Job restart policy.
func decodeJob(data []byte, namespace string) (*batchv1.Job, error) {
	if bytes.Contains(data, []byte("{{")) {
		return nil, fmt.Errorf("holds {{ }}: a Job template is used as written; parameters reach its containers only as environment variables %sNAME", EnvPrefix)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: a template holds one Job; found a second document", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("not a Kubernetes manifest: want a batch/v1 Job")
	}
	apiVersion, kind := scalarAt(root, "apiVersion"), scalarAt(root, "kind")
	if apiVersion != "batch/v1" || kind != "Job" {
		what := strings.TrimSpace(apiVersion + " " + kind)
		if what == "" {
			what = "a manifest without apiVersion and kind"
		}
		return nil, fmt.Errorf("is %s, not a batch/v1 Job", what)
	}
	jobDecoder, err := newJobDecoder()
	if err != nil {
		return nil, err
	}
	obj, _, err := jobDecoder.Decode(data, nil, nil)
	if err != nil {
		msg := err.Error()
		if line := lineOfError(root, msg); line > 0 {
			return nil, fmt.Errorf("line %d: %s", line, msg)
		}
		return nil, errors.New(msg)
	}
	job, isJob := obj.(*batchv1.Job)
	if !isJob {
		return nil, fmt.Errorf("decodes to %T, not a batch/v1 Job", obj)
	}
	if job.Namespace != "" && job.Namespace != namespace {
		return nil, fmt.Errorf("metadata.namespace is %s but the action runs it in %s: leave it out", job.Namespace, namespace)
	}
	spec := job.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		return nil, errors.New("spec.template.spec.containers is empty")
	}
	if rp := spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
		return nil, fmt.Errorf("spec.template.spec.restartPolicy is %q: a Job needs Never (recommended) or OnFailure", rp)
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Image == "" {
			return nil, fmt.Errorf("container %q has no image", c.Name)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "PARLEY_") {
				return nil, fmt.Errorf("container %q sets %s: PARLEY_ variables are set by Parley", c.Name, e.Name)
			}
		}
	}
	return job, nil
}

func scalarAt(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

var (
	unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
	structFieldRE  = regexp.MustCompile(`Go struct field [A-Za-z0-9_]+\.([A-Za-z0-9_.]+) of type`)
)

// lineOfError finds the line of the field a decoding error names, when it
// names one: "unknown field \"spec.template.spec.contaners\"".
func lineOfError(root *yaml.Node, msg string) int {
	var path string
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		path = m[1]
	} else if m := structFieldRE.FindStringSubmatch(msg); m != nil {
		path = m[1]
	} else {
		return 0
	}
	return lineAt(root, strings.Split(path, "."))
}

func lineAt(n *yaml.Node, path []string) int {
	key, index := path[0], -1
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		if v, err := strconv.Atoi(key[i+1 : len(key)-1]); err == nil {
			key, index = key[:i], v
		}
	}
	if n.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != key {
			continue
		}
		v := n.Content[i+1]
		if index >= 0 {
			if v.Kind != yaml.SequenceNode || index >= len(v.Content) {
				return n.Content[i].Line
			}
			v = v.Content[index]
		}
		if len(path) == 1 {
			if index >= 0 {
				return v.Line
			}
			return n.Content[i].Line
		}
		if line := lineAt(v, path[1:]); line > 0 {
			return line
		}
		return n.Content[i].Line
	}
	return 0
}
