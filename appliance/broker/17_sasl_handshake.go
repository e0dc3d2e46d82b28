package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake, versions 0–1: the client picks a mechanism. After v1 the
// exchange runs in SaslAuthenticate requests; after v0 (clients older than
// Kafka 1.0) its tokens come as bare frames, which saslGate takes.
//
// A mechanism eddy does not offer gets UNSUPPORTED_SASL_MECHANISM with the
// list, and the client may try another on the same connection. A handshake
// on a listener without SASL, or after SASL succeeded, gets
// ILLEGAL_SASL_STATE, as in Kafka.

func (b *Broker) handleSaslHandshake(rc *reqCtx, req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	a := b.auth
	switch {
	case !a.saslOn(rc.conn.Listener):
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(a.cfg.Mechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = a.cfg.Mechanisms
	default:
		if err := a.begin(rc.conn, req.Mechanism, req.Version == 0); err != nil {
			resp.ErrorCode = kerr.IllegalSaslState.Code
			break
		}
		resp.SupportedMechanisms = a.cfg.Mechanisms
	}
	b.countError(rc, resp.ErrorCode)
	return resp
}
