package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/transport"
)

func newCertCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Issue client certificates signed by a node's CA",
	}
	cmd.AddCommand(newCertClientCmd())
	return cmd
}

func newCertClientCmd() *cobra.Command {
	var (
		dataDir    string
		secretFile string
		out        string
		validity   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "client NAME",
		Short: "Issue a client certificate for NAME (the principal User:NAME)",
		Long: `Issue a client certificate whose common name is NAME, signed by the CA that
nodes verify client certificates with by default (without auth.client_ca):

  - in a cluster with cluster_secret, the cluster CA, derived from the secret
    (--cluster-secret-file or $EDDY_CLUSTER_SECRET), on any machine;
  - otherwise the node's own CA, whose key is in <data>/tls/ca.key (run this
    on the node, with --data).

Writes NAME.crt and NAME.key (0600) into --out. Clients present them with
--client-cert and --client-key; brokers know them as User:NAME.`,
		Example: `  eddy cert client alice --data /var/lib/eddy
  EDDY_CLUSTER_SECRET=... eddy cert client sensor-17 --out /etc/eddy/clients`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var secret []byte
			switch {
			case secretFile != "":
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--cluster-secret-file: %w", err)
				}
				secret = trimNewline(b)
			case os.Getenv("EDDY_CLUSTER_SECRET") != "":
				secret = []byte(os.Getenv("EDDY_CLUSTER_SECRET"))
			}
			certPEM, keyPEM, err := transport.IssueClientCert(filepath.Join(dataDir, "tls"), secret, name, validity)
			if err != nil {
				return err
			}
			certPath, keyPath := filepath.Join(out, name+".crt"), filepath.Join(out, name+".key")
			for _, p := range []string{certPath, keyPath} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s exists; remove it or choose another --out", p)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for User:%s\n", certPath, keyPath, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", nodecfg.DefaultDataDir, "the node's data directory (its CA is in <data>/tls)")
	f.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster_secret (default $EDDY_CLUSTER_SECRET); signs with the cluster CA")
	f.StringVar(&out, "out", ".", "directory to write NAME.crt and NAME.key into")
	f.DurationVar(&validity, "validity", transport.DefaultClientCertValidity, "how long the certificate is valid")
	return cmd
}
