package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ClientAuth says what a listener asks of clients at the TLS handshake.
type ClientAuth int

const (
	// ClientCertOptional verifies a client certificate when one is given
	// and lets clients without one in (they authenticate otherwise, or are
	// anonymous).
	ClientCertOptional ClientAuth = iota
	// ClientCertRequired refuses the handshake of a client without a
	// certificate signed by one of the client CAs (mTLS).
	ClientCertRequired
)

// DefaultClientCertValidity is how long `eddy cert client` certificates
// last unless told otherwise.
const DefaultClientCertValidity = leafValidity

// ServerConfigFor is ServerConfig with the given client authentication.
// Client certificates are verified against ClientCAs when set, else the
// node's CA, so a CA that signs node certificates also signs clients'.
func (n *NodeTLS) ServerConfigFor(auth ClientAuth, nextProtos ...string) *tls.Config {
	c := n.ServerConfig(nextProtos...)
	if auth == ClientCertRequired {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// ClientCertName returns the name a verified client certificate stands
// for: its subject's common name, or the whole subject (RFC 2253 form)
// when it has none. It returns false when the connection presented no
// certificate that verified, so an unverified certificate never names
// anybody.
func ClientCertName(cs *tls.ConnectionState) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	leaf := cs.VerifiedChains[0][0]
	if leaf.Subject.CommonName != "" {
		return leaf.Subject.CommonName, true
	}
	if s := leaf.Subject.String(); s != "" {
		return s, true
	}
	return "", false
}

// IssueClientCert signs a client certificate for name (its common name,
// which brokers map to the principal User:<name>) with the CA a node in
// dir (its <data>/tls) uses: the cluster CA derived from secret when
// secret is set, else the node's own CA, whose key must be in dir. It
// returns the certificate and its new ECDSA P-256 key, both PEM.
func IssueClientCert(dir string, secret []byte, name string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("transport: client certificate: a name is required")
	}
	if validity <= 0 {
		validity = DefaultClientCertValidity
	}
	var ca *x509.Certificate
	var caKey crypto.Signer
	if len(secret) > 0 {
		if len(secret) < MinClusterSecret {
			return nil, nil, fmt.Errorf("transport: cluster secret of %d bytes is too short; use at least %d", len(secret), MinClusterSecret)
		}
		c, k, err := clusterCA(secret)
		if err != nil {
			return nil, nil, fmt.Errorf("transport: client certificate: %w", err)
		}
		ca, caKey = c, k
	} else {
		c, k, err := loadCA(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("transport: client certificate: %w", err)
		}
		ca, caKey = c, k
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: client certificate: generate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"eddy"}, CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: client certificate: sign: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: client certificate: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// loadCA reads a node's own CA and its key from dir without creating
// anything: issuing a client certificate must never start a new CA.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s not found: the node's CA key is only on the node, and a cluster with cluster_secret derives it from the secret (pass it)", keyPath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA certificate: %w", err)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", keyPath, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", certPath, err)
	}
	if !cert.IsCA || !publicKeyMatches(cert, &key.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the CA certificate of %s", certPath, keyPath)
	}
	return cert, key, nil
}

// LoadClientCert reads a client certificate and key (PEM files, as
// IssueClientCert writes them) for a client's tls.Config.
func LoadClientCert(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: load client certificate: %w", err)
	}
	if cert.Leaf != nil && len(cert.Leaf.ExtKeyUsage) > 0 &&
		!slices.Contains(cert.Leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(cert.Leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return tls.Certificate{}, fmt.Errorf("transport: %s is not a client certificate (no clientAuth extended key usage)", certFile)
	}
	return cert, nil
}
