package broker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/transport"
)

// MechanismPlain is SASL PLAIN (RFC 4616): the password travels to the
// broker, which checks it against the user's stored SCRAM credential.
// Only safe over TLS.
const MechanismPlain = "PLAIN"

// SASLMechanisms are the SASL mechanisms eddy serves, in the order a
// SaslHandshake response offers them.
var SASLMechanisms = []string{meta.ScramSHA512, meta.ScramSHA256, MechanismPlain}

// Auth says how clients authenticate, per listener.
type Auth struct {
	// SASL names the listeners (ListenerQUIC, ListenerKafka) whose
	// connections must authenticate with SASL before any request other
	// than ApiVersions, SaslHandshake and SaslAuthenticate. A connection
	// with a verified client certificate is authenticated by it already.
	SASL map[string]bool
	// Mechanisms are the SASL mechanisms offered; empty means all of
	// SASLMechanisms.
	Mechanisms []string
}

// authenticator runs SASL exchanges for a broker. Safe for concurrent use.
type authenticator struct {
	cfg Auth
	// saslListeners are the listeners cfg.SASL turns on: every frame asks
	// saslOn, which costs a listener without SASL next to nothing.
	saslListeners []string
	creds         func(user, mechanism string) *meta.ScramCredential
	// decoy keys the made-up credentials of users that do not exist, so a
	// login as nobody costs and answers the same as a wrong password.
	decoy []byte
	log   zerolog.Logger

	// conns holds the *saslConn of connections that sent a SaslHandshake,
	// by transport.ConnInfo.ID. saslGate reads it for every frame on a
	// SASL listener, so the read takes no lock.
	conns sync.Map
	// mu serialises begin, and guards saslConn.scram.
	mu sync.Mutex
}

// saslConn is the SASL state of one connection, from its SaslHandshake on.
type saslConn struct {
	mechanism string
	// raw: the handshake was v0, so the tokens that follow are bare frames
	// rather than SaslAuthenticate requests.
	raw bool
	// scram is the conversation in progress of a SCRAM mechanism, after
	// its first message.
	scram *scramConv
	// done: SASL succeeded on this connection; another handshake is
	// ILLEGAL_SASL_STATE. Set after the principal; saslGate reads it from
	// the connection's reader while step runs in its writer.
	done atomic.Bool
}

func newAuthenticator(cfg Auth, creds func(user, mechanism string) *meta.ScramCredential, log zerolog.Logger) *authenticator {
	if len(cfg.Mechanisms) == 0 {
		cfg.Mechanisms = SASLMechanisms
	}
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy) // crypto/rand.Read never fails
	var on []string
	for l, sasl := range cfg.SASL {
		if sasl {
			on = append(on, l)
		}
	}
	return &authenticator{
		cfg: cfg, saslListeners: on, creds: creds, decoy: decoy,
		// Failed logins can come in floods: log a sample.
		log: log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second}),
	}
}

// saslOn reports whether connections on listener must authenticate with
// SASL.
func (a *authenticator) saslOn(listener string) bool {
	return slices.Contains(a.saslListeners, listener)
}

// UserPrincipal is the Kafka principal of a user name.
func UserPrincipal(name string) string { return "User:" + name }

// Connected establishes what a connection is known as from its start: the
// user of a verified client certificate (User:<common name>); anonymous
// on a listener without SASL; nobody yet on a SASL listener, until its
// SASL exchange succeeds. Nodes call it from transport's OnConnect.
func (b *Broker) Connected(c *transport.ConnInfo) {
	if name, ok := transport.ClientCertName(c.TLS); ok {
		c.SetPrincipal(UserPrincipal(name))
		return
	}
	if b.auth.saslOn(c.Listener) {
		return
	}
	c.SetPrincipal(AnonymousPrincipal)
}

// saslGate runs before a frame is decoded. On a SASL listener it feeds the
// bare tokens of a v0 exchange to SASL, and refuses every request but
// ApiVersions, SaslHandshake and SaslAuthenticate until the connection
// has authenticated, by closing it, as Kafka does. ok reports whether it
// took the frame.
func (b *Broker) saslGate(c *transport.ConnInfo, frame []byte) (_ transport.Responder, ok bool) {
	a := b.auth
	if !a.saslOn(c.Listener) {
		return nil, false
	}
	if st := a.conn(c.ID); st != nil && st.raw && !st.done.Load() {
		token := bytes.Clone(frame)
		return func(context.Context) ([]byte, error) {
			out, err := a.step(c, token)
			if err != nil {
				// A bare token has no error response: Kafka closes.
				return nil, err
			}
			if out == nil {
				out = []byte{} // an empty token is still a frame
			}
			return out, nil
		}, true
	}
	if _, authed := c.Principal(); authed {
		return nil, false
	}
	h, err := parseHeaderPrefix(frame)
	if err != nil {
		return nil, false // ServeFrame closes the connection for it
	}
	switch h.key {
	case apiVersionsKey, saslHandshakeKey, saslAuthenticateKey:
		return nil, false
	}
	api := kmsg.NameForKey(h.key)
	a.log.Info().Str("api", api).Str("client_id", h.clientID).Stringer("remote", c.RemoteAddr).
		Msg("closing connection: request before SASL authentication")
	return failConn(fmt.Errorf("broker: %s before SASL authentication on listener %q: %w", api, c.Listener, kerr.IllegalSaslState)), true
}

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

func (a *authenticator) conn(id uint64) *saslConn {
	st, _ := a.conns.Load(id)
	c, _ := st.(*saslConn)
	return c
}

