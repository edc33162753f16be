package kubernetes

import (
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/fake"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	autoscalingv2client "k8s.io/client-go/kubernetes/typed/autoscaling/v2"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
)

// maxRecordedActions bounds the requests the fake clientset keeps in its
// record (Fake().Actions()). The fake appends every request it serves and
// never lets go, which in a sandbox serving a demo for days is a leak
// (about 1 MB every thousand chat requests); tests read the record right
// after the few requests they check.
const maxRecordedActions = 1024

// sandboxClient is the fake clientset with pod logs served from the
// sandbox's state, the one thing the fake itself only stubs, and with the
// fake's record of requests kept bounded: the groups Parley uses make the
// fake forget once the record is full, before the call that would grow
// it. (The fake records under a lock that its reactors run inside, so the
// sandbox's reactor can only count; forgetting happens here, outside it.)
type sandboxClient struct {
	*fake.Clientset
	s *Sandbox
}

// forgetActions empties the fake's record of requests once it holds
// maxRecordedActions or more. The count is checked against the record
// itself before it is emptied, since a test may have emptied it
// (ClearActions) since. Calls in flight at that moment may leave a few
// more on record than the bound.
func (s *Sandbox) forgetActions() {
	if s.recorded.Load() < maxRecordedActions {
		return
	}
	if n := len(s.client.Actions()); n < maxRecordedActions { // once every maxRecordedActions calls
		s.recorded.Store(int64(n))
		return
	}
	s.recorded.Store(0)
	s.client.ClearActions()
}

func (c sandboxClient) CoreV1() corev1client.CoreV1Interface {
	c.s.forgetActions()
	return sandboxCore{CoreV1Interface: c.Clientset.CoreV1(), s: c.s}
}

func (c sandboxClient) AppsV1() appsv1client.AppsV1Interface {
	c.s.forgetActions()
	return c.Clientset.AppsV1()
}

func (c sandboxClient) AutoscalingV2() autoscalingv2client.AutoscalingV2Interface {
	c.s.forgetActions()
	return c.Clientset.AutoscalingV2()
}

func (c sandboxClient) BatchV1() batchv1client.BatchV1Interface {
	c.s.forgetActions()
	return c.Clientset.BatchV1()
}

func (c sandboxClient) AuthorizationV1() authorizationv1client.AuthorizationV1Interface {
	c.s.forgetActions()
	return c.Clientset.AuthorizationV1()
}

func (c sandboxClient) RbacV1() rbacv1client.RbacV1Interface {
	c.s.forgetActions()
	return c.Clientset.RbacV1()
}

func (c sandboxClient) Discovery() discovery.DiscoveryInterfaces {
	c.s.forgetActions()
	return c.Clientset.Discovery()
}
