package broker

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// Authorization: every handler asks before it acts, with the operation
// Kafka's own broker requires for that API (see kadm's ACLOperation
// documentation for the table). A refused resource gets
// TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or
// CLUSTER_AUTHORIZATION_FAILED, with a message where the response has
// room for one. As in Kafka, a principal that may not describe a topic is
// told it is not authorized whether or not the topic exists.

// Resource types, short for the handlers.
const (
	rtTopic   = kmsg.ACLResourceTypeTopic
	rtGroup   = kmsg.ACLResourceTypeGroup
	rtCluster = kmsg.ACLResourceTypeCluster
	rtTxnID   = kmsg.ACLResourceTypeTransactionalId
)

// Operations, short for the handlers.
const (
	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

// authzOn reports whether requests are checked at all; the hot paths test
// it before building anything for a check.
func (b *Broker) authzOn() bool { return b.cfg.Authorizer.Enabled() }

func (rc *reqCtx) subject() acl.Subject {
	return acl.Subject{Principal: rc.principal(), Addr: rc.conn.RemoteAddr}
}

// allowed reports whether the request's principal may perform op on the
// resource, logging a refusal at debug level.
func (b *Broker) allowed(rc *reqCtx, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if !b.authzOn() {
		return true
	}
	s := rc.subject()
	if b.cfg.Authorizer.Allowed(s, op, rt, name) {
		return true
	}
	b.log.Debug().Str("principal", s.Principal).Stringer("remote", rc.conn.RemoteAddr).Str("api", rc.api).
		Stringer("operation", op).Stringer("resource_type", rt).Str("resource", name).Msg("request refused by ACLs")
	return false
}

func (b *Broker) allowedCluster(rc *reqCtx, op kmsg.ACLOperation) bool {
	return b.allowed(rc, op, rtCluster, meta.ACLClusterName)
}

// mayCreateTopic: CREATE on the cluster or on the topic.
func (b *Broker) mayCreateTopic(rc *reqCtx, topic string) bool {
	if !b.authzOn() {
		return true
	}
	s := rc.subject()
	return b.cfg.Authorizer.Allowed(s, opCreate, rtCluster, meta.ACLClusterName) || b.allowed(rc, opCreate, rtTopic, topic)
}

// denied returns the error for a refused check: code wraps the Kafka
// error, and the text says who may not do what, and how to allow it.
func denied(rc *reqCtx, code *kerr.Error, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) error {
	what := fmt.Sprintf("%s %q", acl.ResourceTypeName(rt), name)
	flag := fmt.Sprintf("--%s %s", strings.ReplaceAll(acl.ResourceTypeName(rt), "_", "-"), name)
	if rt == rtCluster {
		what, flag = "the cluster", "--cluster"
	}
	return fmt.Errorf("%w: %s may not %s %s (grant it with: eddy acl add --allow %s --operation %s %s)",
		code, rc.principal(), acl.OperationName(op), what, rc.principal(), acl.OperationName(op), flag)
}

// checkTopic returns nil when the request may perform op on topic, else
// a TOPIC_AUTHORIZATION_FAILED error.
func (b *Broker) checkTopic(rc *reqCtx, op kmsg.ACLOperation, topic string) error {
	if b.allowed(rc, op, rtTopic, topic) {
		return nil
	}
	return denied(rc, kerr.TopicAuthorizationFailed, op, rtTopic, topic)
}

// checkGroup likewise, with GROUP_AUTHORIZATION_FAILED.
func (b *Broker) checkGroup(rc *reqCtx, op kmsg.ACLOperation, group string) error {
	if b.allowed(rc, op, rtGroup, group) {
		return nil
	}
	return denied(rc, kerr.GroupAuthorizationFailed, op, rtGroup, group)
}

// checkCluster likewise, with CLUSTER_AUTHORIZATION_FAILED.
func (b *Broker) checkCluster(rc *reqCtx, op kmsg.ACLOperation) error {
	if b.allowedCluster(rc, op) {
		return nil
	}
	return denied(rc, kerr.ClusterAuthorizationFailed, op, rtCluster, meta.ACLClusterName)
}

// checkCreateTopic: CREATE on the cluster or the topic, for CreateTopics
// and auto-creation.
func (b *Broker) checkCreateTopic(rc *reqCtx, topic string) error {
	if b.mayCreateTopic(rc, topic) {
		return nil
	}
	return fmt.Errorf("%w: %s may not create topic %q (grant it with: eddy acl add --allow %s --operation create --topic %s, or --cluster)",
		kerr.TopicAuthorizationFailed, rc.principal(), topic, rc.principal(), topic)
}

// authorizedOps is the KIP-430 bitfield for a resource a client asked
// about; everything when authorization is off, as Kafka answers without
// an authorizer.
func (b *Broker) authorizedOps(rc *reqCtx, rt kmsg.ACLResourceType, name string) int32 {
	return b.cfg.Authorizer.AuthorizedOperations(rc.subject(), rt, name)
}

// gateCredentialAPIs refuses the SCRAM credential APIs, whose handlers
// live with authentication, to principals without the cluster permission
// Kafka requires: DESCRIBE for DescribeUserScramCredentials, ALTER for
// AlterUserScramCredentials (changing a password is taking over a
// principal). It returns nil for every other request, and when allowed.
func (b *Broker) gateCredentialAPIs(rc *reqCtx, req kmsg.Request) kmsg.Response {
	if !b.authzOn() {
		return nil
	}
	switch r := req.(type) {
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		if err := b.checkCluster(rc, opDescribe); err != nil {
			resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
			resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(err)
			b.countError(rc, resp.ErrorCode)
			return resp
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		if err := b.checkCluster(rc, opAlter); err != nil {
			resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
			seen := map[string]bool{}
			add := func(user string) {
				if seen[user] {
					return
				}
				seen[user] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode, res.ErrorMessage = user, kerr.ClusterAuthorizationFailed.Code, errMessage(err)
				resp.Results = append(resp.Results, res)
			}
			for _, d := range r.Deletions {
				add(d.Name)
			}
			for _, u := range r.Upsertions {
				add(u.Name)
			}
			b.countError(rc, kerr.ClusterAuthorizationFailed.Code)
			return resp
		}
	}
	return nil
}
