package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance/adminapi"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// adminCall sends an admin request and returns its status and error text.
func adminCall(t *testing.T, n *nodetest.Node, method, path, token string, body []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.Addrs().Admin+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e adminapi.ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

func testModule(t *testing.T) []byte {
	t.Helper()
	m, err := os.ReadFile(filepath.Join("..", "..", "plugins", "testdata", "accept_all.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPluginUploadNeedsClusterAlter: with authorization on, uploading or
// deleting a plugin needs ALTER on the cluster; the admin token's
// principal is a super user.
func TestPluginUploadNeedsClusterAlter(t *testing.T) {
	module := testModule(t)
	on := func(c *nodecfg.Config) { c.Authorization.Enabled = true }
	n := nodetest.Start(t, nodetest.WithConfig(on))

	// Loopback without a token is User:ANONYMOUS, which no ACL allows yet.
	code, msg := adminCall(t, n, "PUT", "/v1/plugins/accept", "", module)
	if code != http.StatusForbidden || !strings.Contains(msg, "User:ANONYMOUS may not upload a plugin") || !strings.Contains(msg, "--cluster") {
		t.Fatalf("upload without permission: %d %q, want 403 naming the principal and the fix", code, msg)
	}
	if _, ok := n.Host().Meta().Plugins["accept"]; ok {
		t.Fatal("a refused upload was stored")
	}
	// Reading stays open: listing needs no cluster permission.
	if code, msg := adminCall(t, n, "GET", "/v1/plugins", "", nil); code != http.StatusOK {
		t.Fatalf("list plugins: %d %q", code, msg)
	}

	grant := meta.ACL{ResourceType: meta.ACLCluster, PatternType: meta.ACLLiteral, ResourceName: meta.ACLClusterName,
		Principal: "User:ANONYMOUS", Host: "*", Operation: "alter", Permission: meta.ACLAllow}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Host().ProposeMeta(ctx, meta.Command{CreateACLs: &meta.CreateACLs{ACLs: []meta.ACL{grant}}}); err != nil {
		t.Fatal(err)
	}
	if code, msg := adminCall(t, n, "PUT", "/v1/plugins/accept", "", module); code != http.StatusCreated {
		t.Fatalf("upload with ALTER on the cluster: %d %q", code, msg)
	}

	// A deny on the host wins, for delete too.
	deny := grant
	deny.Permission, deny.Host = meta.ACLDeny, "127.0.0.1"
	if err := n.Host().ProposeMeta(ctx, meta.Command{CreateACLs: &meta.CreateACLs{ACLs: []meta.ACL{deny}}}); err != nil {
		t.Fatal(err)
	}
	if code, msg := adminCall(t, n, "DELETE", "/v1/plugins/accept/1", "", nil); code != http.StatusForbidden || !strings.Contains(msg, "delete a plugin") {
		t.Fatalf("delete with a deny: %d %q, want 403", code, msg)
	}
	if err := n.Host().ProposeMeta(ctx, meta.Command{DeleteACLs: &meta.DeleteACLs{ACLs: []meta.ACL{deny}}}); err != nil {
		t.Fatal(err)
	}
	if code, msg := adminCall(t, n, "DELETE", "/v1/plugins/accept/1", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete with ALTER on the cluster: %d %q", code, msg)
	}

	// The admin token's principal, User:admin, needs no ACL.
	withToken := nodetest.Start(t, nodetest.WithConfig(on), nodetest.WithConfig(func(c *nodecfg.Config) { c.AdminToken = "s3cret" }))
	if code, msg := adminCall(t, withToken, "PUT", "/v1/plugins/accept", "s3cret", module); code != http.StatusCreated {
		t.Fatalf("upload with the admin token: %d %q", code, msg)
	}
}

// TestPluginUploadWithoutAuthorization: authorization off (the default)
// changes nothing.
func TestPluginUploadWithoutAuthorization(t *testing.T) {
	n := nodetest.Start(t)
	if code, msg := adminCall(t, n, "PUT", "/v1/plugins/accept", "", testModule(t)); code != http.StatusCreated {
		t.Fatalf("upload: %d %q", code, msg)
	}
}
