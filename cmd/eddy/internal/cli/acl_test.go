package cli

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

func TestACLCommands(t *testing.T) {
	n := nodetest.Start(t)
	out := mustRun(t, n, "", "acl", "add", "--allow", "alice", "--operation", "read,write", "--topic", "orders")
	for _, want := range []string{"added: allow User:alice read topic orders (literal) from *", "added: allow User:alice write topic orders (literal) from *"} {
		if !strings.Contains(out, want) {
			t.Fatalf("add printed %q, want %q", out, want)
		}
	}
	mustRun(t, n, "", "acl", "add", "--deny", "User:*", "--operation", "all", "--topic", "secret.", "--prefixed")
	mustRun(t, n, "", "acl", "add", "--allow", "User:ci", "--operation", "alter", "--cluster", "--host", "10.0.0.7")
	mustRun(t, n, "", "acl", "add", "--allow", "User:alice", "--operation", "read", "--group", "app")
	want := map[meta.ACL]bool{
		{ResourceType: "topic", PatternType: "literal", ResourceName: "orders", Principal: "User:alice", Host: "*", Operation: "read", Permission: "allow"}:               true,
		{ResourceType: "topic", PatternType: "literal", ResourceName: "orders", Principal: "User:alice", Host: "*", Operation: "write", Permission: "allow"}:              true,
		{ResourceType: "topic", PatternType: "prefixed", ResourceName: "secret.", Principal: "User:*", Host: "*", Operation: "all", Permission: "deny"}:                   true,
		{ResourceType: "cluster", PatternType: "literal", ResourceName: "kafka-cluster", Principal: "User:ci", Host: "10.0.0.7", Operation: "alter", Permission: "allow"}: true,
		{ResourceType: "group", PatternType: "literal", ResourceName: "app", Principal: "User:alice", Host: "*", Operation: "read", Permission: "allow"}:                  true,
	}
	got := n.Host().Meta().ACLs
	if len(got) != len(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	for _, a := range got {
		if !want[a] {
			t.Fatalf("stored %+v, which was not asked for", a)
		}
	}

	out = mustRun(t, n, "", "acl", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "RESOURCE") {
		t.Fatalf("list: want a header and 5 ACLs:\n%s", out)
	}
	out = mustRun(t, n, "", "acl", "list", "--principal", "alice")
	if strings.Count(out, "User:alice") != 3 || strings.Contains(out, "User:ci") {
		t.Fatalf("list --principal alice:\n%s", out)
	}
	// match: everything that decides access to secret.plans.
	out = mustRun(t, n, "", "acl", "list", "--topic", "secret.plans", "--pattern", "match")
	if !strings.Contains(out, "secret.") || strings.Contains(out, "orders") {
		t.Fatalf("list --pattern match:\n%s", out)
	}

	out = mustRun(t, n, "", "acl", "remove", "--allow", "alice", "--operation", "write", "--topic", "orders")
	if !strings.Contains(out, "removed: allow User:alice write topic orders") || strings.Contains(out, " read ") {
		t.Fatalf("remove printed:\n%s", out)
	}
	out = mustRun(t, n, "", "acl", "remove", "--topic", "secret.", "--prefixed")
	if !strings.Contains(out, "removed: deny User:* all topic secret.") {
		t.Fatalf("remove --prefixed printed:\n%s", out)
	}
	if out := mustRun(t, n, "", "acl", "remove", "--topic", "nothing"); !strings.Contains(out, "no ACL matched") {
		t.Fatalf("remove of nothing printed:\n%s", out)
	}
	if got := len(n.Host().Meta().ACLs); got != 3 {
		t.Fatalf("%d ACLs left, want 3", got)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"acl", "add", "--operation", "read", "--topic", "x"}, "--allow or --deny"},
		{[]string{"acl", "add", "--allow", "a", "--topic", "x"}, "--operation"},
		{[]string{"acl", "add", "--allow", "a", "--operation", "read"}, "give a resource"},
		{[]string{"acl", "add", "--allow", "a", "--operation", "reed", "--topic", "x"}, `--operation "reed"`},
		{[]string{"acl", "add", "--allow", "a", "--operation", "any", "--topic", "x"}, "use all"},
		{[]string{"acl", "add", "--allow", "a", "--operation", "read", "--topic", "*", "--prefixed"}, "literal name"},
		{[]string{"acl", "remove", "--allow", "a"}, "give a resource"},
	} {
		if _, errOut, code := run(t, n, "", bad.args...); code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("eddy %s: exit %d, %q; want an error containing %q", strings.Join(bad.args, " "), code, errOut, bad.want)
		}
	}
}

// TestACLCommandsRefused: with authorization on, a principal without
// ALTER on the cluster is told so.
func TestACLCommandsRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Authorization.Enabled = true }))
	_, errOut, code := run(t, n, "", "acl", "add", "--allow", "alice", "--operation", "read", "--topic", "orders")
	if code == 0 || !strings.Contains(errOut, "CLUSTER_AUTHORIZATION_FAILED") || !strings.Contains(errOut, "may not alter the cluster") {
		t.Fatalf("add without permission: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, n, "", "acl", "list")
	if code == 0 || !strings.Contains(errOut, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Fatalf("list without permission: exit %d, %q", code, errOut)
	}
}
