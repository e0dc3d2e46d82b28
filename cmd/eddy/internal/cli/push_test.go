package cli

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
)

// TestClusterStatusAndPushToEddyServe: cluster status shows the version
// of a node run by eddy serve and no slots; pushing an update to it is
// refused with the reason, before any image is read.
func TestClusterStatusAndPushToEddyServe(t *testing.T) {
	n := nodetest.StartWith(t, appliance.Options{Version: "1.2.3"}, nodetest.WithConfig(func(c *nodecfg.Config) { c.AdminToken = "tok" }))
	admin := "http://" + n.Addrs().Admin
	out := mustRun(t, n, "", "cluster", "status", "--admin", admin, "--admin-token", "tok")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "SLOT STATE") {
		t.Fatalf("cluster status:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != "1" || f[1] != "alive" || f[2] != "1.2.3" || f[3] != "-" || !strings.Contains(lines[1], "not an appliance") {
		t.Fatalf("cluster status row %q", lines[1])
	}
	_, errOut, code := run(t, n, "", "image", "push", n.Addrs().Admin, "no-such.img", "--admin-token", "tok")
	if code != 1 || !strings.Contains(errOut, "takes no updates: not an appliance") {
		t.Fatalf("push to eddy serve: exit %d, %s", code, errOut)
	}
	_, errOut, code = run(t, n, "", "image", "push", n.Addrs().Admin, "no-such.img")
	if code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("push without the token: exit %d, %s", code, errOut)
	}
}

func TestAdminURL(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.11":           "http://10.0.0.11:9644",
		"10.0.0.11:19644":     "http://10.0.0.11:19644",
		"box.lan":             "http://box.lan:9644",
		"[fd00::1]":           "http://[fd00::1]:9644",
		"https://box.lan:443": "https://box.lan:443",
	} {
		if got := adminURL(in); got != want {
			t.Errorf("adminURL(%q) = %q, want %q", in, got, want)
		}
	}
}
