package sdk

import (
	"context"
	"net/http"
	"net/url"
)

// User is a SASL user as the admin API lists it: its SCRAM mechanisms and
// their iteration counts, never its credentials.
type User struct {
	Name       string           `json:"name"`
	Mechanisms map[string]int32 `json:"mechanisms"`
}

// Users lists the cluster's SASL users.
func (a *ClusterAdmin) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, a.do(ctx, http.MethodGet, "/v1/users", nil, &out)
}

// SetUser creates user name, or sets its password, with SCRAM-SHA-256 and
// SCRAM-SHA-512 credentials. The admin API is how the first user of a
// secured cluster is made with the admin token; Kafka clients use
// AlterUserScramCredentials (kadm's AlterUserSCRAMs) instead. Send the
// password over HTTPS or loopback only.
func (a *ClusterAdmin) SetUser(ctx context.Context, name, password string) error {
	return a.do(ctx, http.MethodPut, "/v1/users/"+url.PathEscape(name), map[string]string{"password": password}, nil)
}

// DeleteUser deletes user name and all its credentials.
func (a *ClusterAdmin) DeleteUser(ctx context.Context, name string) error {
	return a.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil)
}
