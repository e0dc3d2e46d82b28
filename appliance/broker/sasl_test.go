package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
	"github.com/eddybroker/eddy/transport"
)

// startSASLNode starts a node whose Kafka TCP listener (over TLS) requires
// SASL, with the user admin (password "admin-secret") from auth.users.
func startSASLNode(t *testing.T, opts ...nodetest.Option) *nodetest.Node {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "admin.pw")
	if err := os.WriteFile(pwFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return nodetest.Start(t, append([]nodetest.Option{nodetest.WithConfig(func(c *nodecfg.Config) {
		c.KafkaTLS = true
		c.Auth.Kafka = nodecfg.AuthSASL
		c.Auth.Users = []nodecfg.UserConfig{{Name: "admin", PasswordFile: pwFile}}
	})}, opts...)...)
}

func dialSASL(ctx context.Context, n *nodetest.Node, mech, user, pass string) (*sdk.Client, error) {
	return sdk.Dial(ctx, append(n.SDKOptions(sdk.TCP), sdk.WithSASL(mech, user, pass))...)
}

// TestSASLMechanisms: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 log in with
// the right password and can produce; a wrong password, or an unknown
// user, is refused with SASL_AUTHENTICATION_FAILED; a client without SASL
// gets no request through.
func TestSASLMechanisms(t *testing.T) {
	n := startSASLNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mech := range []string{sdk.SASLPlain, sdk.SASLScramSHA256, sdk.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, err := dialSASL(ctx, n, mech, "admin", "admin-secret")
			if err != nil {
				t.Fatalf("right password refused: %v", err)
			}
			defer c.Close()
			if err := c.Produce(ctx, &kgo.Record{Topic: "sasl-" + strings.ToLower(mech), Value: []byte("x")}); err != nil {
				t.Fatalf("produce after login: %v", err)
			}
			for _, bad := range []struct{ user, pass string }{{"admin", "wrong"}, {"nobody", "admin-secret"}} {
				short, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err = dialSASL(short, n, mech, bad.user, bad.pass)
				cancel()
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("%s/%s: got %v, want SASL_AUTHENTICATION_FAILED", bad.user, bad.pass, err)
				}
			}
		})
	}
	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if c, err := sdk.Dial(short, n.SDKOptions(sdk.TCP)...); err == nil {
		c.Close()
		t.Fatal("a client without SASL got a request through the SASL listener")
	}
}

// TestSASLWrongPasswordClosesConnection: after SASL_AUTHENTICATION_FAILED
// the broker closes the connection, so a client gets one try per
// connection. It also covers requests before authentication, which close
// the connection without an answer, and ApiVersions, which is answered.
func TestSASLWrongPasswordClosesConnection(t *testing.T) {
	n := startSASLNode(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.KafkaTLS = false }))

	r := dialRaw(t, n.Addrs().Kafka)
	if resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before login: error %d", resp.ErrorCode)
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "GSSAPI"
	resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 3 {
		t.Fatalf("GSSAPI handshake: code %d, mechanisms %v", resp.ErrorCode, resp.SupportedMechanisms)
	}
	hs.Mechanism = "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("PLAIN handshake: code %d", resp.ErrorCode)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 2
	auth.SASLAuthBytes = []byte("\x00admin\x00wrong")
	ar := r.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code || ar.ErrorMessage == nil || !strings.Contains(*ar.ErrorMessage, "Invalid username or password") {
		t.Fatalf("wrong password: code %d, message %v", ar.ErrorCode, ar.ErrorMessage)
	}
	expectClosed(t, r)

	// A request before authentication closes the connection unanswered.
	r = dialRaw(t, n.Addrs().Kafka)
	r.write(r.frame(kmsg.NewPtrMetadataRequest()))
	expectClosed(t, r)
}

func expectClosed(t *testing.T, r *rawConn) {
	t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := r.c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection still open: read %d bytes, err %v", n, err)
	}
}

// TestSASLHandshakeV0RawPlain: clients older than Kafka 1.0 send SASL
// tokens as bare frames after a v0 handshake; the broker answers PLAIN
// with an empty frame and the connection is then authenticated.
func TestSASLHandshakeV0RawPlain(t *testing.T) {
	n := startSASLNode(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.KafkaTLS = false }))
	r := dialRaw(t, n.Addrs().Kafka)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 0, "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("v0 handshake: code %d", resp.ErrorCode)
	}
	token := []byte("\x00admin\x00admin-secret")
	r.write(binary.BigEndian.AppendUint32(nil, uint32(len(token))))
	r.write(token)
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
		t.Fatalf("raw PLAIN answer: size %v, err %v; want an empty frame", size, err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	if resp := r.roundTrip(meta).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		t.Fatalf("metadata after raw login: %d brokers", len(resp.Brokers))
	}

	// A wrong raw password closes the connection without an answer.
	r = dialRaw(t, n.Addrs().Kafka)
	r.roundTrip(hs)
	bad := []byte("\x00admin\x00nope")
	r.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(bad))), bad...))
	expectClosed(t, r)
}

