package kubetest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// startEtcd starts a single-member etcd and returns its client URL.
func (c *Cluster) startEtcd(bin string, timeout time.Duration) (string, error) {
	url := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	ports, err := c.launch(Etcd, bin, 2, func(p []int) []string {
		return []string{
			"--name=kubetest",
			"--data-dir=" + filepath.Join(c.dir, "etcd"),
			"--listen-client-urls=" + url(p[0]),
			"--advertise-client-urls=" + url(p[0]),
			"--listen-peer-urls=" + url(p[1]),
			"--initial-advertise-peer-urls=" + url(p[1]),
			"--initial-cluster=kubetest=" + url(p[1]),
			"--initial-cluster-state=new",
			"--unsafe-no-fsync=true", // test data: speed over durability
			"--log-level=warn",
		}
	}, func(p *process, ports []int) error {
		return p.waitHTTP(httpClient(nil), url(ports[0])+"/health", "", timeout)
	})
	if err != nil {
		return "", err
	}
	return url(ports[0]), nil
}

// startAPIServer starts kube-apiserver on etcd and sets the cluster's host
// and admin config once /readyz answers.
func (c *Cluster) startAPIServer(bin, etcdURL string, pki pki, o Options) error {
	admin := c.tokens[AdminUser]
	ports, err := c.launch(APIServer, bin, 1, func(p []int) []string {
		return append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(p[0]),
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
			"--client-ca-file=" + pki.caFile,
			"--token-auth-file=" + filepath.Join(c.dir, "tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki.saPub,
			"--service-account-signing-key-file=" + pki.saKey,
			"--service-cluster-ip-range=10.0.0.0/24",
			// No kubelets and one API server: nothing to reconcile the
			// kubernetes service's endpoints with.
			"--endpoint-reconciler-type=none",
			// Kubelets (the fake one of StartKubelet) serve with a
			// certificate of the cluster's CA and verify the API
			// server's client certificate, as real ones do.
			"--kubelet-certificate-authority=" + pki.caFile,
			"--kubelet-client-certificate=" + pki.kubeletClientCert,
			"--kubelet-client-key=" + pki.kubeletClientKey,
			"--cert-dir=" + filepath.Join(c.dir, "apiserver"),
			"--profiling=false",
		}, o.APIServerArgs...)
	}, func(p *process, ports []int) error {
		url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/readyz"
		return p.waitHTTP(httpClient(c.caPEM), url, admin, o.ReadyTimeout)
	})
	if err != nil {
		return err
	}
	c.host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	c.admin = c.configWithToken(admin)
	c.client, err = kubernetes.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("kubetest: admin client: %w", err)
	}
	return nil
}

// startControllerManager starts kube-controller-manager as the admin,
// without leader election, and waits for its /healthz.
func (c *Cluster) startControllerManager(bin string, pki pki, o Options) error {
	kubeconfig := filepath.Join(c.dir, "admin.kubeconfig")
	if err := WriteKubeconfig(kubeconfig, c.admin); err != nil {
		return err
	}
	admin := c.tokens[AdminUser]
	_, err := c.launch(ControllerManager, bin, 1, func(p []int) []string {
		return append([]string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(p[0]),
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
			"--controllers=" + strings.Join(o.Controllers, ","),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + pki.saKey,
			"--root-ca-file=" + pki.caFile,
			"--profiling=false",
		}, o.ControllerManagerArgs...)
	}, func(p *process, ports []int) error {
		url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz"
		return p.waitHTTP(httpClient(c.caPEM), url, admin, o.ReadyTimeout)
	})
	return err
}
