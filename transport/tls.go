package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the TLS files in a node's TLS directory.
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 397 * 24 * time.Hour // the longest lifetime clients commonly accept
	leafRenewal  = 30 * 24 * time.Hour
	clockSkew    = time.Hour // NotBefore backdating, for peers whose clock is behind
)

// defaultHosts are in every node certificate, so local tools always verify.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// NodeTLS is a node's TLS material: its own CA and a leaf certificate
// signed by it.
type NodeTLS struct {
	CAPool      *x509.CertPool // holds just the node's CA
	CAFile      string         // path of ca.crt, to hand to clients
	Certificate tls.Certificate
	// ClientCAs verifies client certificates; nil means CAPool, so the CA
	// that signs node certificates also signs clients' (IssueClientCert).
	ClientCAs *x509.CertPool
}

// EnsureNodeTLS loads or creates, in dir: ca.crt, ca.key (the node's own
// CA, ECDSA P-256, 10-year), node.crt, node.key (leaf signed by the CA,
// about a year, ExtKeyUsage server+client). The leaf is (re)issued when
// missing, expiring within 30 days, not signed by the CA, or not covering
// every host in hosts (IP SANs for IPs, DNS SANs for names; always
// localhost, 127.0.0.1 and ::1). Keys are written 0600, files atomically
// (temp + rename). An existing CA is never replaced.
func EnsureNodeTLS(dir string, hosts []string) (*NodeTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("transport: node tls: %w", err)
	}
	caCert, caKey, err := ensureCA(dir)
	if err != nil {
		return nil, fmt.Errorf("transport: node tls: %w", err)
	}
	cert, err := ensureLeaf(dir, caCert, caKey, normalizeHosts(hosts), time.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: node tls: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &NodeTLS{CAPool: pool, CAFile: filepath.Join(dir, CACertFile), Certificate: cert}, nil
}

// MinClusterSecret is the shortest cluster secret accepted, in bytes.
const MinClusterSecret = 16

// EnsureClusterTLS is EnsureNodeTLS for a node of a cluster that shares a
// secret: every node derives the same CA from it, so clients trust one
// certificate for the whole cluster, including nodes that join later,
// and no CA key ever travels between nodes.
//
// The CA key is Ed25519, seeded by HKDF-SHA256 over the secret, and its
// certificate has fixed fields (serial from the key, a fixed validity
// window): Ed25519 signatures are deterministic, so every node produces
// the same bytes. ca.crt holds it; the key is derived at each start and
// never written. The node's leaf is issued from it as EnsureNodeTLS does.
func EnsureClusterTLS(dir string, secret []byte, hosts []string) (*NodeTLS, error) {
	if len(secret) < MinClusterSecret {
		return nil, fmt.Errorf("transport: cluster secret of %d bytes is too short; use at least %d", len(secret), MinClusterSecret)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("transport: cluster tls: %w", err)
	}
	caCert, caKey, err := clusterCA(secret)
	if err != nil {
		return nil, fmt.Errorf("transport: cluster tls: %w", err)
	}
	certPath := filepath.Join(dir, CACertFile)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})
	if cur, err := os.ReadFile(certPath); err != nil || !slices.Equal(cur, pemBytes) {
		if err := writeFileAtomic(certPath, pemBytes, 0o644); err != nil {
			return nil, fmt.Errorf("transport: cluster tls: %w", err)
		}
	}
	// A CA key from before the node had a cluster secret is no longer used.
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("transport: cluster tls: %w", err)
	}
	cert, err := ensureLeaf(dir, caCert, caKey, normalizeHosts(hosts), time.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: cluster tls: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &NodeTLS{CAPool: pool, CAFile: certPath, Certificate: cert}, nil
}

// clusterCA derives the cluster CA from the secret.
func clusterCA(secret []byte) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, secret, []byte("eddy cluster CA"), "eddy cluster CA key v1", ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive CA key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(sum[:16]),
		Subject:               pkix.Name{Organization: []string{"eddy"}, CommonName: "eddy cluster CA " + hex.EncodeToString(sum[:4])},
		NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          sum[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// ServerConfig returns a new TLS config presenting the node certificate,
// with TLS 1.2 as the floor for Kafka clients over TCP (QUIC raises it to
// 1.3 itself). A client certificate is optional but, when presented, must
// be signed by a client CA (ClientCAs, else the node CA); ConnInfo.TLS
// then carries the verified chain for authentication (ClientCertName).
func (n *NodeTLS) ServerConfig(nextProtos ...string) *tls.Config {
	clientCAs := n.ClientCAs
	if clientCAs == nil {
		clientCAs = n.CAPool
	}
	return &tls.Config{
		Certificates: []tls.Certificate{n.Certificate},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   slices.Clone(nextProtos),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    clientCAs,
	}
}

// LoadCAPool reads a PEM file of CA certificates (a node's ca.crt).
func LoadCAPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("transport: load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("transport: load CA %s: no PEM certificate in it", caFile)
	}
	return pool, nil
}

