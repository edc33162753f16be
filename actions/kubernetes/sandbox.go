package kubernetes

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Sandbox is an in-memory Kubernetes cluster for tests and the demo: an
// object tracker (client-go's testing package) loaded from ordinary
// manifests of the API groups Parley uses (sandboxScheme), with the API
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
// Its client (Client) turns every call into the request client-go's fake
// clientsets build (a k8stesting.Action) and serves it through a
// k8stesting.Fake, so tests can inject failures and read the requests
// served, without linking client-go's clientset (sandbox_client.go).
//
// The sandbox starts no goroutines and needs no closing, and it can serve
// for days: like every fake clientset it records each request it serves
// (Fake().Actions(), for tests), but it forgets them once more than
// maxRecordedActions have piled up, and the events its controller records
// expire after an hour, as the API server's do.
type Sandbox struct {
	fake    *k8stesting.Fake
	scheme  *runtime.Scheme
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

	unserved []string // manifest objects left out at the load (Unserved)
}

var (
	deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")
	replicaSetsGVR = appsv1.SchemeGroupVersion.WithResource("replicasets")
	podsGVR        = corev1.SchemeGroupVersion.WithResource("pods")
	eventsGVR      = corev1.SchemeGroupVersion.WithResource("events")
	namespacesGVR  = corev1.SchemeGroupVersion.WithResource("namespaces")
)

// clusterScoped are the kinds the sandbox serves (sandboxScheme) that a
// manifest gives without a namespace.
var clusterScoped = map[string]bool{"Namespace": true, "Node": true, "PersistentVolume": true}

// NewSandbox returns a sandbox cluster holding the objects of the given
// multi-document YAML manifests, with the wall clock.
func NewSandbox(manifests ...[]byte) (*Sandbox, error) {
	return NewSandboxWithClock(time.Now, manifests...)
}

// NewSandboxWithClock is NewSandbox with a clock for creation times and
// status timestamps.
//
// Manifests are ordinary Kubernetes YAML of the groups the sandbox serves
// (core v1, apps/v1, batch/v1, autoscaling/v1 and v2,
// coordination.k8s.io/v1), decoded strictly: an unknown field or kind is
// an error naming the document; an object of Kubernetes' other groups is
// left out and listed by Unserved. Namespaces are created first,
// then the other objects in order; namespaced objects must name their
// namespace. Given uids, creation times and generations are kept; missing
// ones are filled in. A timestamp field in block style (a key ending in
// Timestamp, Time or At) may be written relative to the load time as now
// or now-<duration> (now-3d, now-25m), so a demo keeps plausible ages. Every deployment is then reconciled once: ReplicaSets
// and pods the manifests leave out are created as the controller would.
func NewSandboxWithClock(now func() time.Time, manifests ...[]byte) (*Sandbox, error) {
	sch, err := sandboxScheme()
	if err != nil {
		return nil, err
	}
	// The tracker and the reactors are those of client-go's
	// fake.NewSimpleClientset, on the sandbox's own scheme: the fake's
	// object reaction answers plain gets; the sandbox's API-server layer
	// (react) goes before it.
	tracker := k8stesting.NewObjectTracker(sch, serializer.NewCodecFactory(sch).UniversalDecoder())
	st := newStore(tracker, sch)
	f := &k8stesting.Fake{}
	f.AddReactor("*", "*", k8stesting.ObjectReaction(tracker))
	s := &Sandbox{fake: f, scheme: sch, tracker: st, patch: k8stesting.ObjectReaction(st), now: now}
	if err := s.load(manifests); err != nil {
		return nil, err
	}
	f.PrependReactor("*", "*", s.react)
	return s, nil
}

// sandboxScheme registers the API groups the sandbox serves: those Parley
// calls and nothing else (client-go's scheme registers every group
// Kubernetes has, at a cost in memory and start-up time in every
// process). A manifest's object of another group is left out (Unserved)
// or refused (decodeDocument).
func sandboxScheme() (*runtime.Scheme, error) {
	sch := runtime.NewScheme()
	metav1.AddToGroupVersion(sch, schema.GroupVersion{Version: "v1"})
	groups := runtime.SchemeBuilder{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		coordinationv1.AddToScheme,
	}
	if err := groups.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("sandbox: register the API types: %w", err)
	}
	return sch, nil
}

// servedGroups names the groups of sandboxScheme, for the error that
// refuses a manifest's unknown kind.
const servedGroups = "v1, apps/v1, batch/v1, autoscaling/v1, autoscaling/v2, coordination.k8s.io/v1"

