package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// DescribeUserScramCredentials, version 0: which SCRAM mechanisms each
// user has a credential for, and with how many iterations; never the
// credential itself. No users means all. A user named twice gets
// DUPLICATE_RESOURCE, a user without credentials RESOURCE_NOT_FOUND, as
// in Kafka. Read from this node's copy of the metadata. Needs DESCRIBE
// on the cluster (checked before, by gateCredentialAPIs).

// scramMechanismCodes are the wire codes of the SCRAM mechanisms (KIP-554).
var scramMechanismCodes = map[string]int8{meta.ScramSHA256: 1, meta.ScramSHA512: 2}

func scramMechanismName(code int8) (string, bool) {
	for name, c := range scramMechanismCodes {
		if c == code {
			return name, true
		}
	}
	return "", false
}

func (b *Broker) handleDescribeUserScramCredentials(rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	st := b.host.Meta()
	names := st.UserNames()
	if req.Users != nil {
		names = names[:0]
		for _, u := range req.Users {
			names = append(names, u.Name)
		}
	}
	seen := map[string]int{}
	for _, n := range names {
		seen[n]++
	}
	for _, name := range names {
		if seen[name] < 0 {
			continue // a duplicate, answered once already
		}
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = name
		u := st.Users[name]
		switch {
		case seen[name] > 1:
			seen[name] = -1
			r.ErrorCode = kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request")
		case u == nil:
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist")
		default:
			for _, mech := range meta.ScramMechanisms {
				if c := u.Scram[mech]; c != nil {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = scramMechanismCodes[mech], c.Iterations
					r.CredentialInfos = append(r.CredentialInfos, ci)
				}
			}
		}
		b.countError(rc, r.ErrorCode)
		resp.Results = append(resp.Results, r)
	}
	return resp
}