// ClientTLSConfig returns a new TLS config for dialing a node over QUIC:
// it verifies the broker against pool, offers ALPN and requires TLS 1.3.
// An empty serverName lets QUICDialer take it from the dialed address.
func ClientTLSConfig(pool *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		RootCAs:    pool,
		ServerName: serverName,
		NextProtos: []string{ALPN},
		MinVersion: tls.VersionTLS13,
	}
}

// HostsFromAddrs returns the host parts of "host:port" strings (a string
// without a port is taken as a host), deduplicated in order of first
// appearance. An unspecified or empty host (0.0.0.0, ::, ":9092") stands
// for every address of the machine, so it expands to the interface
// addresses and the hostname.
func HostsFromAddrs(addrs ...string) []string {
	var out []string
	add := func(h string) {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		}
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			for _, h := range machineHosts() {
				add(h)
			}
			continue
		}
		add(host)
	}
	return out
}

// machineHosts lists the interface addresses worth a SAN (link-local ones
// need a zone, which a certificate cannot carry) and the hostname.
func machineHosts() []string {
	var hosts []string
	if ifAddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifAddrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				continue
			}
			hosts = append(hosts, ip.String())
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	return hosts
}

// normalizeHosts returns the SANs a leaf must carry: defaultHosts plus
// hosts, in canonical form (unmapped IPs without zone, lower-case names),
// without duplicates. Unspecified IPs are dropped: no client dials them.
func normalizeHosts(hosts []string) []string {
	out := slices.Clone(defaultHosts)
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if ip, err := netip.ParseAddr(h); err == nil {
			ip = ip.Unmap().WithZone("")
			if ip.IsUnspecified() {
				continue
			}
			h = ip.String()
		} else {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
		}
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func ensureCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certPEM, certErr := os.ReadFile(certPath)
	switch {
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("read CA key: %w", keyErr)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("read CA certificate: %w", certErr)
	case certErr == nil && keyErr != nil:
		// Clients may trust this CA: making a new one would lock them out.
		return nil, nil, fmt.Errorf("%s exists but %s is missing: restore the key, or remove both to start a new CA", certPath, keyPath)
	}

	var key *ecdsa.PrivateKey
	if keyErr == nil {
		k, err := parseECKey(keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", keyPath, err)
		}
		key = k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate CA key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, fmt.Errorf("encode CA key: %w", err)
		}
		// The key goes first: a crash before the certificate is written
		// leaves a key that the next start completes with a certificate.
		if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, nil, err
		}
		key = k
	}

	if certErr == nil {
		cert, err := parseCert(certPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", certPath, err)
		}
		if !cert.IsCA {
			return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
		}
		if !publicKeyMatches(cert, &key.PublicKey) {
			return nil, nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
		}
		return cert, key, nil
	}

	// Never written before (or only the key was): nobody can trust it yet.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"eddy"}, CommonName: "eddy node CA " + keyID(&key.PublicKey)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return cert, key, nil
}

// ensureLeaf returns the node certificate, issuing a new one (with a new
// key) when the existing one is missing, unreadable or not fit for hosts.
func ensureLeaf(dir string, ca *x509.Certificate, caKey crypto.Signer, hosts []string, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile)
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && leafFits(cert.Leaf, ca, hosts, now) {
		return cert, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate node key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"eddy"}, CommonName: leafName(hosts)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(leafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter // a leaf outliving its CA would not verify anyway
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("encode node key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	// Key first: a crash in between leaves a pair that does not match,
	// which the next start detects and re-issues.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load new node certificate: %w", err)
	}
	return cert, nil
}

// leafFits reports whether leaf is signed by ca, usable as server and
// client for more than leafRenewal, and valid for every host.
func leafFits(leaf, ca *x509.Certificate, hosts []string, now time.Time) bool {
	if leaf == nil || now.Add(leafRenewal).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return false
	}
	if leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			if !slices.ContainsFunc(leaf.IPAddresses, func(got net.IP) bool {
				a, ok := netip.AddrFromSlice(got)
				return ok && a.Unmap() == ip
			}) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, h) {
			// An exact SAN, not a wildcard match: this CA issued the leaf
			// itself and never issues wildcards.
			return false
		}
	}
	return true
}

// leafName picks the first host a human would recognise as the node.
func leafName(hosts []string) string {
	for _, h := range hosts {
		if !slices.Contains(defaultHosts, h) {
			return h
		}
	}
	return "eddy node"
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseECKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", key)
	}
	return ec, nil
}

func publicKeyMatches(cert *x509.Certificate, pub *ecdsa.PublicKey) bool {
	certPub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && certPub.Equal(pub)
}

func randomSerial() *big.Int {
	// 128 random bits; rand.Int only fails when the reader does, and
	// crypto/rand's reader does not return errors.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n
}

// keyID tells CAs of different nodes apart in certificate viewers.
func keyID(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return fmt.Sprintf("%x", sum[:4])
}

// writeFileAtomic replaces path with data so that readers and crashes see
// either the old or the new file, never a part of it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600; widen only after the content is in,
	// so a key is never readable by others even for a moment.
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable; best effort
		_ = d.Close()
	}
	return nil
}
