package meta

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func aclFor(principal, topic, op, perm string) ACL {
	return ACL{ResourceType: ACLTopic, PatternType: ACLLiteral, ResourceName: topic, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func TestACLValidate(t *testing.T) {
	ok := aclFor("User:alice", "orders", "read", ACLAllow)
	tests := []struct {
		name string
		edit func(*ACL)
		want string
	}{
		{"ok", func(*ACL) {}, ""},
		{"wildcard principal", func(a *ACL) { a.Principal = "User:*" }, ""},
		{"prefixed", func(a *ACL) { a.PatternType = ACLPrefixed; a.ResourceName = "ord" }, ""},
		{"cluster", func(a *ACL) { a.ResourceType = ACLCluster; a.ResourceName = ACLClusterName }, ""},
		{"cluster misnamed", func(a *ACL) { a.ResourceType = ACLCluster; a.ResourceName = "mine" }, `named "kafka-cluster"`},
		{"unknown type", func(a *ACL) { a.ResourceType = "delegation_token" }, "not supported"},
		{"any pattern", func(a *ACL) { a.PatternType = "match" }, "pattern type"},
		{"prefixed wildcard", func(a *ACL) { a.PatternType = ACLPrefixed; a.ResourceName = "*" }, "literal name"},
		{"empty name", func(a *ACL) { a.ResourceName = "" }, "1 to 1024"},
		{"principal without type", func(a *ACL) { a.Principal = "alice" }, "Type:name"},
		{"principal without name", func(a *ACL) { a.Principal = "User:" }, "Type:name"},
		{"empty host", func(a *ACL) { a.Host = "" }, "host"},
		{"any operation", func(a *ACL) { a.Operation = "any" }, "operation"},
		{"any permission", func(a *ACL) { a.Permission = "any" }, "permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ok
			tt.edit(&a)
			err := a.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestApplyACLs(t *testing.T) {
	s := NewState()
	a := aclFor("User:alice", "orders", "read", ACLAllow)
	b := aclFor("User:bob", "orders", "write", ACLDeny)
	if res := s.Apply(1, Command{CreateACLs: &CreateACLs{ACLs: []ACL{a, b, a}}}); res.Code != OK {
		t.Fatal(res)
	}
	if got, want := len(s.ACLs), 2; got != want {
		t.Fatalf("got %d ACLs, want %d (duplicates collapse)", got, want)
	}
	// A clone shares the slice; a later change must not show through it.
	published := s.Clone()
	if res := s.Apply(2, Command{CreateACLs: &CreateACLs{ACLs: []ACL{a}}}); res.Code != OK || len(s.ACLs) != 2 {
		t.Fatalf("re-creating an existing ACL: %v, %d ACLs", res, len(s.ACLs))
	}
	bad := aclFor("alice", "orders", "read", ACLAllow)
	if res := s.Apply(3, Command{CreateACLs: &CreateACLs{ACLs: []ACL{aclFor("User:carol", "x", "read", ACLAllow), bad}}}); res.Code != ErrInvalidACL {
		t.Fatalf("got %v, want ErrInvalidACL", res)
	}
	if len(s.ACLs) != 2 {
		t.Fatalf("a refused command changed the ACLs: %v", s.ACLs)
	}
	if res := s.Apply(4, Command{DeleteACLs: &DeleteACLs{ACLs: []ACL{a, aclFor("User:nobody", "x", "read", ACLAllow)}}}); res.Code != OK {
		t.Fatal(res)
	}
	if len(s.ACLs) != 1 || s.ACLs[0] != b {
		t.Fatalf("after delete got %v, want only %v", s.ACLs, b)
	}
	if len(published.ACLs) != 2 || published.ACLs[0] != a {
		t.Fatalf("a published clone changed under its readers: %v", published.ACLs)
	}
	// Snapshots carry ACLs.
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.ACLs) != 1 || back.ACLs[0] != b {
		t.Fatalf("after a JSON round trip got %v", back.ACLs)
	}
}

func TestApplyACLsLimit(t *testing.T) {
	s := NewState()
	acls := make([]ACL, MaxACLs+1)
	for i := range acls {
		acls[i] = aclFor("User:u", "t"+strconv.Itoa(i), "read", ACLAllow)
	}
	if res := s.Apply(1, Command{CreateACLs: &CreateACLs{ACLs: acls}}); res.Code != ErrInvalidACL || !strings.Contains(res.Message, "at most") {
		t.Fatalf("got %v, want the limit refused", res)
	}
	if len(s.ACLs) != 0 {
		t.Fatalf("a refused command stored %d ACLs", len(s.ACLs))
	}
}
