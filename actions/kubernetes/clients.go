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
	QPS         float32
	Burst       int
	UserAgent   string
}

// NewClients returns a ClientFor backed by a real API server.
func NewClients(o ClusterOptions) (ClientFor, error) {
	cfg, err := restConfig(o)
	if err != nil {
		return nil, err
	}
	if o.QPS > 0 {
		cfg.QPS, cfg.Burst = o.QPS, o.Burst
	}
	cfg.UserAgent = o.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "parley"
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
