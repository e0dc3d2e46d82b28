package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestEnsureNodeTLSCreatesMaterial(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	n, err := EnsureNodeTLS(dir, []string{"10.1.2.3", "Edge-7.Example.", "[fe80::1%eth0]", "0.0.0.0"})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, CACertFile), n.CAFile)

	for name, perm := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600, NodeCertFile: 0o644, NodeKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, perm, fi.Mode().Perm(), name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 4, "temporary files left behind")

	ca, err := parseCert(readFile(t, n.CAFile))
	require.NoError(t, err)
	require.True(t, ca.IsCA)
	caPub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok && caPub.Curve == elliptic.P256(), "CA key is not P-256")
	require.True(t, ca.NotAfter.After(time.Now().Add(9*365*24*time.Hour)), "CA expires %s", ca.NotAfter)

	leaf := n.Certificate.Leaf
	require.True(t, leaf != nil, "Certificate.Leaf not set")
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	require.Equal(t, []string{"localhost", "edge-7.example"}, leaf.DNSNames)
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	require.Equal(t, []string{"127.0.0.1", "::1", "10.1.2.3", "fe80::1"}, ips)
	require.True(t, leaf.NotAfter.After(time.Now().Add(360*24*time.Hour)), "leaf expires %s", leaf.NotAfter)
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "10.1.2.3", "edge-7.example"} {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:   host,
			Roots:     n.CAPool,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		require.NoError(t, err, host)
	}
}

func TestEnsureNodeTLSReissuesLeafAndKeepsCA(t *testing.T) {
	dir := t.TempDir()
	_, err := EnsureNodeTLS(dir, []string{"127.0.0.1"})
	require.NoError(t, err)
	caCert, caKey := readFile(t, filepath.Join(dir, CACertFile)), readFile(t, filepath.Join(dir, CAKeyFile))
	leaf1 := readFile(t, filepath.Join(dir, NodeCertFile))

	// Same hosts: nothing changes.
	_, err = EnsureNodeTLS(dir, []string{"127.0.0.1", "localhost"})
	require.NoError(t, err)
	require.Equal(t, leaf1, readFile(t, filepath.Join(dir, NodeCertFile)))

	// A new host: a new leaf from the same CA.
	n, err := EnsureNodeTLS(dir, []string{"127.0.0.1", "192.0.2.7"})
	require.NoError(t, err)
	leaf2 := readFile(t, filepath.Join(dir, NodeCertFile))
	require.NotEqual(t, leaf1, leaf2)
	require.True(t, slices.ContainsFunc(n.Certificate.Leaf.IPAddresses, func(ip net.IP) bool { return ip.String() == "192.0.2.7" }))
	require.Equal(t, caCert, readFile(t, filepath.Join(dir, CACertFile)))
	require.Equal(t, caKey, readFile(t, filepath.Join(dir, CAKeyFile)))

	// A leaf about to expire is renewed.
	ca, err := parseCert(caCert)
	require.NoError(t, err)
	key, err := parseECKey(caKey)
	require.NoError(t, err)
	hosts := normalizeHosts([]string{"127.0.0.1", "192.0.2.7"})
	_, err = ensureLeaf(dir, ca, key, hosts, time.Now().Add(370*24*time.Hour))
	require.NoError(t, err)
	require.NotEqual(t, leaf2, readFile(t, filepath.Join(dir, NodeCertFile)))
	require.Equal(t, caCert, readFile(t, filepath.Join(dir, CACertFile)))

	// A leaf from another CA (a copied directory) is replaced.
	other := t.TempDir()
	_, err = EnsureNodeTLS(other, nil)
	require.NoError(t, err)
	for _, f := range []string{NodeCertFile, NodeKeyFile} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), readFile(t, filepath.Join(other, f)), 0o600))
	}
	n, err = EnsureNodeTLS(dir, nil)
	require.NoError(t, err)
	require.NoError(t, n.Certificate.Leaf.CheckSignatureFrom(ca))
}

func TestEnsureNodeTLSNeverReplacesCA(t *testing.T) {
	dir := t.TempDir()
	_, err := EnsureNodeTLS(dir, nil)
	require.NoError(t, err)
	caCert := readFile(t, filepath.Join(dir, CACertFile))
	caKey := readFile(t, filepath.Join(dir, CAKeyFile))

	// Without the key the CA cannot sign; replacing it would lock out
	// every client that trusts it. Refuse.
	require.NoError(t, os.Remove(filepath.Join(dir, CAKeyFile)))
	require.NoError(t, os.Remove(filepath.Join(dir, NodeCertFile)))
	_, err = EnsureNodeTLS(dir, nil)
	require.ErrorContains(t, err, CAKeyFile)
	require.Equal(t, caCert, readFile(t, filepath.Join(dir, CACertFile)))

	// A key without its certificate (a crash between the two writes) is
	// completed, not replaced.
	require.NoError(t, os.WriteFile(filepath.Join(dir, CAKeyFile), caKey, 0o600))
	require.NoError(t, os.Remove(filepath.Join(dir, CACertFile)))
	n, err := EnsureNodeTLS(dir, nil)
	require.NoError(t, err)
	require.Equal(t, caKey, readFile(t, filepath.Join(dir, CAKeyFile)))
	key, err := parseECKey(caKey)
	require.NoError(t, err)
	ca, err := parseCert(readFile(t, n.CAFile))
	require.NoError(t, err)
	require.True(t, publicKeyMatches(ca, &key.PublicKey))

	// Garbage is an error, not a reason to start over.
	require.NoError(t, os.WriteFile(filepath.Join(dir, CACertFile), []byte("junk"), 0o644))
	_, err = EnsureNodeTLS(dir, nil)
	require.ErrorContains(t, err, CACertFile)
}