// TestScramCredentialAPIs: AlterUserScramCredentials creates, changes and
// deletes users that can then (no longer) log in, at once;
// DescribeUserScramCredentials lists mechanisms and iterations, and Kafka's
// per-user errors come back for bad requests.
func TestScramCredentialAPIs(t *testing.T) {
	n := startSASLNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := dialSASL(ctx, n, sdk.SASLScramSHA512, "admin", "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := admin.Admin()

	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "pw-1"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "pw-b"},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("create users: %v %v", err, res.Error())
	}
	alice, err := dialSASL(ctx, n, sdk.SASLScramSHA256, "alice", "pw-1")
	if err != nil {
		t.Fatalf("new user cannot log in: %v", err)
	}
	alice.Close()
	// PLAIN checks against whichever SCRAM credential the user has.
	if c, err := dialSASL(ctx, n, sdk.SASLPlain, "bob", "pw-b"); err != nil {
		t.Fatalf("PLAIN against a SCRAM-SHA-512 credential: %v", err)
	} else {
		c.Close()
	}
	// bob has no SCRAM-SHA-256 credential.
	if _, err := dialSASL(ctx, n, sdk.SASLScramSHA256, "bob", "pw-b"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("SCRAM-SHA-256 without such a credential: %v", err)
	}

	desc, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := desc["alice"].CredInfos; len(got) != 1 || got[0].Mechanism != kadm.ScramSha256 || got[0].Iterations != 8192 {
		t.Fatalf("alice described as %v", got)
	}
	if _, ok := desc["admin"]; !ok || len(desc) != 3 {
		t.Fatalf("describe all: %v", desc)
	}
	desc, err = adm.DescribeUserSCRAMs(ctx, "carol")
	if err != nil || !errors.Is(desc["carol"].Err, kerr.ResourceNotFound) {
		t.Fatalf("describe missing user: %v %v", err, desc["carol"].Err)
	}

	// Changing a password takes effect for the next login.
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Password: "pw-2"}}); err != nil || res.Error() != nil {
		t.Fatalf("change password: %v %v", err, res.Error())
	}
	if _, err := dialSASL(ctx, n, sdk.SASLScramSHA256, "alice", "pw-1"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("old password after change: %v", err)
	}
	// Deleting the last credential deletes the user.
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %v", err, res.Error())
	}
	if _, err := dialSASL(ctx, n, sdk.SASLScramSHA256, "alice", "pw-2"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user logged in: %v", err)
	}

	// Kafka's per-user errors, straight from the wire.
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "alice", 1
	up := func(name string, mech int8, iters int32, salt, salted []byte) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iters, salt, salted
		return u
	}
	key32 := make([]byte, 32)
	req.Deletions = append(req.Deletions, del)
	req.Upsertions = append(req.Upsertions,
		up("few", 1, 100, []byte("salt"), key32),
		up("mech", 9, 4096, []byte("salt"), key32),
		up("short", 2, 4096, []byte("salt"), key32), // SHA-512 wants 64 bytes
		up("twice", 1, 4096, []byte("salt"), key32),
		up("twice", 1, 4096, []byte("salt"), key32),
		up("", 1, 4096, []byte("salt"), key32),
	)
	kresp, err := req.RequestWith(ctx, admin.Kgo())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{
		"alice": kerr.ResourceNotFound.Code, "few": kerr.UnacceptableCredential.Code,
		"mech": kerr.UnsupportedSaslMechanism.Code, "short": kerr.UnacceptableCredential.Code,
		"twice": kerr.DuplicateResource.Code, "": kerr.UnacceptableCredential.Code,
	}
	if len(kresp.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(kresp.Results), len(want), kresp.Results)
	}
	for _, r := range kresp.Results {
		if r.ErrorCode != want[r.User] || r.ErrorMessage == nil {
			t.Errorf("user %q: code %d (message %v), want %d", r.User, r.ErrorCode, r.ErrorMessage, want[r.User])
		}
	}
}

// TestMTLSQUIC: a QUIC listener with auth: mtls refuses a client without a
// certificate at the handshake, and lets in one with a certificate from
// `eddy cert client` (signed by the node's CA).
func TestMTLSQUIC(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Auth.QUIC = nodecfg.AuthMTLS }))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	short, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if c, err := sdk.Dial(short, n.SDKOptions(sdk.QUIC)...); err == nil {
		c.Close()
		t.Fatal("a client without a certificate reached the mTLS QUIC listener")
	}
	certPEM, keyPEM, err := transport.IssueClientCert(filepath.Join(n.Config.DataDir, "tls"), nil, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "alice.crt"), filepath.Join(dir, "alice.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c := n.Client(t, sdk.QUIC, sdk.WithClientCert(certFile, keyFile))
	if err := c.Produce(ctx, &kgo.Record{Topic: "mtls", Value: []byte("x")}); err != nil {
		t.Fatalf("produce with a client certificate: %v", err)
	}
}

