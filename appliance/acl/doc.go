// Package acl decides whether a principal may perform an operation on a
// resource, by Kafka's rules (the StandardAuthorizer's): a binding matches
// a resource by literal name, by the literal wildcard "*" or by prefix; a
// principal by name or "User:*"; a host by address or "*". Any matching
// DENY wins over every ALLOW; DESCRIBE is implied by READ, WRITE, DELETE
// and ALTER, DESCRIBE_CONFIGS by ALTER_CONFIGS, and ALL covers every
// operation; super users skip the check; with no matching ALLOW the answer
// is no.
//
// The bindings themselves live in the meta shard (raftgroups/meta, State.ACLs),
// so a change committed there reaches every node without a restart. An
// Authorizer reads them through a function, and compiles them into an
// immutable index the first time it sees a new set: a check on the hot
// produce and fetch paths is two atomic loads and a few map lookups,
// without locks or allocations.
//
// What it does not own: who a connection is (authentication sets the
// principal, see appliance/broker's principal.go), which operation each
// Kafka API needs (the broker's handlers), and storing bindings (the meta
// shard's commands). It also translates Kafka's DescribeAcls/DeleteAcls
// filters and CreateAcls creations to and from the stored form.
package acl
