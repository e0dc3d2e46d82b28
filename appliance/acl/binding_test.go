package acl

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

func TestBindingStored(t *testing.T) {
	ok := Binding{ResourceType: topic, Pattern: kmsg.ACLResourcePatternTypePrefixed, Name: "sensor.", Principal: "User:alice",
		Host: "*", Operation: kmsg.ACLOperationDescribeConfigs, Permission: kmsg.ACLPermissionTypeDeny}
	a, err := ok.Stored()
	if err != nil {
		t.Fatal(err)
	}
	want := meta.ACL{ResourceType: "topic", PatternType: "prefixed", ResourceName: "sensor.", Principal: "User:alice", Host: "*",
		Operation: "describe_configs", Permission: "deny"}
	if a != want {
		t.Fatalf("got %+v, want %+v", a, want)
	}
	if back := FromStored(a); back != ok {
		t.Fatalf("round trip: got %+v, want %+v", back, ok)
	}
	tests := []struct {
		name string
		edit func(*Binding)
		want string
	}{
		{"any resource", func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeAny }, "resource type"},
		{"delegation token", func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeDelegationToken }, "resource type"},
		{"match pattern", func(b *Binding) { b.Pattern = kmsg.ACLResourcePatternTypeMatch }, "pattern type"},
		{"any operation", func(b *Binding) { b.Operation = kmsg.ACLOperationAny }, "operation"},
		{"any permission", func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny }, "permission"},
		{"bad principal", func(b *Binding) { b.Principal = "alice" }, "Type:name"},
		{"cluster name", func(b *Binding) { b.ResourceType = cluster; b.Pattern = kmsg.ACLResourcePatternTypeLiteral }, "kafka-cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ok
			tt.edit(&b)
			_, err := b.Stored()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestFilterMatches(t *testing.T) {
	lit := allowTopic("User:alice", "read", "orders")
	wild := allowTopic("User:bob", "write", "*")
	pre := prefixed(denyTopic("User:alice", "all", "ord"))
	grp := bind(meta.ACLAllow, "User:alice", "read", meta.ACLGroup, meta.ACLLiteral, "orders")
	all := []meta.ACL{lit, wild, pre, grp}
	str := func(s string) *string { return &s }
	any := Filter{ResourceType: kmsg.ACLResourceTypeAny, Pattern: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	with := func(edit func(*Filter)) Filter { f := any; edit(&f); return f }
	tests := []struct {
		name string
		f    Filter
		want []meta.ACL
	}{
		{"everything", any, all},
		{"topics", with(func(f *Filter) { f.ResourceType = topic }), []meta.ACL{lit, wild, pre}},
		{"any pattern, exact name", with(func(f *Filter) { f.Name = str("orders") }), []meta.ACL{lit, grp}},
		{"match", with(func(f *Filter) { f.Name = str("orders"); f.Pattern = kmsg.ACLResourcePatternTypeMatch }), all},
		{"match other", with(func(f *Filter) { f.Name = str("logs"); f.Pattern = kmsg.ACLResourcePatternTypeMatch }), []meta.ACL{wild}},
		{"literal", with(func(f *Filter) { f.Pattern = kmsg.ACLResourcePatternTypeLiteral }), []meta.ACL{lit, wild, grp}},
		{"prefixed", with(func(f *Filter) { f.Pattern = kmsg.ACLResourcePatternTypePrefixed; f.Name = str("ord") }), []meta.ACL{pre}},
		{"literal wildcard only", with(func(f *Filter) { f.Pattern = kmsg.ACLResourcePatternTypeLiteral; f.Name = str("*") }), []meta.ACL{wild}},
		{"principal", with(func(f *Filter) { f.Principal = str("User:bob") }), []meta.ACL{wild}},
		{"host", with(func(f *Filter) { f.Host = str("10.0.0.1") }), nil},
		{"operation", with(func(f *Filter) { f.Operation = opRead }), []meta.ACL{lit, grp}},
		{"deny", with(func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeDeny }), []meta.ACL{pre}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []meta.ACL
			for _, a := range all {
				if tt.f.Matches(a) {
					got = append(got, a)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	for _, bad := range []Filter{
		with(func(f *Filter) { f.ResourceType = kmsg.ACLResourceTypeUnknown }),
		with(func(f *Filter) { f.Pattern = kmsg.ACLResourcePatternTypeUnknown }),
		with(func(f *Filter) { f.Operation = kmsg.ACLOperationUnknown }),
		with(func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeUnknown }),
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("filter %+v: got %v, want ErrInvalid", bad, err)
		}
	}
}
