package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/eddybroker/eddy/appliance/broker"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/transport"
)

// clientAuth is what a listener in mode asks of clients at the handshake.
func clientAuth(mode string) transport.ClientAuth {
	if mode == nodecfg.AuthMTLS {
		return transport.ClientCertRequired
	}
	return transport.ClientCertOptional
}

// loadClientCAs sets the CAs client certificates are verified against
// from auth.client_ca; without it they are the node's CA.
func (n *Node) loadClientCAs() error {
	if n.cfg.Auth.ClientCA == "" {
		return nil
	}
	pool, err := transport.LoadCAPool(n.cfg.Auth.ClientCA)
	if err != nil {
		return fmt.Errorf("auth.client_ca: %w", err)
	}
	n.tls.ClientCAs = pool
	return nil
}

// brokerAuth is the broker's view of auth: which listeners run SASL.
func brokerAuth(a nodecfg.AuthConfig) broker.Auth {
	return broker.Auth{
		SASL: map[string]bool{
			broker.ListenerQUIC:  a.QUIC == nodecfg.AuthSASL,
			broker.ListenerKafka: a.Kafka == nodecfg.AuthSASL,
		},
		Mechanisms: a.SASLMechanisms,
	}
}

// adminListener serves HTTPS on ln with auth.admin_tls: the node's
// certificate, and client certificates verified when given.
func (n *Node) adminListener(ln net.Listener) net.Listener {
	if !n.cfg.Auth.AdminTLS {
		return ln
	}
	return tls.NewListener(ln, n.tls.ServerConfigFor(transport.ClientCertOptional))
}

// peerTLS is how this node reaches other nodes' admin APIs with
// auth.admin_tls: it verifies them against the cluster CA and presents
// its own certificate (User:<its name> to them); nil for plain HTTP.
func (n *Node) peerTLS() *tls.Config {
	if !n.cfg.Auth.AdminTLS {
		return nil
	}
	return &tls.Config{
		RootCAs:      n.tls.CAPool,
		Certificates: []tls.Certificate{n.tls.Certificate},
		MinVersion:   tls.VersionTLS12,
	}
}

// peerHTTP is the client for another node's admin API.
func (n *Node) peerHTTP() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = n.peerTLS()
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// ensureUsers creates the users of auth.users that do not exist yet, with
// a credential per SCRAM mechanism. Existing users are left alone: the
// meta shard, not the file, is the truth once a user exists.
func (n *Node) ensureUsers(ctx context.Context) error {
	if len(n.cfg.Auth.Users) == 0 {
		return nil
	}
	st, err := n.host.SyncMeta(ctx)
	if err != nil {
		return fmt.Errorf("auth.users: read users: %w", err)
	}
	for _, u := range n.cfg.Auth.Users {
		if st.Users[u.Name] != nil {
			continue
		}
		pw, err := readPasswordFile(u.PasswordFile)
		if err != nil {
			return fmt.Errorf("auth.users (%s): %w", u.Name, err)
		}
		cmd, err := meta.SetPassword(u.Name, pw, meta.MinScramIterations)
		if err != nil {
			return fmt.Errorf("auth.users (%s): %w", u.Name, err)
		}
		if err := n.host.ProposeMeta(ctx, meta.Command{AlterCredentials: cmd}); err != nil {
			return fmt.Errorf("auth.users (%s): create: %w", u.Name, err)
		}
		n.log.Info().Str("user", u.Name).Msg("created user from auth.users")
	}
	return nil
}

// readPasswordFile reads a password, without one trailing newline.
func readPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("password file %s is empty", path)
	}
	return b, nil
}

// connected establishes a new connection's principal (broker.Connected);
// before the broker exists nothing is served, so it leaves it unset.
func (d *deferredHandler) connected(c *transport.ConnInfo) {
	if b := d.b.Load(); b != nil {
		b.Connected(c)
	}
}