// builtinGroups are the API groups of Kubernetes itself. An object of
// one the sandbox does not serve, in a manifest (an Ingress beside its Deployment, a Role) is
// left out of the sandbox, which no action reads it from, and listed by
// Unserved; an unknown group or kind (a custom resource, a typo) is an
// error.
var builtinGroups = map[string]bool{
	"admissionregistration.k8s.io": true, "apiextensions.k8s.io": true, "apiregistration.k8s.io": true,
	"apps": true, "authentication.k8s.io": true, "authorization.k8s.io": true, "autoscaling": true,
	"batch": true, "certificates.k8s.io": true, "coordination.k8s.io": true, "discovery.k8s.io": true,
	"events.k8s.io": true, "extensions": true, "flowcontrol.apiserver.k8s.io": true,
	"internal.apiserver.k8s.io": true, "networking.k8s.io": true, "node.k8s.io": true, "policy": true,
	"rbac.authorization.k8s.io": true, "resource.k8s.io": true, "scheduling.k8s.io": true,
	"storage.k8s.io": true, "storagemigration.k8s.io": true,
}

// Unserved lists the manifest objects the sandbox left out because their
// kind belongs to an API group it does not serve ("sandbox manifest 1,
// document 4 (Ingress prod/shop)"), in manifest order.
func (s *Sandbox) Unserved() []string { return slices.Clone(s.unserved) }

// Client returns the sandbox's client. Besides the tracker's objects it
// serves pod logs (pods/log), made up from each pod's containers and the
// clock (sandbox_logs.go).
func (s *Sandbox) Client() kube.Interface { return sandboxClient{s} }

// Clients returns a ClientFor that gives every subject the sandbox client.
func (s *Sandbox) Clients() ClientFor { return StaticClient(s.Client()) }

// Fake returns the reactor chain that serves the sandbox's requests, for
// tests that inject failures with PrependReactor or read the requests it
// recorded (Actions). Those are forgotten once more than
// maxRecordedActions have piled up, so a test reads them soon after the
// requests it checks.
func (s *Sandbox) Fake() *k8stesting.Fake { return s.fake }

// Invoke serves a request the client (kube.Interface) does not offer, such
// as a create, a delete or a status write of any resource the sandbox
// holds, exactly as the client serves its own: recorded, through the
// reactors, the API-server layer and the controllers. Tests use it to
// change the cluster behind Parley's back, building the request with
// client-go's testing package (k8stesting.NewCreateAction and the rest).
func (s *Sandbox) Invoke(a k8stesting.Action) (runtime.Object, error) {
	return s.invoke(a, nil)
}

// relativeTime matches timestamp fields written as now or now-<duration>.
var relativeTime = regexp.MustCompile(`(?m)^([ \t]*(?:-[ \t]+)?[A-Za-z]*(?:Timestamp|Time|At)):[ \t]*["']?now(?:-([0-9a-z]+))?["']?[ \t]*$`)

type document struct {
	obj      runtime.Object
	gvr      schema.GroupVersionResource
	desc     string
	unserved bool // of a built-in group the sandbox does not serve: left out
}

func (s *Sandbox) load(manifests [][]byte) error {
	// Documents are YAML, turned into JSON once (decodeDocument); the
	// decoder reads that JSON.
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s.scheme, s.scheme,
		kjson.SerializerOptions{Strict: true})
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
			doc, skip, err := decodeDocument(decoder, s.scheme, raw)
			if doc.desc != "" {
				where += " (" + doc.desc + ")"
			}
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			switch {
			case doc.unserved:
				s.unserved = append(s.unserved, where)
			case !skip:
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
func decodeDocument(decoder runtime.Decoder, served *runtime.Scheme, raw []byte) (doc document, skip bool, err error) {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	describe := func() {
		if head.Kind != "" {
			doc.desc = head.Kind + " " + head.Metadata.Name
			if head.Metadata.Namespace != "" {
				doc.desc = head.Kind + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
			}
		}
	}
	// The YAML is parsed once, into JSON that the rest reads. Strictly:
	// a key given twice is an error, as kubectl makes it.
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		if yaml.Unmarshal(raw, &head) == nil { // name the document when it can be read at all
			describe()
		}
		return doc, false, err
	}
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return doc, true, nil
	}
	if json.Unmarshal(j, &head) == nil {
		describe()
	}
	obj, gvk, err := decoder.Decode(j, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		kind := head.Kind
		if gvk != nil && gvk.Kind != "" {
			kind = gvk.GroupVersion().String() + " " + gvk.Kind
			if builtinGroups[gvk.Group] && !served.IsGroupRegistered(gvk.Group) {
				// Another built-in group (an Ingress, a
				// PodDisruptionBudget, RBAC): left out, and said. An
				// unknown kind of a served group is a typo.
				doc.unserved = true
				return doc, true, nil
			}
		}
		return doc, false, fmt.Errorf("the sandbox does not serve %s (it holds the kinds of %s): %w", kind, servedGroups, err)
	}
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