func TestTLSOverTCPVerifiesAgainstNodeCA(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	n, err := EnsureNodeTLS(dir, []string{"127.0.0.1"})
	require.NoError(t, err)
	other, err := EnsureNodeTLS(t.TempDir(), []string{"127.0.0.1"})
	require.NoError(t, err)

	srv, err := ListenTCP("127.0.0.1:0", n.ServerConfig(), ServerConfig{Name: "kafka", Handler: newTestHandler(), Logger: testLogger(t)})
	require.NoError(t, err)
	ts := &testServer{kind: "tcp+tls", srv: srv, errc: make(chan error, 1)}
	go func() { ts.errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() { ts.stop(t) })

	pool, err := LoadCAPool(n.CAFile)
	require.NoError(t, err)
	otherPool, err := LoadCAPool(other.CAFile)
	require.NoError(t, err)

	dial := func(conf *tls.Config) (*tls.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := tls.Dialer{Config: conf}
		c, err := d.DialContext(ctx, "tcp", ts.addr())
		if err != nil {
			return nil, err
		}
		return c.(*tls.Conn), nil
	}

	conn, err := dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	require.NoError(t, err)
	send(t, conn, "info")
	require.Equal(t, "tcp kafka "+conn.LocalAddr().String()+" true", recv(t, conn))
	require.NoError(t, conn.Close())

	_, err = dial(&tls.Config{RootCAs: otherPool, ServerName: "127.0.0.1"})
	require.ErrorContains(t, err, "certificate signed by unknown authority")

	// mTLS: a client certificate from the node CA is accepted, one from
	// another CA is refused.
	conn, err = dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{n.Certificate}})
	require.NoError(t, err)
	send(t, conn, "echo:mtls")
	require.Equal(t, "mtls", recv(t, conn))
	require.NoError(t, conn.Close())

	// Go's client would quietly send no certificate not issued by a CA
	// the server names; force it, as another client might.
	conn, err = dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other.Certificate, nil }})
	if err == nil {
		// TLS 1.3 reports the client certificate's rejection on first read.
		send(t, conn, "echo:x")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = ReadFrame(conn, nil, 0)
		_ = conn.Close()
	}
	require.ErrorContains(t, err, "certificate")
}

func TestLoadCAPool(t *testing.T) {
	_, err := LoadCAPool(filepath.Join(t.TempDir(), "missing.crt"))
	require.Error(t, err)
	junk := filepath.Join(t.TempDir(), "junk.crt")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o644))
	_, err = LoadCAPool(junk)
	require.ErrorContains(t, err, "no PEM certificate")
}

func TestClientTLSConfig(t *testing.T) {
	c := ClientTLSConfig(testNodeTLS(t).CAPool, "broker-1")
	require.Equal(t, []string{ALPN}, c.NextProtos)
	require.Equal(t, uint16(tls.VersionTLS13), c.MinVersion)
	require.Equal(t, "broker-1", c.ServerName)
}

func TestHostsFromAddrs(t *testing.T) {
	got := HostsFromAddrs("127.0.0.1:9092", "localhost:9644", "127.0.0.1:7100", "[::1]:9092", "broker-3", "[2001:db8::1]")
	require.Equal(t, []string{"127.0.0.1", "localhost", "::1", "broker-3", "2001:db8::1"}, got)

	hostname, err := os.Hostname()
	require.NoError(t, err)
	for _, addr := range []string{"0.0.0.0:9092", "[::]:9092", ":9092"} {
		got := HostsFromAddrs(addr)
		require.True(t, slices.Contains(got, "127.0.0.1"), "%s: %v lacks the loopback address", addr, got)
		require.True(t, slices.Contains(got, hostname), "%s: %v lacks the hostname", addr, got)
		require.True(t, !slices.Contains(got, "0.0.0.0") && !slices.Contains(got, "::"), "%s: %v", addr, got)
	}
}

func TestNormalizeHosts(t *testing.T) {
	got := normalizeHosts([]string{"::ffff:10.0.0.1", "LOCALHOST", " a.example. ", "", "::", "[::1]"})
	require.Equal(t, []string{"localhost", "127.0.0.1", "::1", "10.0.0.1", "a.example"}, got)
}

// TestClusterTLSSameCAEverywhere: nodes sharing a secret derive the same
// CA certificate, byte for byte, and a client trusting one node's ca.crt
// verifies another node's leaf.
func TestClusterTLSSameCAEverywhere(t *testing.T) {
	secret := []byte("a shared secret of some length")
	a, err := EnsureClusterTLS(t.TempDir(), secret, []string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EnsureClusterTLS(t.TempDir(), secret, []string{"10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	caA, _ := os.ReadFile(a.CAFile)
	caB, _ := os.ReadFile(b.CAFile)
	if !bytes.Equal(caA, caB) {
		t.Fatal("two nodes with one secret derived different CA certificates")
	}
	pool, err := LoadCAPool(a.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	leafB, err := x509.ParseCertificate(b.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leafB.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.2"}); err != nil {
		t.Fatalf("node a's CA does not verify node b: %v", err)
	}
	other, err := EnsureClusterTLS(t.TempDir(), []byte("another secret of some length"), nil)
	if err != nil {
		t.Fatal(err)
	}
	caOther, _ := os.ReadFile(other.CAFile)
	if bytes.Equal(caA, caOther) {
		t.Fatal("different secrets gave the same CA")
	}
	if _, err := EnsureClusterTLS(t.TempDir(), []byte("short"), nil); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}
