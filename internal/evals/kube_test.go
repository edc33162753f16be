package evals

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/parley-chatops/parley/internal/kube/kubego"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/llmtest"
)

// kubeRoundTrip runs the toy suite in Kubernetes Jobs mode against
// client: the runner must create an Indexed Job with the worker command,
// and collect what the workers write. No kubelet runs the pods, so the
// test plays the three workers itself (RunShard + WriteShard, exactly
// what "parley eval worker" does) against the same API.
func kubeRoundTrip(t *testing.T, client kubernetes.Interface, ns string) {
	dir := writeToy(t, "runner: kubernetes\nshards: 3\n")
	db, st := openDB(t, filepath.Join(t.TempDir(), "parley.db"))
	defer db.Close()
	srv := llmtest.NewOpenAI(t, toyHandler)
	r := newRunner(t, dir, st, srv, func(o *RunnerOptions) {
		o.Kube = &KubeOptions{Client: kubego.Wrap(client), Namespace: ns, Image: "ghcr.io/parley-chatops/parley:test",
			ExtraArgs: []string{"--config", "/etc/parley/config.yaml"}, PollInterval: 50 * time.Millisecond}
	})
	ctx := ctxT(t)
	run, err := r.Start(ctx, RunRequest{Suite: "toy", Variant: "worse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	deadline := time.Now().Add(20 * time.Second)
	for job == nil {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, JobName(run.ID), metav1.GetOptions{})
		if err == nil {
			job = j
		} else if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("job: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sp := job.Spec
	if sp.CompletionMode == nil || *sp.CompletionMode != batchv1.IndexedCompletion || *sp.Completions != 3 || *sp.Parallelism != 3 {
		t.Fatalf("job spec %+v", sp)
	}
	c := sp.Template.Spec.Containers[0]
	wantArgs := []string{"eval", "worker", "--suite", "toy", "--variant", "worse", "--baseline", "baseline", "--run", "1",
		"--shard", "$(JOB_COMPLETION_INDEX)", "--shards", "3", "--namespace", ns, "--config", "/etc/parley/config.yaml"}
	if !slices.Equal(c.Command, []string{"parley"}) || !slices.Equal(c.Args, wantArgs) || c.Image != "ghcr.io/parley-chatops/parley:test" {
		t.Fatalf("container %v %v %s", c.Command, c.Args, c.Image)
	}
	if c.Env[0].Name != "PARLEY_EVAL_RUN" || c.Env[0].Value != "1" || sp.Template.Spec.RestartPolicy != "Never" {
		t.Fatalf("env %v", c.Env)
	}

	// The workers.
	worker := newRunner(t, dir, st, srv, nil)
	for shard := range 3 {
		res, err := worker.RunShard(ctx, run.ID, RunRequest{Suite: "toy", Variant: "worse"}, shard, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteShard(ctx, kubego.Wrap(client), ns, run.ID, shard, res); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := r.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := metric(t, sum, "mentions")
	if m.Baseline.N != toyCases || m.Variant.Mean != 0.6 || m.Comparison.B != 16 || !m.Comparison.Significant {
		t.Fatalf("mentions %+v %+v", m.Variant, m.Comparison)
	}
	cms, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelRun + "=1"})
	if err != nil || len(cms.Items) != 0 {
		t.Fatalf("shard ConfigMaps left: %d, %v", len(cms.Items), err)
	}

	// A cancelled run deletes its Job.
	run2, err := r.Start(ctx, RunRequest{Suite: "toy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := client.BatchV1().Jobs(ns).Get(ctx, JobName(run2.ID), metav1.GetOptions{}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Cancel(run2.ID)
	if _, err := r.Wait(ctx, run2.ID); err == nil {
		t.Fatal("cancelled run ended without error")
	}
	j, err := client.BatchV1().Jobs(ns).Get(ctx, JobName(run2.ID), metav1.GetOptions{})
	if !apierrors.IsNotFound(err) && (err != nil || j.DeletionTimestamp == nil) {
		t.Fatalf("job of a cancelled run still there: %v", err)
	}
}

func TestKubernetesJobsFakeClient(t *testing.T) {
	kubeRoundTrip(t, fake.NewClientset(), "evals")
}

// TestKubernetesJobsAPIServer runs the same round trip on a real
// kube-apiserver (internal/testenv/kubetest) without controllers: the API
// validates the Job and ConfigMaps for real; no pod runs.
func TestKubernetesJobsAPIServer(t *testing.T) {
	b, err := kubetest.FindBinaries()
	if b.Etcd == "" || b.APIServer == "" {
		if os.Getenv(kubetest.RequireEnv) == "1" {
			t.Fatalf("%v", err)
		}
		t.Skip(err)
	}
	c, err := kubetest.New(b, kubetest.Options{Controllers: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ns := c.NewNamespace(t, "evals")
	kubeRoundTrip(t, c.AdminClient(), ns)
}
