package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLeaderElectionAsTheChartRendersIt(t *testing.T) {
	// The chart renders exactly these two keys (templates/_helpers.tpl,
	// parley.config) and sets POD_NAME and POD_NAMESPACE.
	c, err := Parse([]byte(`
kubernetes: {in_cluster: true}
store: {driver: postgres, dsn: {env: PARLEY_POSTGRES_DSN}}
leader_election:
  lease_name: parley
  lease_namespace: chatops
`), "chart.yaml", env(map[string]string{
		"PARLEY_POSTGRES_DSN": "postgres://parley@db/parley", EnvPodName: "parley-7d9f-x2x", EnvPodNamespace: "elsewhere",
	}))
	if err != nil {
		t.Fatal(err)
	}
	le := c.LeaderElection
	if le == nil {
		t.Fatal("leader_election section not read")
	}
	want := LeaderElection{LeaseName: "parley", LeaseNamespace: "chatops", Identity: "parley-7d9f-x2x",
		LeaseDuration: Duration(15 * time.Second), RenewDeadline: Duration(10 * time.Second), RetryPeriod: Duration(2 * time.Second)}
	if *le != want {
		t.Errorf("leader_election = %+v\nwant %+v", *le, want)
	}
	var out bytes.Buffer
	if err := c.Dump(&out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"leader_election:", "lease_name: parley", "lease_duration: 15s", "identity: parley-7d9f-x2x"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("config show lacks %q:\n%s", w, out.String())
		}
	}
}

func TestLeaderElectionDefaultsFromThePod(t *testing.T) {
	c, err := Parse([]byte(`
kubernetes: {in_cluster: true}
leader_election: {lease_name: parley, lease_duration: 30s, renew_deadline: 20s, retry_period: 4s}
`), "f.yaml", env(map[string]string{EnvPodName: "parley-0", EnvPodNamespace: "ops"}))
	if err != nil {
		t.Fatal(err)
	}
	le := c.LeaderElection
	if le.LeaseNamespace != "ops" || le.Identity != "parley-0" {
		t.Errorf("namespace, identity = %q, %q; want ops, parley-0 from the pod", le.LeaseNamespace, le.Identity)
	}
	if le.LeaseDuration.Std() != 30*time.Second || le.RenewDeadline.Std() != 20*time.Second || le.RetryPeriod.Std() != 4*time.Second {
		t.Errorf("timings = %s/%s/%s", le.LeaseDuration.Std(), le.RenewDeadline.Std(), le.RetryPeriod.Std())
	}

	// Outside a pod the identity is the host name.
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skip("no host name here")
	}
	c, err = Parse([]byte(`
kubernetes: {kubeconfig: /etc/kube/config}
leader_election: {lease_name: parley, lease_namespace: ops}
`), "f.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaderElection.Identity != host {
		t.Errorf("identity = %q, want the host name %q", c.LeaderElection.Identity, host)
	}
}

func TestNoLeaderElectionByDefault(t *testing.T) {
	if Default().LeaderElection != nil {
		t.Error("the defaults elect a leader")
	}
	c, err := Parse([]byte("listen: 127.0.0.1:9000\n"), "f.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaderElection != nil {
		t.Error("a file without leader_election elects a leader")
	}
}

func TestLeaderElectionErrors(t *testing.T) {
	pod := map[string]string{EnvPodName: "parley-0", EnvPodNamespace: "ops"}
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"no lease name": {`leader_election: {lease_namespace: ops}`, pod, "leader_election.lease_name: required"},
		"bad lease name": {`leader_election: {lease_name: Parley_Lease}`, pod,
			`leader_election.lease_name: "Parley_Lease" is not a Kubernetes object name`},
		"no namespace anywhere": {`leader_election: {lease_name: parley}`, map[string]string{EnvPodName: "p"},
			"leader_election.lease_namespace: required (or set POD_NAMESPACE)"},
		"bad namespace": {`leader_election: {lease_name: parley, lease_namespace: "a.b"}`, pod,
			`leader_election.lease_namespace: "a.b" is not a namespace name`},
		"identity with a space": {`leader_election: {lease_name: parley, identity: "a b"}`, pod,
			`leader_election.identity: "a b" must be printable ASCII`},
		"renew not under lease": {`leader_election: {lease_name: parley, lease_duration: 10s, renew_deadline: 10s}`, pod,
			"leader_election.renew_deadline: 10s must be shorter than lease_duration 10s"},
		"retry too long": {`leader_election: {lease_name: parley, retry_period: 9s}`, pod,
			"leader_election.retry_period: 9s must be shorter than renew_deadline 10s / 1.2"},
		"sub-second lease": {`leader_election: {lease_name: parley, lease_duration: 500ms, renew_deadline: 400ms, retry_period: 100ms}`, pod,
			"leader_election.lease_duration: 500ms is not between 1s and 5m"},
		"huge lease": {`leader_election: {lease_name: parley, lease_duration: 1h}`, pod,
			"leader_election.lease_duration: 1h0m0s is not between 1s and 5m"},
		"negative": {`leader_election: {lease_name: parley, retry_period: -1s}`, pod,
			"must be positive"},
		"unknown key":  {`leader_election: {lease_name: parley, enabled: true}`, pod, "field enabled not found"},
		"bad duration": {`leader_election: {lease_name: parley, retry_period: soon}`, pod, `invalid duration "soon"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("kubernetes: {in_cluster: true}\n"+c.yaml+"\n"), "f.yaml", env(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestLeaderElectionNeedsACluster(t *testing.T) {
	pod := env(map[string]string{EnvPodName: "parley-0", EnvPodNamespace: "ops"})
	_, err := Parse([]byte("leader_election: {lease_name: parley}\n"), "f.yaml", pod)
	if err == nil || !strings.Contains(err.Error(), "the Lease needs a real cluster") {
		t.Fatalf("sandbox without a lease kubeconfig: err = %v", err)
	}
	// The sandbox for actions, a real cluster for the Lease.
	c, err := Parse([]byte("leader_election: {lease_name: parley, kubeconfig: /etc/kube/config}\n"), "f.yaml", pod)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Kubernetes.Sandbox || c.LeaderElection.Kubeconfig != "/etc/kube/config" {
		t.Errorf("sandbox=%v, lease kubeconfig=%q", c.Kubernetes.Sandbox, c.LeaderElection.Kubeconfig)
	}
}