// TestSASLOverQUIC: SASL works on the QUIC listener too (auth.quic: sasl),
// each QUIC stream logging in as its own Kafka connection.
func TestSASLOverQUIC(t *testing.T) {
	n := startSASLNode(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Auth.QUIC = nodecfg.AuthSASL }))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, append(n.SDKOptions(sdk.QUIC), sdk.WithSASL(sdk.SASLScramSHA256, "admin", "admin-secret"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Produce(ctx, &kgo.Record{Topic: "sasl-quic", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if c, err := sdk.Dial(short, n.SDKOptions(sdk.QUIC)...); err == nil {
		c.Close()
		t.Fatal("a client without SASL got through the SASL QUIC listener")
	}
	_, err = sdk.Dial(ctx, append(n.SDKOptions(sdk.QUIC), sdk.WithSASL(sdk.SASLScramSHA512, "admin", "wrong"))...)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password over QUIC: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

// TestAuthenticatedPrincipalsReachACLs: the principal a connection
// authenticated as is the one ACLs judge. With authorization on, a client
// certificate for alice (QUIC, mTLS) may not produce until an ACL allows
// User:alice; a SASL user bob without ALTER on the cluster may neither
// add users nor describe them, and the bootstrap user admin (User:admin,
// a super-user) may.
func TestAuthenticatedPrincipalsReachACLs(t *testing.T) {
	n := startSASLNode(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Auth.QUIC = nodecfg.AuthMTLS
		c.Authorization.Enabled = true
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := dialSASL(ctx, n, sdk.SASLScramSHA512, "admin", "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Admin().CreateTopic(ctx, 1, 1, nil, "alice-topic"); err != nil {
		t.Fatal(err)
	}
	res, err := admin.Admin().AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha256, Password: "bob-pw"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("admin adds bob: %v %v", err, res.Error())
	}

	certPEM, keyPEM, err := transport.IssueClientCert(filepath.Join(n.Config.DataDir, "tls"), nil, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "alice.crt"), filepath.Join(dir, "alice.key")
	os.WriteFile(certFile, certPEM, 0o644)
	os.WriteFile(keyFile, keyPEM, 0o600)
	alice := n.Client(t, sdk.QUIC, sdk.WithClientCert(certFile, keyFile), sdk.WithKgoOptions(kgo.RecordRetries(1)))
	short, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	err = alice.Produce(short, &kgo.Record{Topic: "alice-topic", Value: []byte("x")})
	cancel2()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	acl := kadm.NewACLs().Allow("User:alice").Topics("alice-topic").Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	if rs, err := admin.Admin().CreateACLs(ctx, acl); err != nil || rs[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, rs)
	}
	alice2 := n.Client(t, sdk.QUIC, sdk.WithClientCert(certFile, keyFile))
	if err := alice2.Produce(ctx, &kgo.Record{Topic: "alice-topic", Value: []byte("x")}); err != nil {
		t.Fatalf("alice with an ACL: %v", err)
	}

	bob, err := dialSASL(ctx, n, sdk.SASLScramSHA256, "bob", "bob-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	res, err = bob.Admin().AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "eve", Mechanism: kadm.ScramSha256, Password: "x"}})
	if err == nil {
		err = res["eve"].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("bob adds a user: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	if _, err := bob.Admin().DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("bob describes users: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}

// TestKcatSASL: librdkafka (kcat) logs in over SASL_SSL with each
// mechanism and lists the broker's metadata (librdkafka's SCRAM repeats
// its nonce, which Kafka and eddy accept); with a wrong password it fails
// with an authentication error.
func TestKcatSASL(t *testing.T) {
	kcat := kcatPath(t)
	n := startSASLNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(mech, pass string) (string, error) {
		// A refused kcat retries until its metadata timeout: keep it short.
		cmd := exec.CommandContext(ctx, kcat, "-b", n.Addrs().Kafka, "-L", "-m", "2",
			"-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+n.CAFile(),
			"-X", "sasl.mechanism="+mech, "-X", "sasl.username=admin", "-X", "sasl.password="+pass)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if out, err := run(mech, "admin-secret"); err != nil || !strings.Contains(out, "1 brokers") {
			t.Fatalf("kcat %s: %v\n%s", mech, err, out)
		}
	}
	if out, err := run("SCRAM-SHA-256", "wrong"); err == nil || !strings.Contains(out, "SASL authentication error") {
		t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
	}
}
