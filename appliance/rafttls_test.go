package appliance_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/transport"
)

// With cluster_secret, nodes authenticate each other on Raft: a peer
// without a certificate from the cluster CA gets no Raft session, in
// plaintext or in TLS, while one with such a certificate completes the
// handshake.
func TestRaftRequiresClusterCertificate(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1)
	n := nodes[0]
	raftAddr := n.Config.InitialCluster[n.Config.NodeID]
	tlsDir := filepath.Join(n.Config.DataDir, "tls")
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, transport.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	host, _, _ := net.SplitHostPort(raftAddr)

	// A plaintext peer: Dragonboat's own framing, which it would accept
	// without mutual TLS, is refused.
	c, err := net.DialTimeout("tcp", raftAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("AE\x00\x01plaintext raft message"))
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("a plaintext peer got an answer from the Raft listener")
	}
	c.Close()

	// TLS without a client certificate: the server refuses it.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr, &tls.Config{RootCAs: roots, ServerName: host})
	if err == nil {
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on the first read
		tc.Close()
	}
	if err == nil {
		t.Fatal("a peer without a client certificate got a Raft session")
	}

	// A certificate signed by the cluster CA completes the handshake, and
	// the node's certificate is valid for its Raft address.
	certPEM, keyPEM, err := transport.IssueClientCert(tlsDir, []byte(n.Config.ClusterSecret), "peer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr,
		&tls.Config{RootCAs: roots, ServerName: host, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatalf("a peer with the cluster's certificate: %v", err)
	}
	tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("a peer with the cluster's certificate was refused: %v", err)
		}
	}
	tc.Close()
}
