package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
)

// TestUserAndCertCommands: against a node whose QUIC listener requires
// client certificates and whose Kafka listener requires SASL, `eddy cert
// client` makes a certificate the CLI then gets in with; `eddy user add`
// (password on stdin) makes a user that logs in with --sasl-*; `user
// list` shows it without its credential; `user delete` locks it out.
func TestUserAndCertCommands(t *testing.T) {
	dir := t.TempDir()
	adminPW := filepath.Join(dir, "admin.pw")
	if err := os.WriteFile(adminPW, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.KafkaTLS = true
		c.Auth.QUIC = nodecfg.AuthMTLS
		c.Auth.Kafka = nodecfg.AuthSASL
		c.Auth.Users = []nodecfg.UserConfig{{Name: "admin", PasswordFile: adminPW}}
	}))

	out := mustRun(t, n, "", "cert", "client", "sensor-1", "--data", n.Config.DataDir, "--out", dir)
	if !strings.Contains(out, "User:sensor-1") {
		t.Fatalf("cert client: %q", out)
	}
	if _, errOut, code := run(t, n, "", "topic", "create", "readings"); code == 0 {
		t.Fatalf("no client certificate, yet: %q", errOut)
	}
	cert := []string{"--client-cert", filepath.Join(dir, "sensor-1.crt"), "--client-key", filepath.Join(dir, "sensor-1.key")}
	mustRun(t, n, "", append(cert, "topic", "create", "readings")...)

	tcp := func(args ...string) []string {
		return append([]string{"--transport", "tcp", "--brokers", n.Addrs().Kafka, "--ca", n.CAFile()}, args...)
	}
	asAdmin := tcp("--sasl-user", "admin", "--sasl-password-file", adminPW)
	mustRun(t, n, "bob-pw\n", append(asAdmin, "user", "add", "bob")...)
	out = mustRun(t, n, "", append(asAdmin, "user", "list")...)
	if !strings.Contains(out, "bob") || !strings.Contains(out, "SCRAM-SHA-512=iterations=4096") || !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}
	bobPW := filepath.Join(dir, "bob.pw")
	if err := os.WriteFile(bobPW, []byte("bob-pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	asBob := tcp("--sasl-user", "bob", "--sasl-password-file", bobPW, "--sasl-mechanism", "SCRAM-SHA-256")
	mustRun(t, n, "hello\n", append(asBob, "produce", "readings")...)
	mustRun(t, n, "", append(asAdmin, "user", "delete", "bob")...)
	if _, errOut, code := run(t, n, "", append(asBob, "topic", "list")...); code == 0 || !strings.Contains(errOut, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("deleted user: exit %d, %q", code, errOut)
	}
}

// TestServeRefusesExposedWithoutAuth: `eddy serve` on an address beyond
// loopback without client authentication refuses to start and names the
// setting to add.
func TestServeRefusesExposedWithoutAuth(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--quic-addr", "0.0.0.0:0"}, "auth.quic: mtls"},
		{[]string{"--kafka-addr", "0.0.0.0:0"}, "kafka_tls: true"},
		{[]string{"--admin-addr", "0.0.0.0:0"}, "admin_token"},
	} {
		var out, errOut strings.Builder
		args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
		if code := Run(t.Context(), args, strings.NewReader(""), &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "insecure: true") {
			t.Errorf("eddy %s: exit %d, %q; want a refusal naming %q", strings.Join(args, " "), code, errOut.String(), tc.want)
		}
	}
}

// TestUserViaAdmin: the operator holding the admin token makes the first
// user through the admin API, which then logs in over SASL; without the
// token the admin API refuses.
func TestUserViaAdmin(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.AdminToken = "tok"
		c.KafkaTLS = true // run() passes --ca
		c.Auth.Kafka = nodecfg.AuthSASL
	}))
	admin := []string{"--admin", "http://" + n.Addrs().Admin}
	if _, errOut, code := run(t, n, "pw-1\n", append(admin, "user", "add", "--via-admin", "first")...); code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("without the token: exit %d, %q", code, errOut)
	}
	withToken := append(admin, "--admin-token", "tok")
	mustRun(t, n, "pw-1\n", append(withToken, "user", "add", "--via-admin", "first")...)
	if _, errOut, code := run(t, n, "pw-2\n", append(withToken, "user", "add", "--via-admin", "--mechanism", "SCRAM-SHA-256", "second")...); code == 0 || !strings.Contains(errOut, "--mechanism needs the Kafka API") {
		t.Fatalf("--mechanism via admin: exit %d, %q", code, errOut)
	}
	out := mustRun(t, n, "", append(withToken, "user", "list", "--via-admin")...)
	if !strings.Contains(out, "first") || !strings.Contains(out, "SCRAM-SHA-256=iterations=4096 SCRAM-SHA-512=iterations=4096") {
		t.Fatalf("list via admin:\n%s", out)
	}
	t.Setenv("EDDY_SASL_PASSWORD", "pw-1")
	mustRun(t, n, "", "--transport", "tcp", "--brokers", n.Addrs().Kafka, "--sasl-user", "first", "topic", "list")
	mustRun(t, n, "", append(withToken, "user", "delete", "--via-admin", "first")...)
	if _, errOut, code := run(t, n, "", "--transport", "tcp", "--brokers", n.Addrs().Kafka, "--sasl-user", "first", "topic", "list"); code == 0 || !strings.Contains(errOut, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("deleted user: exit %d, %q", code, errOut)
	}
}
