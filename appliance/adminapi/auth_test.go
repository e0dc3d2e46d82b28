package adminapi

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http/httptest"
	"testing"
)

// TestPrincipal: who an admin request is, by token, client certificate
// and origin, for nodes with and without a token and with insecure.
func TestPrincipal(t *testing.T) {
	verified := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "ops"}}}}}
	tests := []struct {
		name   string
		api    API
		remote string
		auth   string
		tls    *tls.ConnectionState
		want   string
		wantOK bool
	}{
		{"token", API{Token: "t"}, "10.0.0.9:1", "Bearer t", nil, AdminPrincipal, true},
		{"wrong token", API{Token: "t"}, "127.0.0.1:1", "Bearer x", verified, AnonymousPrincipal, false},
		{"no token, loopback, node has one", API{Token: "t"}, "127.0.0.1:1", "", nil, AnonymousPrincipal, false},
		{"certificate", API{Token: "t"}, "10.0.0.9:1", "", verified, "User:ops", true},
		{"certificate, node without token", API{}, "10.0.0.9:1", "", verified, "User:ops", true},
		{"anonymous on loopback", API{}, "127.0.0.1:1", "", nil, AnonymousPrincipal, true},
		{"anonymous on ::1", API{}, "[::1]:1", "", nil, AnonymousPrincipal, true},
		{"anonymous from the network", API{}, "10.0.0.9:1", "", nil, AnonymousPrincipal, false},
		{"anonymous, insecure", API{Insecure: true}, "10.0.0.9:1", "", nil, AnonymousPrincipal, true},
		{"unverified certificate", API{}, "10.0.0.9:1", "", &tls.ConnectionState{}, AnonymousPrincipal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/cluster/nodes", nil)
			r.RemoteAddr, r.TLS = tt.remote, tt.tls
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			got, ok := tt.api.principal(r)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("got %q %v, want %q %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
