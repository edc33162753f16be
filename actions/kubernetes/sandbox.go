package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
	"github.com/parley-chatops/parley/internal/kube/kubego"
)

// Sandbox is an in-memory Kubernetes cluster for tests and the demo: a
// client-go fake clientset loaded from ordinary manifests, with the API
// server behaviour the actions rely on (resourceVersions with optimistic
// concurrency, generations, the deployments' scale subresource, status kept
// apart from spec, cascading deletes) and a small deterministic deployment
// controller that runs synchronously after every write, so a status read
// right after a scale, rollback or restart sees what a real cluster would
// show once it settled: ReplicaSets per template revision, old ones scaled
// to zero, pods running and ready, deployment status and revision updated.
//
// Reads are answered as an API server answers them: a list applies its
// label and field selectors where the objects are and copies only what
// matches (sandbox_store.go).
//
// The sandbox starts no goroutines and needs no closing, and it can serve
// for days: like every fake clientset it records each request it serves
// (Fake().Actions(), for tests), but it forgets them once more than
// maxRecordedActions have piled up, and the events its controller records
// expire after an hour, as the API server's do.
type Sandbox struct {
	client  *fake.Clientset
	tracker *store
	patch   k8stesting.ReactionFunc // the fake's own patch logic, on the store
	now     func() time.Time

	// recorded counts the requests the fake has recorded since the
	// sandbox last made it forget them (forgetActions).
	recorded atomic.Int64

	mu      sync.Mutex // serialises writes and guards the counters
	rv      int64      // last resourceVersion handed out
	seq     uint64     // source of deterministic names and uids
	loading bool       // the manifests are being loaded (pods get their ReplicaSet's age)
	events  []written  // events written since the load, oldest first, until they expire
}

var (
	deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")
	replicaSetsGVR = appsv1.SchemeGroupVersion.WithResource("replicasets")
	podsGVR        = corev1.SchemeGroupVersion.WithResource("pods")
	eventsGVR      = corev1.SchemeGroupVersion.WithResource("events")
	namespacesGVR  = corev1.SchemeGroupVersion.WithResource("namespaces")
)

// clusterScoped are the kinds a manifest may give without a namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "StorageClass": true, "PriorityClass": true,
	"IngressClass": true, "RuntimeClass": true,
}

// NewSandbox returns a sandbox cluster holding the objects of the given
// multi-document YAML manifests, with the wall clock.
func NewSandbox(manifests ...[]byte) (*Sandbox, error) {
	return NewSandboxWithClock(time.Now, manifests...)
}

// NewSandboxWithClock is NewSandbox with a clock for creation times and
// status timestamps.
//
// Manifests are ordinary Kubernetes YAML, decoded strictly (an unknown
// field is an error naming the document). Namespaces are created first,
// then the other objects in order; namespaced objects must name their
// namespace. Given uids, creation times and generations are kept; missing
// ones are filled in. A timestamp field in block style (a key ending in
// Timestamp, Time or At) may be written relative to the load time as now
// or now-<duration> (now-3d, now-25m), so a demo keeps plausible ages. Every deployment is then reconciled once: ReplicaSets
// and pods the manifests leave out are created as the controller would.
func NewSandboxWithClock(now func() time.Time, manifests ...[]byte) (*Sandbox, error) {
	cs := fake.NewSimpleClientset()
	st := newStore(cs.Tracker())
	s := &Sandbox{client: cs, tracker: st, patch: k8stesting.ObjectReaction(st), now: now}
	if err := s.load(manifests); err != nil {
		return nil, err
	}
	cs.PrependReactor("*", "*", s.react)
	return s, nil
}

// Client returns the sandbox's clientset. Besides the fake's objects it
// serves pod logs (pods/log), made up from each pod's containers and the
// clock (sandbox_logs.go).
func (s *Sandbox) Client() kube.Interface {
	return kubego.Wrap(sandboxClient{Clientset: s.client, s: s})
}

// Clients returns a ClientFor that gives every subject the sandbox client.
func (s *Sandbox) Clients() ClientFor { return StaticClient(s.Client()) }

