package adminapi

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/transport"
)

// Principals of admin requests, in Kafka's form so that ACLs name them
// the same way as Kafka clients.
const (
	// AdminPrincipal is a request carrying the admin token: the cluster's
	// operator. Authorization treats it as a super-user.
	AdminPrincipal = acl.AdminPrincipal
	// AnonymousPrincipal is a request with neither token nor client
	// certificate; only served on loopback (or with insecure: true) when
	// the node has no admin token.
	AnonymousPrincipal = "User:ANONYMOUS"
)

// errUnauthenticated is what an admin request that proves nothing is told.
var errUnauthenticated = errors.New("admin API: authenticate with the admin token (Authorization: Bearer <admin_token>) or a client certificate (auth.admin_tls); anonymous requests are served only on loopback and only when the node has no admin token")

// principal returns the Kafka-style principal ("User:alice") of an admin
// request, and false when the request is not authenticated and must be
// refused:
//   - the admin token as a bearer token: AdminPrincipal (a wrong token
//     is refused, whatever else the request carries);
//   - a client certificate verified against the client CAs (HTTPS admin
//     listener, auth.admin_tls): User:<its common name>;
//   - neither: AnonymousPrincipal, served only when the node has no admin
//     token and the request came over loopback, or the node is insecure.
func (a *API) principal(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" && a.Token != "" {
		if subtle.ConstantTimeCompare([]byte(h), []byte("Bearer "+a.Token)) == 1 {
			return AdminPrincipal, true
		}
		return AnonymousPrincipal, false
	}
	if name, ok := transport.ClientCertName(r.TLS); ok {
		return "User:" + name, true
	}
	if a.Token == "" && (a.Insecure || fromLoopback(r)) {
		return AnonymousPrincipal, true
	}
	return AnonymousPrincipal, false
}

// auth refuses requests whose principal is not established.
func (a *API) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.principal(r); !ok {
			writeError(w, http.StatusUnauthorized, errUnauthenticated)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fromLoopback reports whether the request's peer is on this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
