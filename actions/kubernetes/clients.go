package kubernetes

import (
	"fmt"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// Identity is the Kubernetes user and groups a chat subject acts as.
type Identity struct {
	User   string
	Groups []string
}

// ClusterOptions select a real cluster.
type ClusterOptions struct {
	Kubeconfig string // path; empty with InCluster false means the default loading rules
	Context    string // kubeconfig context; empty means current
	InCluster  bool   // use the pod's service account
	// Impersonate maps chat subjects ("slack:U024BE7LH") to Kubernetes
	// identities. When it is set, every action runs as the requester's
	// mapped identity, so the cluster's RBAC is a second lock behind
	// Parley's policy; a subject with no mapping is refused (fail closed).
	// Parley itself (the inventory) uses its own credentials.
	Impersonate map[string]Identity
	// QPS and Burst bound each identity's requests to the API server
	// (one token bucket for all its calls); zero means DefaultQPS and
	// DefaultBurst.
	QPS       float32
	Burst     int
	UserAgent string
}

// DefaultQPS and DefaultBurst are the request rate each identity may send
// the API server when ClusterOptions leave it out. One chat request reads
// up to about ten objects at once (logs of five pods, their ReplicaSets,
// events), so client-go's default of 5 a second with bursts of 10 (which
// it gave each API group separately) would queue a second user behind
// the first.
const (
	DefaultQPS   = 20
	DefaultBurst = 40
)

// NewClients returns a ClientFor backed by a real API server.
func NewClients(o ClusterOptions) (ClientFor, error) {
	cfg, err := clusterConfig(o)
	if err != nil {
		return nil, err
	}
	base, err := kube.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if len(o.Impersonate) == 0 {
		return StaticClient(base), nil
	}
	var mu sync.Mutex
	cache := map[string]kube.Interface{}
	return func(subject string) (kube.Interface, error) {
		if subject == "" {
			return base, nil
		}
		id, ok := o.Impersonate[subject]
		if !ok {
			return nil, fmt.Errorf("%w: no Kubernetes identity is mapped for %s (kubernetes.impersonate)", action.ErrForbidden, subject)
		}
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[subject]; ok {
			return c, nil
		}
		ic := rest.CopyConfig(cfg)
		ic.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
		c, err := kube.NewForConfig(ic)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for %s: %w", subject, err)
		}
		cache[subject] = c
		return c, nil
	}, nil
}

// clusterConfig is the connection o selects, with its rate and user
// agent.
func clusterConfig(o ClusterOptions) (*rest.Config, error) {
	cfg, err := restConfig(o)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	if o.QPS > 0 {
		cfg.QPS, cfg.Burst = o.QPS, max(o.Burst, 1)
	}
	cfg.UserAgent = o.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "parley"
	}
	return cfg, nil
}

func restConfig(o ClusterOptions) (*rest.Config, error) {
	if o.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
