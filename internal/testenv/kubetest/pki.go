package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki are the cluster's keys and certificates, as files for the
// components' flags.
type pki struct {
	caPEM []byte
	// serving certificate for 127.0.0.1, signed by the CA; the API server
	// and the controller manager both serve with it.
	servingCert, servingKey string
	// service-account token signing key (RSA, as most clusters use) and
	// its public half.
	saKey, saPub string
	caFile       string
	// the API server's client certificate for kubelets (pods/log, exec,
	// port-forward), signed by the CA; a fake kubelet verifies it.
	kubeletClientCert, kubeletClientKey string
}

// KubeletClientName is the common name of the API server's client
// certificate towards kubelets.
const KubeletClientName = "kube-apiserver-kubelet-client"

// newPKI makes a CA, a serving certificate and a service-account key pair
// in dir. They live as long as the cluster: a day is plenty.
func newPKI(dir string) (pki, error) {
	var p pki
	wrap := func(err error) (pki, error) { return pki{}, fmt.Errorf("kubetest: pki: %w", err) }
	notBefore := time.Now().Add(-time.Hour)
	notAfter := time.Now().Add(24 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return wrap(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return wrap(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return wrap(err)
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return wrap(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kubetest-apiserver"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return wrap(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return wrap(err)
	}

	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return wrap(err)
	}
	clientTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: KubeletClientName, Organization: []string{"system:masters"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		return wrap(err)
	}
	clientKeyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		return wrap(err)
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return wrap(err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return wrap(err)
	}

	p.caFile = filepath.Join(dir, "ca.crt")
	p.servingCert = filepath.Join(dir, "serving.crt")
	p.servingKey = filepath.Join(dir, "serving.key")
	p.saKey = filepath.Join(dir, "sa.key")
	p.saPub = filepath.Join(dir, "sa.pub")
	p.kubeletClientCert = filepath.Join(dir, "kubelet-client.crt")
	p.kubeletClientKey = filepath.Join(dir, "kubelet-client.key")
	for _, f := range []struct {
		path  string
		block pem.Block
	}{
		{p.caFile, pem.Block{Type: "CERTIFICATE", Bytes: caDER}},
		{p.servingCert, pem.Block{Type: "CERTIFICATE", Bytes: der}},
		{p.servingKey, pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}},
		{p.saKey, pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}},
		{p.saPub, pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}},
		{p.kubeletClientCert, pem.Block{Type: "CERTIFICATE", Bytes: clientDER}},
		{p.kubeletClientKey, pem.Block{Type: "EC PRIVATE KEY", Bytes: clientKeyDER}},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&f.block), 0o600); err != nil {
			return wrap(err)
		}
	}
	return p, nil
}
