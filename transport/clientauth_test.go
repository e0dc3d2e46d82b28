package transport

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// TestClientCertRequired: a listener requiring client certificates
// completes the handshake only with a certificate signed by its client
// CA, and ClientCertName reads its common name from the verified chain.
func TestClientCertRequired(t *testing.T) {
	dir := t.TempDir()
	node, err := EnsureNodeTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(dir string, secret []byte) *tls.Certificate {
		certPEM, keyPEM, err := IssueClientCert(dir, secret, "alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	ours, foreign := issue(dir, nil), issue(t.TempDir(), []byte("another-cluster-secret"))

	ln, err := tls.Listen("tcp", "127.0.0.1:0", node.ServerConfigFor(ClientCertRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	names := make(chan string, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			name := "(handshake failed)"
			if tc.Handshake() == nil {
				cs := tc.ConnectionState()
				name, _ = ClientCertName(&cs)
			}
			names <- name
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want string
	}{
		{"no certificate", nil, "(handshake failed)"},
		{"foreign CA", foreign, "(handshake failed)"},
		{"our CA", ours, "alice"},
	} {
		conf := &tls.Config{RootCAs: node.CAPool, ServerName: "127.0.0.1"}
		if tc.cert != nil {
			conf.Certificates = []tls.Certificate{*tc.cert}
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), conf)
		if err == nil {
			c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's handshake
			c.Close()
		}
		if got := <-names; got != tc.want {
			t.Errorf("%s: server saw %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, ok := ClientCertName(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{ours.Leaf}}); ok {
		t.Error("an unverified certificate named somebody")
	}
}

// TestIssueClientCertNeedsTheCAKey: without the CA key (a node of a
// cluster_secret cluster, or another machine) nothing is issued and no CA
// is created.
func TestIssueClientCertNeedsTheCAKey(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := IssueClientCert(dir, nil, "alice", time.Hour); err == nil {
		t.Fatal("issued a certificate without a CA")
	}
	if _, err := LoadCAPool(dir + "/" + CACertFile); err == nil {
		t.Fatal("issuing created a CA")
	}
	if _, _, err := IssueClientCert(dir, []byte("short"), "alice", time.Hour); err == nil {
		t.Fatal("a short cluster secret was accepted")
	}
}