// Fake returns the underlying fake clientset, for tests that inject
// failures with PrependReactor or read the requests it recorded
// (Actions). Those are forgotten once more than maxRecordedActions have
// piled up, so a test reads them soon after the requests it checks.
func (s *Sandbox) Fake() *fake.Clientset { return s.client }

// relativeTime matches timestamp fields written as now or now-<duration>.
var relativeTime = regexp.MustCompile(`(?m)^([ \t]*(?:-[ \t]+)?[A-Za-z]*(?:Timestamp|Time|At)):[ \t]*["']?now(?:-([0-9a-z]+))?["']?[ \t]*$`)

type document struct {
	obj  runtime.Object
	gvr  schema.GroupVersionResource
	desc string
}

func (s *Sandbox) load(manifests [][]byte) error {
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	loadTime := s.now()
	var docs []document
	for mi, m := range manifests {
		var relErr error
		m = relativeTime.ReplaceAllFunc(m, func(line []byte) []byte {
			sub := relativeTime.FindSubmatch(line)
			t := loadTime
			if len(sub[2]) > 0 {
				d, err := action.ParseDuration(string(sub[2]))
				if err != nil && relErr == nil {
					relErr = fmt.Errorf("%s: %w", bytes.TrimSpace(line), err)
				}
				t = t.Add(-d)
			}
			return []byte(fmt.Sprintf("%s: %q", sub[1], t.UTC().Format(time.RFC3339)))
		})
		if relErr != nil {
			return fmt.Errorf("sandbox manifest %d: %w", mi+1, relErr)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(m)))
		for di := 1; ; di++ {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			where := fmt.Sprintf("sandbox manifest %d, document %d", mi+1, di)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			doc, skip, err := decodeDocument(decoder, raw)
			if doc.desc != "" {
				where += " (" + doc.desc + ")"
			}
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if !skip {
				doc.desc = where
				docs = append(docs, doc)
			}
		}
	}
	// Namespaces first, as kubectl apply orders them.
	slices.SortStableFunc(docs, func(a, b document) int {
		return boolRank(b.gvr == namespacesGVR) - boolRank(a.gvr == namespacesGVR)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loading = true
	defer func() { s.loading = false }()
	var deployments []types.NamespacedName
	for _, d := range docs {
		m, _ := meta.Accessor(d.obj)
		if _, err := s.create(d.gvr, m.GetNamespace(), d.obj, true, false); err != nil {
			return fmt.Errorf("%s: %w", d.desc, err)
		}
		if d.gvr == deploymentsGVR {
			deployments = append(deployments, types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}
	slices.SortFunc(deployments, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	for _, d := range deployments {
		if err := s.reconcile(d.Namespace, d.Name); err != nil {
			return fmt.Errorf("sandbox: reconcile deployment %s: %w", d, err)
		}
	}
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeDocument decodes one YAML document strictly; skip reports an
// empty document (only comments or whitespace).
func decodeDocument(decoder runtime.Decoder, raw []byte) (doc document, skip bool, err error) {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return doc, false, err
	}
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return doc, true, nil
	}
	if err := yaml.Unmarshal(raw, &head); err == nil && head.Kind != "" {
		doc.desc = head.Kind + " " + head.Metadata.Name
		if head.Metadata.Namespace != "" {
			doc.desc = head.Kind + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
		}
	}
	obj, gvk, err := decoder.Decode(raw, nil, nil)
	if err != nil {
		return doc, false, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return doc, false, fmt.Errorf("%s is not a Kubernetes object: %w", gvk.Kind, err)
	}
	if m.GetName() == "" {
		return doc, false, fmt.Errorf("%s without metadata.name", gvk.Kind)
	}
	if !clusterScoped[gvk.Kind] && m.GetNamespace() == "" {
		return doc, false, fmt.Errorf("%s %s without metadata.namespace", gvk.Kind, m.GetName())
	}
	doc.obj = obj
	doc.gvr, _ = meta.UnsafeGuessKindToResource(*gvk)
	return doc, false, nil
}
