package broker

// AnonymousPrincipal is the Kafka principal of a connection that has not
// authenticated (no client certificate, no SASL).
const AnonymousPrincipal = "User:ANONYMOUS"

// principal returns the Kafka principal ("User:alice") of the connection
// the request came in on: the user of its verified client certificate or
// of its SASL login (Connected, saslGate), else AnonymousPrincipal. A
// request on a SASL listener only gets here once the connection has
// authenticated, except ApiVersions and the SASL requests themselves.
func (rc *reqCtx) principal() string {
	if p, ok := rc.conn.Principal(); ok {
		return p
	}
	return AnonymousPrincipal
}
