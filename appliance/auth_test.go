package appliance_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
	"github.com/eddybroker/eddy/transport"
)

// TestUserCreatedOnOneNodeLogsInOnAnother: in a three-node cluster whose
// Kafka listeners require SASL over TLS and whose admin APIs serve HTTPS,
// the bootstrap user from auth.users exists once though every node
// created it at start; a user added through node 1 logs in at node 3
// without a restart, and a deleted one no longer does.
func TestUserCreatedOnOneNodeLogsInOnAnother(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "admin.pw")
	if err := os.WriteFile(pwFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := nodetest.StartCluster(t, 3, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.KafkaTLS = true
		c.Auth.Kafka = nodecfg.AuthSASL
		c.Auth.AdminTLS = true
		c.Auth.Users = []nodecfg.UserConfig{{Name: "admin", PasswordFile: pwFile}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dial := func(n *nodetest.Node, mech, user, pass string) (*sdk.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return sdk.Dial(dctx, append(n.SDKOptions(sdk.TCP), sdk.WithSASL(mech, user, pass))...)
	}
	admin, err := dial(nodes[0], sdk.SASLScramSHA512, "admin", "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.Admin().AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Password: "carol-pw"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("add carol at node 1: %v %v", err, res.Error())
	}
	added := time.Now()
	// Node 3 applies the change within moments: wait for it, bounded.
	var c *sdk.Client
	waitFor(t, "carol to log in at node 3", 10*time.Second, func() bool {
		c, err = dial(nodes[2], sdk.SASLScramSHA256, "carol", "carol-pw")
		return err == nil
	})
	c.Close()
	t.Logf("carol logged in at node 3 %v after node 1 acknowledged her", time.Since(added).Round(time.Millisecond))

	desc, err := admin.Admin().DescribeUserSCRAMs(ctx)
	if err != nil || len(desc) != 2 {
		t.Fatalf("users after bootstrap on three nodes: %v %v", desc, err)
	}
	if res, err := admin.Admin().AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha256}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("delete carol: %v %v", err, res.Error())
	}
	waitFor(t, "carol to be refused at node 2", 10*time.Second, func() bool {
		_, err := dial(nodes[1], sdk.SASLScramSHA256, "carol", "carol-pw")
		return errors.Is(err, kerr.SaslAuthenticationFailed)
	})

	// The admin APIs serve HTTPS, and the nodes reach each other's: every
	// node sees the other two alive.
	a := &sdk.ClusterAdmin{URL: "https://" + nodes[1].Addrs().Admin, HTTP: httpsClient(t, nodes[1], nil)}
	waitFor(t, "every node alive through the HTTPS admin APIs", 15*time.Second, func() bool {
		ns, err := a.Nodes(ctx)
		if err != nil || len(ns) != 3 {
			return false
		}
		for _, n := range ns {
			if n.State != "alive" {
				return false
			}
		}
		return true
	})
}

// httpsClient trusts n's CA and presents cert, when given.
func httpsClient(t *testing.T, n *nodetest.Node, cert *tls.Certificate) *http.Client {
	t.Helper()
	pool, err := transport.LoadCAPool(n.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// TestAdminAuthentication: with an admin token and an HTTPS admin
// listener, a request is let in by the token or by a client certificate
// signed by the node's CA, and refused with neither, also from loopback.
func TestAdminAuthentication(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.AdminToken = "tok-123"
		c.Auth.AdminTLS = true
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	certPEM, keyPEM, err := transport.IssueClientCert(filepath.Join(n.Config.DataDir, "tls"), nil, "ops", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + n.Addrs().Admin
	for _, tc := range []struct {
		name  string
		token string
		cert  *tls.Certificate
		want  int
	}{
		{"token", "tok-123", nil, http.StatusOK},
		{"client certificate", "", &cert, http.StatusOK},
		{"wrong token", "nope", &cert, http.StatusUnauthorized},
		{"nothing, from loopback", "", nil, http.StatusUnauthorized},
	} {
		a := &sdk.ClusterAdmin{URL: url, Token: tc.token, HTTP: httpsClient(t, n, tc.cert)}
		_, err := a.Nodes(ctx)
		got := http.StatusOK
		if ae, ok := errors.AsType[*sdk.AdminError](err); ok {
			got = ae.StatusCode
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	// Plain HTTP is not served on an HTTPS admin listener.
	if _, err := (&sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin, Token: "tok-123"}).Nodes(ctx); err == nil {
		t.Error("plain HTTP answered on the HTTPS admin listener")
	}
}
