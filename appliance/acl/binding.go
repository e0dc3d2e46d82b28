package acl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// ErrInvalid marks a binding or filter that cannot be stored or used: an
// unknown or unsupported enum value, or a value the meta shard refuses.
var ErrInvalid = errors.New("acl: invalid")

// resourceTypes maps the stored names to Kafka's enum.
var resourceTypes = map[string]kmsg.ACLResourceType{
	meta.ACLTopic:           kmsg.ACLResourceTypeTopic,
	meta.ACLGroup:           kmsg.ACLResourceTypeGroup,
	meta.ACLCluster:         kmsg.ACLResourceTypeCluster,
	meta.ACLTransactionalID: kmsg.ACLResourceTypeTransactionalId,
}

// ResourceTypeName returns the stored name of a resource type, "" for
// types eddy does not store (ANY, DELEGATION_TOKEN, USER, unknown).
func ResourceTypeName(t kmsg.ACLResourceType) string {
	for name, v := range resourceTypes {
		if v == t {
			return name
		}
	}
	return ""
}

// Operation parses a stored or user-typed operation name ("describe_configs",
// "DescribeConfigs", "describe-configs").
func Operation(name string) (kmsg.ACLOperation, error) {
	op, err := kmsg.ParseACLOperation(name)
	if err != nil || op == kmsg.ACLOperationUnknown {
		return 0, fmt.Errorf("%w: unknown operation %q", ErrInvalid, name)
	}
	return op, nil
}

// OperationName is the stored name of op ("describe_configs").
func OperationName(op kmsg.ACLOperation) string { return strings.ToLower(op.String()) }

// compiled is a stored binding in Kafka's enums.
type compiled struct {
	rt       kmsg.ACLResourceType
	prefixed bool
	name     string
	op       kmsg.ACLOperation
	deny     bool
}

func compile(a meta.ACL) (compiled, bool) {
	rt, ok := resourceTypes[a.ResourceType]
	if !ok {
		return compiled{}, false
	}
	op, err := Operation(a.Operation)
	if err != nil {
		return compiled{}, false
	}
	if a.PatternType != meta.ACLLiteral && a.PatternType != meta.ACLPrefixed {
		return compiled{}, false
	}
	if a.Permission != meta.ACLAllow && a.Permission != meta.ACLDeny {
		return compiled{}, false
	}
	return compiled{rt: rt, prefixed: a.PatternType == meta.ACLPrefixed, name: a.ResourceName, op: op, deny: a.Permission == meta.ACLDeny}, true
}

// Binding is an ACL in Kafka's wire terms, as CreateAcls carries it and
// DescribeAcls and DeleteAcls return it.
type Binding struct {
	ResourceType kmsg.ACLResourceType
	Pattern      kmsg.ACLResourcePatternType
	Name         string
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Stored converts a binding to its stored form and validates it as the
// meta shard will. The error wraps ErrInvalid and says what to change.
func (b Binding) Stored() (meta.ACL, error) {
	a := meta.ACL{ResourceName: b.Name, Principal: b.Principal, Host: b.Host}
	a.ResourceType = ResourceTypeName(b.ResourceType)
	if a.ResourceType == "" {
		return meta.ACL{}, fmt.Errorf("%w: resource type %s is not supported (topic, group, cluster, transactional_id)", ErrInvalid, b.ResourceType)
	}
	switch b.Pattern {
	case kmsg.ACLResourcePatternTypeLiteral:
		a.PatternType = meta.ACLLiteral
	case kmsg.ACLResourcePatternTypePrefixed:
		a.PatternType = meta.ACLPrefixed
	default:
		return meta.ACL{}, fmt.Errorf("%w: an ACL's pattern type is literal or prefixed, not %s", ErrInvalid, b.Pattern)
	}
	switch b.Operation {
	case kmsg.ACLOperationUnknown, kmsg.ACLOperationAny, kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens:
		return meta.ACL{}, fmt.Errorf("%w: operation %s cannot be granted or denied", ErrInvalid, b.Operation)
	}
	a.Operation = OperationName(b.Operation)
	switch b.Permission {
	case kmsg.ACLPermissionTypeAllow:
		a.Permission = meta.ACLAllow
	case kmsg.ACLPermissionTypeDeny:
		a.Permission = meta.ACLDeny
	default:
		return meta.ACL{}, fmt.Errorf("%w: an ACL's permission is allow or deny, not %s", ErrInvalid, b.Permission)
	}
	if err := a.Validate(); err != nil {
		return meta.ACL{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return a, nil
}

// FromStored converts a stored binding to wire terms.
func FromStored(a meta.ACL) Binding {
	b := Binding{ResourceType: resourceTypes[a.ResourceType], Name: a.ResourceName, Principal: a.Principal, Host: a.Host,
		Pattern: kmsg.ACLResourcePatternTypeLiteral, Permission: kmsg.ACLPermissionTypeAllow}
	if a.PatternType == meta.ACLPrefixed {
		b.Pattern = kmsg.ACLResourcePatternTypePrefixed
	}
	if a.Permission == meta.ACLDeny {
		b.Permission = kmsg.ACLPermissionTypeDeny
	}
	b.Operation, _ = Operation(a.Operation)
	return b
}

// Filter selects bindings, as DescribeAcls and DeleteAcls carry it. A nil
// Name, Principal or Host matches any; ANY matches any resource type,
// operation or permission. Pattern ANY matches bindings of any pattern
// type with exactly Name; MATCH matches every binding that applies to a
// resource called Name (literal Name, the literal wildcard, prefixes of
// Name); LITERAL and PREFIXED match that type with exactly Name.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	Name         *string
	Pattern      kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Validate refuses filters with UNKNOWN elements, as Kafka does.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType == kmsg.ACLResourceTypeUnknown || f.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: the filter's resource type is unknown (%d)", ErrInvalid, f.ResourceType)
	case f.Pattern < kmsg.ACLResourcePatternTypeAny || f.Pattern > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: the filter's pattern type is unknown (%d)", ErrInvalid, f.Pattern)
	case f.Operation == kmsg.ACLOperationUnknown || f.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w: the filter's operation is unknown (%d)", ErrInvalid, f.Operation)
	case f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("%w: the filter's permission is unknown (%d)", ErrInvalid, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects a stored binding.
func (f Filter) Matches(a meta.ACL) bool {
	b := FromStored(a)
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != b.Permission {
		return false
	}
	switch f.Pattern {
	case kmsg.ACLResourcePatternTypeAny:
		return f.Name == nil || *f.Name == a.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.Name == nil {
			return true
		}
		if b.Pattern == kmsg.ACLResourcePatternTypePrefixed {
			return strings.HasPrefix(*f.Name, a.ResourceName)
		}
		return a.ResourceName == *f.Name || a.ResourceName == meta.ACLWildcard
	default:
		return f.Pattern == b.Pattern && (f.Name == nil || *f.Name == a.ResourceName)
	}
}
