package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// AlterUserScramCredentials, version 0: set or delete users' SCRAM
// credentials, one result per user, in the order users first appear. The
// request carries salted passwords; the broker turns each into the stored
// and server keys (RFC 5802) before proposing, so neither the password
// nor anything a client could log in with reaches the metadata. Each
// user's changes are one meta command: they apply together, on every
// node, without a restart. Errors follow Kafka: UNSUPPORTED_SASL_MECHANISM
// for an unknown mechanism, UNACCEPTABLE_CREDENTIAL for a bad name, salt
// or iteration count, DUPLICATE_RESOURCE for a user and mechanism named
// twice, RESOURCE_NOT_FOUND for deleting a credential that does not exist.
// Needs ALTER on the cluster; without it every user gets
// CLUSTER_AUTHORIZATION_FAILED (checked before, by gateCredentialAPIs).

func (b *Broker) handleAlterUserScramCredentials(ctx context.Context, rc *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type change struct {
		cmd  meta.AlterCredentials
		code int16
		msg  string
	}
	var order []string
	changes := map[string]*change{}
	seen := map[[2]string]bool{}
	get := func(user string) *change {
		c := changes[user]
		if c == nil {
			c = &change{cmd: meta.AlterCredentials{User: user}}
			changes[user] = c
			order = append(order, user)
		}
		return c
	}
	// reject records the first problem of a user; its other changes are
	// not applied.
	reject := func(c *change, code int16, msg string) {
		if c.code == 0 {
			c.code, c.msg = code, msg
		}
	}
	mechanism := func(c *change, code int8) (string, bool) {
		mech, ok := scramMechanismName(code)
		if !ok {
			reject(c, kerr.UnsupportedSaslMechanism.Code, fmt.Sprintf("Unknown SCRAM mechanism %d", code))
			return "", false
		}
		if seen[[2]string{c.cmd.User, mech}] {
			reject(c, kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request")
			return "", false
		}
		seen[[2]string{c.cmd.User, mech}] = true
		return mech, true
	}
	for _, d := range req.Deletions {
		c := get(d.Name)
		if mech, ok := mechanism(c, d.Mechanism); ok {
			c.cmd.Delete = append(c.cmd.Delete, mech)
		}
	}
	for _, u := range req.Upsertions {
		c := get(u.Name)
		mech, ok := mechanism(c, u.Mechanism)
		if !ok {
			continue
		}
		if u.Iterations < meta.MinScramIterations || u.Iterations > meta.MaxScramIterations {
			reject(c, kerr.UnacceptableCredential.Code, fmt.Sprintf("Iterations %d is outside %d..%d", u.Iterations, meta.MinScramIterations, meta.MaxScramIterations))
			continue
		}
		if len(u.Salt) == 0 {
			reject(c, kerr.UnacceptableCredential.Code, "Salt must not be empty")
			continue
		}
		cred, err := meta.ScramCredentialFromSalted(mech, u.Salt, u.SaltedPassword, u.Iterations)
		if err != nil {
			reject(c, kerr.UnacceptableCredential.Code, err.Error())
			continue
		}
		if c.cmd.Upsert == nil {
			c.cmd.Upsert = map[string]*meta.ScramCredential{}
		}
		c.cmd.Upsert[mech] = cred
	}
	for _, user := range order {
		c := changes[user]
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		if err := meta.ValidateUserName(user); err != nil && c.code == 0 {
			reject(c, kerr.UnacceptableCredential.Code, err.Error())
		}
		if c.code == 0 {
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := b.host.ProposeMeta(pctx, meta.Command{AlterCredentials: &c.cmd})
			cancel()
			switch {
			case err == nil:
			case meta.CodeOf(err) == meta.ErrUnknownCredential:
				reject(c, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
			case meta.CodeOf(err) == meta.ErrInvalidCredential:
				reject(c, kerr.UnacceptableCredential.Code, err.Error())
			default:
				reject(c, errorCode(err), err.Error())
			}
		}
		if c.code != 0 {
			r.ErrorCode, r.ErrorMessage = c.code, kmsg.StringPtr(c.msg)
			b.countError(rc, c.code)
		}
		resp.Results = append(resp.Results, r)
	}
	if len(order) > 0 {
		b.log.Info().Strs("users", order).Str("principal", rc.principal()).Msg("SCRAM credentials altered")
	}
	return resp
}
