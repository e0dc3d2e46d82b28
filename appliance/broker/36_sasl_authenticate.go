package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate, versions 0–2: one step of the exchange SaslHandshake
// v1 started. PLAIN takes one step; SCRAM two (client-first, then
// client-final). Success sets the connection's principal to User:<name>.
// A wrong password, an unknown user (indistinguishable on the wire) or a
// malformed token gets SASL_AUTHENTICATION_FAILED with a message, and the
// connection closes after the response, as in Kafka: one try per
// connection. SessionLifetimeMillis is 0: eddy does not ask clients to
// re-authenticate.

func (b *Broker) handleSaslAuthenticate(rc *reqCtx, req *kmsg.SASLAuthenticateRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	a := b.auth
	fail := func(code int16, msg string, close bool) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		rc.close = close
		b.countError(rc, code)
		return resp
	}
	if !a.saslOn(rc.conn.Listener) {
		return fail(kerr.IllegalSaslState.Code, "SASL is not enabled on this listener", false)
	}
	st := a.conn(rc.conn.ID)
	switch {
	case st == nil || st.raw:
		return fail(kerr.IllegalSaslState.Code, "SaslAuthenticate without a SaslHandshake v1 first", true)
	case st.done.Load():
		return fail(kerr.IllegalSaslState.Code, "SaslAuthenticate after successful authentication", false)
	}
	out, err := a.step(rc.conn, req.SASLAuthBytes)
	if err != nil {
		msg := "Authentication failed: " + err.Error()
		if af, ok := errors.AsType[*errAuthFailed](err); ok {
			msg = af.msg
		}
		return fail(kerr.SaslAuthenticationFailed.Code, msg, true)
	}
	resp.SASLAuthBytes = out
	return resp
}
