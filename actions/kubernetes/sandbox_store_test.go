package kubernetes

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A list answers with copies, as an API server does: the items are the
// caller's to change, and changing them changes nothing in the sandbox.
// The lists filled in place (pods, replica sets, deployments) and one
// filled by meta.SetList (config maps) behave alike; a list that matches
// nothing has no items.
func TestSandboxListsAreCopies(t *testing.T) {
	k := newKit(t, DemoManifests(), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop, namespace: prod}\ndata: {a: b}\n"))
	ctx := context.Background()
	c := k.sb.Client()
	pods, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=checkout"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %d, %v", len(pods.Items), err)
	}
	rss, err := c.AppsV1().ReplicaSets("prod").List(ctx, metav1.ListOptions{})
	if err != nil || len(rss.Items) == 0 {
		t.Fatalf("replica sets: %d, %v", len(rss.Items), err)
	}
	deps, err := c.AppsV1().Deployments("prod").List(ctx, metav1.ListOptions{})
	if err != nil || len(deps.Items) == 0 {
		t.Fatalf("deployments: %d, %v", len(deps.Items), err)
	}
	for i := 1; i < len(deps.Items); i++ {
		if deps.Items[i-1].Name >= deps.Items[i].Name {
			t.Fatalf("deployments not in name order: %s before %s", deps.Items[i-1].Name, deps.Items[i].Name)
		}
	}

	pod, rs, dep := pods.Items[0].Name, rss.Items[0].Name, deps.Items[0].Name
	pods.Items[0].Labels["changed"] = "yes"
	pods.Items[0].Spec.Containers[0].Image = "changed:1"
	rss.Items[0].Spec.Template.Spec.Containers[0].Image = "changed:1"
	deps.Items[0].Annotations = map[string]string{"changed": "yes"}
	*deps.Items[0].Spec.Replicas = 99

	gotPod, err := c.CoreV1().Pods("prod").Get(ctx, pod, metav1.GetOptions{})
	if err != nil || gotPod.Labels["changed"] != "" || gotPod.Spec.Containers[0].Image == "changed:1" {
		t.Errorf("changing a listed pod changed the sandbox's: %v, %v", gotPod.Labels, err)
	}
	rss2, err := c.AppsV1().ReplicaSets("prod").List(ctx, metav1.ListOptions{})
	if err != nil || rss2.Items[0].Name != rs || rss2.Items[0].Spec.Template.Spec.Containers[0].Image == "changed:1" {
		t.Errorf("changing a listed replica set changed the sandbox's (%v)", err)
	}
	gotDep, err := c.AppsV1().Deployments("prod").Get(ctx, dep, metav1.GetOptions{})
	if err != nil || gotDep.Annotations["changed"] != "" || *gotDep.Spec.Replicas == 99 {
		t.Errorf("changing a listed deployment changed the sandbox's (%v)", err)
	}
	again, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=checkout"})
	if err != nil || len(again.Items) != len(pods.Items) || again.Items[0].Labels["changed"] != "" {
		t.Errorf("the next list holds the change: %v", err)
	}

	none, err := c.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=nothing"})
	if err != nil || len(none.Items) != 0 {
		t.Errorf("a list that matches nothing: %#v, %v", none.Items, err)
	}
	cms, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil || len(cms.Items) != 1 || cms.Items[0].Data["a"] != "b" {
		t.Fatalf("config maps: %v, %v", cms.Items, err)
	}
	for i := range cms.Items {
		cms.Items[i].Labels = map[string]string{"changed": "yes"}
	}
	if cms2, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); err != nil || len(cms2.Items) != 1 || cms2.Items[0].Labels["changed"] != "" {
		t.Errorf("config maps: changing a listed one changed the sandbox's (%v)", err)
	}
}
