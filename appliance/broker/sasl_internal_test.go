package broker

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/transport"
)

// principalProbe records the principal of the first request of each
// connection, as handlers see it through reqCtx.principal.
type principalProbe struct{ got chan string }

func (p principalProbe) ServeFrame(_ context.Context, c *transport.ConnInfo, _ []byte) transport.Responder {
	name := "(none)"
	if _, ok := c.Principal(); ok {
		name = (&reqCtx{conn: c}).principal()
	}
	p.got <- name
	return nil
}

func (p principalProbe) ServeOversized(context.Context, *transport.ConnInfo, []byte, int) transport.Responder {
	return nil
}

// TestConnectedPrincipal: over a real TLS handshake, a verified client
// certificate makes the connection User:<CN>; without one a listener
// without SASL makes it anonymous, and a SASL listener leaves it
// unauthenticated until SASL succeeds.
func TestConnectedPrincipal(t *testing.T) {
	dir := t.TempDir()
	node, err := transport.EnsureNodeTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := transport.IssueClientCert(dir, nil, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{auth: newAuthenticator(Auth{SASL: map[string]bool{ListenerKafka: true}},
		func(string, string) *meta.ScramCredential { return nil }, zerolog.Nop())}

	for _, tc := range []struct {
		listener string
		cert     bool
		want     string
	}{
		{ListenerQUIC, true, "User:alice"},
		{ListenerQUIC, false, AnonymousPrincipal},
		{ListenerKafka, true, "User:alice"},
		{ListenerKafka, false, "(none)"},
	} {
		probe := principalProbe{got: make(chan string, 1)}
		srv, err := transport.ListenTCP("127.0.0.1:0", node.ServerConfigFor(transport.ClientCertOptional),
			transport.ServerConfig{Name: tc.listener, Handler: probe, OnConnect: b.Connected, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(context.Background())
		conf := &tls.Config{RootCAs: node.CAPool, ServerName: "127.0.0.1"}
		if tc.cert {
			conf.Certificates = []tls.Certificate{clientCert}
		}
		conn, err := tls.Dial("tcp", srv.Addr().String(), conf)
		if err != nil {
			t.Fatal(err)
		}
		// Any frame: the probe only looks at the connection.
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, 4)); err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte{0, 18, 0, 0})
		select {
		case got := <-probe.got:
			if got != tc.want {
				t.Errorf("listener %s, cert %v: principal %q, want %q", tc.listener, tc.cert, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("listener %s, cert %v: no frame served", tc.listener, tc.cert)
		}
		conn.Close()
		srv.Close()
	}
}

// TestDecoyCredential: a user that does not exist gets the same salt at
// every attempt (as a real user would), and no password matches it.
func TestDecoyCredential(t *testing.T) {
	a := newAuthenticator(Auth{}, func(string, string) *meta.ScramCredential { return nil }, zerolog.Nop())
	c1, c2 := a.decoyCredential("ghost"), a.decoyCredential("ghost")
	if string(c1.Salt) != string(c2.Salt) || string(c1.Salt) == string(a.decoyCredential("other").Salt) {
		t.Fatal("decoy salts are not stable per user")
	}
	for _, pw := range []string{"", "ghost", "password"} {
		if c1.VerifyPassword(meta.ScramSHA256, []byte(pw)) {
			t.Fatalf("password %q matches a decoy", pw)
		}
	}
	if _, err := a.plain([]byte("\x00ghost\x00x")); err == nil {
		t.Fatal("PLAIN login as a user that does not exist")
	}
	if _, err := a.plain([]byte("carol\x00ghost\x00x")); err == nil {
		t.Fatal("PLAIN with a foreign authorization id")
	}
	if _, err := a.plain([]byte("no separators")); err == nil {
		t.Fatal("malformed PLAIN token accepted")
	}
}

// TestScramRFC7677: the server side of RFC 7677's SCRAM-SHA-256 example
// exchange accepts its client proof and answers its server signature; a
// librdkafka-style nonce (the client nonce repeated in front) is
// accepted, a nonce that does not end with the server's is not, and a
// wrong proof is errScramProof.
func TestScramRFC7677(t *testing.T) {
	h, _ := meta.ScramHash(meta.ScramSHA256)
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := meta.NewScramCredential(meta.ScramSHA256, []byte("pencil"), salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	const (
		cnonce      = "rOprNGfwEbeRWgbNEkqO"
		nonce       = cnonce + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
		clientFirst = "n,,n=user,r=" + cnonce
		serverFirst = "r=" + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinal = "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	start := func() *scramConv {
		conv, first, err := scramFirst(h, clientFirst, func(user string) *meta.ScramCredential {
			if user != "user" {
				t.Fatalf("looked up %q", user)
			}
			return cred
		})
		if err != nil || !strings.HasPrefix(first, "r="+cnonce) || !strings.HasSuffix(first, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") {
			t.Fatalf("server-first %q, %v", first, err)
		}
		// The RFC's server nonce instead of a random one.
		conv.nonce, conv.s1 = nonce, serverFirst
		return conv
	}
	if got, err := start().final(clientFinal); err != nil || got != serverFinal {
		t.Fatalf("server-final %q, %v; want %q", got, err, serverFinal)
	}
	// librdkafka's nonce: its proof covers the nonce as sent, so take the
	// proof a client would compute for it.
	rdNonce := cnonce + nonce
	withoutProof := "c=biws,r=" + rdNonce
	authMsg := "n=user,r=" + cnonce + "," + serverFirst + "," + withoutProof
	salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	clientKey := hmacOf(h, salted, []byte("Client Key"))
	sig := hmacOf(h, cred.StoredKey, []byte(authMsg))
	for i := range clientKey {
		clientKey[i] ^= sig[i]
	}
	if _, err := start().final(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(clientKey)); err != nil {
		t.Fatalf("librdkafka-style nonce: %v", err)
	}
	if _, err := start().final("c=biws,r=" + cnonce + "other,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="); err == nil || errors.Is(err, errScramProof) {
		t.Fatalf("foreign nonce: %v", err)
	}
	if _, err := start().final("c=biws,r=" + nonce + ",p=AAAAZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="); !errors.Is(err, errScramProof) {
		t.Fatalf("wrong proof: %v", err)
	}
	for _, bad := range []string{"", "n", "p=tls-unique,,n=u,r=x", "n,,r=x", "n,,n=,r=x", "n,,n=a=5,r=x", "n,,n=u,r=x,tokenauth=true", "n,b,n=u,r=x", "n,,m=1,n=u,r=x"} {
		if _, _, err := scramFirst(h, bad, func(string) *meta.ScramCredential { return cred }); err == nil {
			t.Errorf("client-first %q accepted", bad)
		}
	}
}

// FuzzScram feeds arbitrary client messages to both SCRAM steps: they
// return errors, never panic.
func FuzzScram(f *testing.F) {
	f.Add("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	f.Add("n,a=u=2Cx,n=u=3Dx,r=abc,ext=1", "c=bixx,p=")
	h, _ := meta.ScramHash(meta.ScramSHA512)
	cred, _ := meta.NewScramCredential(meta.ScramSHA512, []byte("pw"), []byte("salt"), 4096)
	f.Fuzz(func(t *testing.T, first, final string) {
		conv, _, err := scramFirst(h, first, func(string) *meta.ScramCredential { return cred })
		if err != nil {
			return
		}
		_, _ = conv.final(final)
	})
}
