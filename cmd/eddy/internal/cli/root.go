package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/sdk"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// globals are the flags every client command shares.
type globals struct {
	brokers    []string
	transport  string
	ca         string
	admin      string
	adminToken string
	auth       authFlags // client certificate and SASL login (auth.go)
}

// dialTimeout bounds how long a command waits for a broker to answer.
const dialTimeout = 15 * time.Second

// defaultCA is where a node started in the current directory keeps its CA.
const defaultCA = "./eddy-data/tls/ca.crt"

// Run executes the eddy command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(stderr, "eddy:", err)
		}
		return 1
	}
	return 0
}

// errSilent is returned by commands that already explained the failure.
var errSilent = errors.New("failed")

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "eddy",
		Short: "eddy: a Kafka-compatible streaming broker for the edge",
		Long: `eddy is a streaming broker in the Kafka family, built to run on edge servers.
Clients speak the Kafka protocol over QUIC (eddy's native transport) or TCP.

Start a local single-node broker:   eddy serve
Create a topic:                     eddy topic create orders --partitions 6
Write records, one per line:        echo hello | eddy produce orders
Read them back:                     eddy consume orders --from-beginning`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.brokers, "brokers", []string{sdk.DefaultBroker}, "brokers to contact, host:port[,host:port...]")
	pf.StringVar(&g.transport, "transport", string(sdk.QUIC), "how to reach brokers: quic (TLS 1.3, eddy's native transport) or tcp (the classic Kafka listener)")
	pf.StringVar(&g.ca, "ca", "", "CA certificate to verify brokers with (default "+defaultCA+" when present)")
	pf.StringVar(&g.admin, "admin", "http://127.0.0.1:9644", "admin API URL, for commands that use it")
	pf.StringVar(&g.adminToken, "admin-token", "", "admin API token, when the cluster has one (default $EDDY_ADMIN_TOKEN)")
	g.auth.register(pf)
	root.AddCommand(newServeCmd(), newTopicCmd(g), newProduceCmd(g), newConsumeCmd(g), newGroupCmd(g), newClusterCmd(g), newPluginCmd(g), newACLCmd(g), newUserCmd(g), newCertCmd(), newBenchCmd(), newImageCmd(g), &cobra.Command{
		Use:   "version",
		Short: "Print eddy's version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "eddy", Version) },
	})
	return root
}

// dial connects the SDK with the global flags.
func (g *globals) dial(ctx context.Context) (*sdk.Client, error) {
	opts := []sdk.Option{sdk.WithBrokers(g.brokers...), sdk.WithTransport(sdk.Transport(g.transport)), sdk.WithClientID("eddy-cli")}
	ca := g.ca
	if ca == "" {
		if _, err := os.Stat(defaultCA); err == nil {
			ca = defaultCA
		}
	}
	if ca != "" && (g.transport == string(sdk.QUIC) || g.transport == "") {
		opts = append(opts, sdk.WithCAFile(ca))
	} else if g.ca != "" {
		// An explicit CA with TCP means the Kafka listener has TLS on.
		opts = append(opts, sdk.WithCAFile(g.ca))
	}
	authOpts, err := g.auth.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, authOpts...)
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := sdk.Dial(dctx, opts...)
	if err != nil {
		if g.transport == string(sdk.QUIC) && ca == "" {
			return nil, fmt.Errorf("%w\n(no --ca given and %s not found: pass the node's <data>/tls/ca.crt with --ca)", err, defaultCA)
		}
		return nil, err
	}
	return c, nil
}