// begin starts a SASL exchange on c after a successful handshake.
func (a *authenticator) begin(c *transport.ConnInfo, mechanism string, raw bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.conn(c.ID)
	if st != nil && (st.done.Load() || st.scram != nil) {
		return errors.New("a SASL exchange already ran on this connection")
	}
	if st == nil {
		// The state goes when the connection's ConnInfo does, also when
		// the client left halfway through an exchange.
		runtime.AddCleanup(c, a.forget, c.ID)
	}
	a.conns.Store(c.ID, &saslConn{mechanism: mechanism, raw: raw})
	return nil
}

func (a *authenticator) forget(id uint64) { a.conns.Delete(id) }

// errAuthFailed is a failed login; its text is what the client is told.
type errAuthFailed struct{ msg string }

func (e *errAuthFailed) Error() string { return e.msg }

// step feeds one client token to the connection's exchange and returns the
// server's token. Success sets the connection's principal. A failed login
// returns an *errAuthFailed; any other error is a protocol violation.
// Both end the connection.
func (a *authenticator) step(c *transport.ConnInfo, token []byte) ([]byte, error) {
	st := a.conn(c.ID)
	if st == nil || st.done.Load() {
		return nil, errors.New("no SASL exchange in progress; send SaslHandshake first")
	}
	var (
		out  []byte
		user string
		err  error
	)
	switch st.mechanism {
	case MechanismPlain:
		user, err = a.plain(token)
	case meta.ScramSHA256, meta.ScramSHA512:
		out, user, err = a.scramStep(st, token)
	default:
		err = fmt.Errorf("mechanism %q is not served", st.mechanism)
	}
	if err != nil {
		a.forget(c.ID)
		a.log.Warn().Err(err).Str("mechanism", st.mechanism).Str("user", user).Stringer("remote", c.RemoteAddr).
			Msg("SASL authentication failed")
		return nil, err
	}
	if user != "" { // the exchange is complete
		a.mu.Lock()
		st.scram = nil
		a.mu.Unlock()
		c.SetPrincipal(UserPrincipal(user))
		st.done.Store(true)
		a.log.Debug().Str("mechanism", st.mechanism).Str("user", user).Stringer("remote", c.RemoteAddr).Msg("SASL authenticated")
	}
	return out, nil
}

// plain checks a PLAIN token, "authzid NUL user NUL password", against the
// user's SCRAM credential.
func (a *authenticator) plain(token []byte) (string, error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return "", &errAuthFailed{"Authentication failed: invalid SASL/PLAIN message"}
	}
	authz, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if authz != "" && authz != user {
		return user, &errAuthFailed{"Authentication failed: Client requested an authorization id that is different from username"}
	}
	// A user that does not exist is checked against a decoy, as slowly as
	// a real check, so the time taken does not tell that it does not.
	cred, mech := a.decoyCredential(user), meta.ScramSHA256
	for _, m := range meta.ScramMechanisms {
		if c := a.creds(user, m); c != nil {
			cred, mech = c, m
			break
		}
	}
	ok := cred.VerifyPassword(mech, pass)
	if !ok {
		return user, &errAuthFailed{"Authentication failed: Invalid username or password"}
	}
	return user, nil
}

// scramStep runs one step of a SCRAM exchange: client-first gets
// server-first; client-final gets server-final and completes the login.
func (a *authenticator) scramStep(st *saslConn, token []byte) (out []byte, user string, err error) {
	failed := &errAuthFailed{fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", st.mechanism)}
	a.mu.Lock()
	conv := st.scram
	a.mu.Unlock()
	if conv == nil {
		h, _ := meta.ScramHash(st.mechanism)
		conv, first, err := scramFirst(h, string(token), func(user string) *meta.ScramCredential {
			if c := a.creds(user, st.mechanism); c != nil {
				return c
			}
			return a.decoyCredential(user)
		})
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", st.mechanism, err)
		}
		if conv.authz != "" && conv.authz != conv.user {
			return nil, conv.user, &errAuthFailed{"Authentication failed: Client requested an authorization id that is different from username"}
		}
		a.mu.Lock()
		st.scram = conv
		a.mu.Unlock()
		return []byte(first), "", nil
	}
	final, err := conv.final(string(token))
	if errors.Is(err, errScramProof) {
		return nil, conv.user, failed
	}
	if err != nil {
		return nil, conv.user, fmt.Errorf("%s: %w", st.mechanism, err)
	}
	return []byte(final), conv.user, nil
}

// decoyCredential is a stable made-up credential for a user that does not
// exist: its salt is the same at every attempt, as a real one would be.
func (a *authenticator) decoyCredential(user string) *meta.ScramCredential {
	m := hmac.New(sha256.New, a.decoy)
	m.Write([]byte(user))
	sum := m.Sum(nil)
	key := slices.Concat(sum, sum)
	return &meta.ScramCredential{Salt: sum[:24], Iterations: meta.MinScramIterations, StoredKey: key, ServerKey: key}
}

// closeAfter is what the Responder of rc returns with its payload.
func (rc *reqCtx) closeAfter() error {
	if rc.close {
		return transport.ErrCloseAfterResponse
	}
	return nil
}

// scramCredential reads a credential from this node's copy of the
// metadata: a user added anywhere can log in here once this node has
// applied the change, milliseconds later.
func (b *Broker) scramCredential(user, mechanism string) *meta.ScramCredential {
	return b.host.Meta().ScramCredential(user, mechanism)
}
