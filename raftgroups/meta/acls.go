package meta

import (
	"fmt"
	"slices"
	"strings"
)

// ACL is one access control binding, in Kafka's model: Principal, from
// Host, is allowed or denied (Permission) Operation on the resources of
// ResourceType whose names match ResourceName under PatternType.
//
// Values are the lower-case snake names below ("topic", "prefixed",
// "describe_configs", "allow"), so the replicated log and snapshots stay
// readable. Evaluation lives in package appliance/acl; this package only
// stores and validates bindings.
type ACL struct {
	ResourceType string `json:"resource_type"`
	PatternType  string `json:"pattern_type"`
	ResourceName string `json:"resource_name"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// Resource types an ACL can name.
const (
	ACLTopic           = "topic"
	ACLGroup           = "group"
	ACLCluster         = "cluster"
	ACLTransactionalID = "transactional_id"
)

// Pattern types: a literal name ("*" matches every name) or a prefix.
const (
	ACLLiteral  = "literal"
	ACLPrefixed = "prefixed"
)

// Permissions.
const (
	ACLAllow = "allow"
	ACLDeny  = "deny"
)

// ACLClusterName is the only resource name of the cluster resource, as in
// Kafka.
const ACLClusterName = "kafka-cluster"

// ACLWildcard is the literal resource name, and the host, that match all.
const ACLWildcard = "*"

// ACLOperations are the operations a binding may name, Kafka's minus the
// delegation-token ones.
var ACLOperations = []string{
	"all", "read", "write", "create", "delete", "alter", "describe",
	"cluster_action", "describe_configs", "alter_configs", "idempotent_write",
}

// MaxACLs bounds the bindings a cluster keeps, so a client cannot grow the
// meta shard (held in memory on every node) without limit.
const MaxACLs = 10000

// CreateACLs adds bindings. Adding one that exists changes nothing (as in
// Kafka, creating an existing ACL succeeds).
type CreateACLs struct {
	ACLs []ACL `json:"acls"`
}

// DeleteACLs removes exactly these bindings; ones that do not exist are
// ignored. The proposer resolves a Kafka delete filter against the state
// it read, so the answer can list what was deleted.
type DeleteACLs struct {
	ACLs []ACL `json:"acls"`
}

// Validate checks a binding before it is stored and returns a message a
// user can act on.
func (a ACL) Validate() error {
	switch a.ResourceType {
	case ACLTopic, ACLGroup, ACLTransactionalID:
	case ACLCluster:
		if a.ResourceName != ACLClusterName {
			return fmt.Errorf("the cluster resource is named %q, not %q", ACLClusterName, a.ResourceName)
		}
	default:
		return fmt.Errorf("resource type %q is not supported (use %s, %s, %s or %s)", a.ResourceType, ACLTopic, ACLGroup, ACLCluster, ACLTransactionalID)
	}
	switch a.PatternType {
	case ACLLiteral:
	case ACLPrefixed:
		if a.ResourceName == ACLWildcard {
			return fmt.Errorf("the wildcard %q is a literal name; a prefixed pattern cannot be %q", ACLWildcard, ACLWildcard)
		}
	default:
		return fmt.Errorf("pattern type %q is not supported (use %s or %s)", a.PatternType, ACLLiteral, ACLPrefixed)
	}
	if a.ResourceName == "" || len(a.ResourceName) > 1024 {
		return fmt.Errorf("resource name must be 1 to 1024 characters, got %d", len(a.ResourceName))
	}
	typ, name, ok := strings.Cut(a.Principal, ":")
	if !ok || typ == "" || name == "" || len(a.Principal) > 1024 {
		return fmt.Errorf("principal %q must be Type:name, e.g. User:alice (or User:* for every user)", a.Principal)
	}
	if a.Host == "" || len(a.Host) > 256 {
		return fmt.Errorf("host must be an IP address or %q, got %q", ACLWildcard, a.Host)
	}
	if !slices.Contains(ACLOperations, a.Operation) {
		return fmt.Errorf("operation %q is not supported (use one of %s)", a.Operation, strings.Join(ACLOperations, ", "))
	}
	if a.Permission != ACLAllow && a.Permission != ACLDeny {
		return fmt.Errorf("permission %q must be %s or %s", a.Permission, ACLAllow, ACLDeny)
	}
	return nil
}

// State.ACLs is copy-on-write: a State and its clones share the slice, so
// these build a new one rather than change it in place. Readers (the
// authorizer) rely on that to tell a changed set by its identity.

func (s *State) createACLs(c *CreateACLs) Result {
	for _, a := range c.ACLs {
		if err := a.Validate(); err != nil {
			return Result{Code: ErrInvalidACL, Message: err.Error()}
		}
	}
	have := make(map[ACL]bool, len(s.ACLs)+len(c.ACLs))
	for _, a := range s.ACLs {
		have[a] = true
	}
	next := slices.Clone(s.ACLs)
	for _, a := range c.ACLs {
		if !have[a] {
			have[a] = true
			next = append(next, a)
		}
	}
	if len(next) == len(s.ACLs) {
		// All exist already: keep the slice, so readers see no change.
		return Result{Code: OK}
	}
	if len(next) > MaxACLs {
		return Result{Code: ErrInvalidACL, Message: fmt.Sprintf("a cluster holds at most %d ACLs; this would make %d", MaxACLs, len(next))}
	}
	s.ACLs = next
	return Result{Code: OK}
}

func (s *State) deleteACLs(c *DeleteACLs) Result {
	gone := make(map[ACL]bool, len(c.ACLs))
	for _, a := range c.ACLs {
		gone[a] = true
	}
	next := make([]ACL, 0, len(s.ACLs))
	for _, a := range s.ACLs {
		if !gone[a] {
			next = append(next, a)
		}
	}
	if len(next) == len(s.ACLs) {
		// Nothing matched: keep the slice, so readers see no change.
		return Result{Code: OK}
	}
	if len(next) == 0 {
		next = nil
	}
	s.ACLs = next
	return Result{Code: OK}
}
