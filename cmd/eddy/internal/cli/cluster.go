package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/sdk"
)

// admin returns the admin API client from the global flags.
func (g *globals) adminClient() *sdk.ClusterAdmin {
	token := g.adminToken
	if token == "" {
		token = os.Getenv("EDDY_ADMIN_TOKEN")
	}
	a := &sdk.ClusterAdmin{URL: g.admin, Token: token}
	if strings.HasPrefix(g.admin, "https://") {
		// An https admin API is verified with the node's CA, as QUIC is.
		ca := g.ca
		if ca == "" {
			ca = defaultCA
		}
		if pem, err := os.ReadFile(ca); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
				// An admin API with auth.admin_tls knows a client certificate's holder.
				if cert, err := tls.LoadX509KeyPair(g.auth.clientCert, g.auth.clientKey); err == nil {
					tc.Certificates = []tls.Certificate{cert}
				}
				a.HTTP = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			}
		}
	}
	return a
}

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change the cluster's nodes (through the admin API, --admin)",
	}
	cmd.AddCommand(newClusterStatusCmd(g), newClusterNodesCmd(g), newClusterAddNodeCmd(g), newClusterRebalanceCmd(g))
	return cmd
}

func newClusterStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Each node's state, version and boot slot (on eddy appliances)",
		Long: `Show every node with its state, the eddy version it runs and, on nodes booted
from an eddy image, the running slot, whether that slot is the boot loader's
default (good) or on trial after an update, and the other slot's version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := g.adminClient().Nodes(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSTATE\tVERSION\tSLOT\tSLOT STATE\tOTHER SLOT\tLEADERS\tUPDATES")
			for _, n := range nodes {
				version, slot, state, other, updates := "?", "-", "-", "-", "-"
				if s := n.System; s != nil {
					version, slot, state, updates = s.Version, orDash(s.Slot), orDash(s.State), orDash(s.Updates)
					for _, o := range s.Slots {
						if o.Name != s.Slot {
							other = o.Name + ": " + orDash(o.Version)
						}
					}
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.ID, n.State, version, slot, state, other, n.Leaders, updates)
			}
			return w.Flush()
		},
	}
}

func newClusterNodesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List nodes, their state and how many partition replicas and leaders each holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := g.adminClient().Nodes(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSTATE\tROLE\tRACK\tKAFKA\tQUIC\tRAFT\tREPLICAS\tLEADERS")
			for _, n := range nodes {
				role := "broker"
				switch {
				case n.MetaLeader:
					role = "controller (leader)"
				case n.Controller:
					role = "controller"
				}
				rack := n.Rack
				if rack == "" {
					rack = "-"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", n.ID, n.State, role, rack, n.KafkaAddr, n.QUICAddr, n.RaftAddr, n.Replicas, n.Leaders)
			}
			return w.Flush()
		},
	}
}

func newClusterAddNodeCmd(g *globals) *cobra.Command {
	var raftAddr string
	cmd := &cobra.Command{
		Use:   "add-node ID --raft-addr HOST:PORT",
		Short: "Add a node to the cluster; then start it with eddy serve --join",
		Long: `Add a node to a running cluster. The node gets the metadata as a non-voting
member of the meta shard and becomes a controller if fewer than three vote.
Start it afterwards with the same id and raft address and --join URL of any
node's admin API. (eddy serve --join also adds the node itself, so this
command is only needed when the new node cannot reach the admin API.)`,
		Example: "  eddy cluster add-node 4 --raft-addr 10.0.0.4:7100 --admin http://10.0.0.1:9644",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("node id %q: want a number >= 1", args[0])
			}
			if raftAddr == "" {
				return fmt.Errorf("--raft-addr is required: the address other nodes reach node %d's Raft at", id)
			}
			if err := g.adminClient().AddNode(cmd.Context(), id, raftAddr); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added node %d (raft %s); start it with: eddy serve --node-id %d --join %s ...\n", id, raftAddr, id, g.admin)
			return nil
		},
	}
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "the new node's Raft address, as peers reach it")
	return cmd
}

func newClusterRebalanceCmd(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Spread partition replicas and leaders evenly over the live nodes",
		Long: `Plan and start moving partition replicas so every live node holds about the
same number, moving replicas off nodes that are down, and hand each partition's
leadership to its preferred replica. Replicas move through Raft membership
changes (a new replica catches up as a learner before it votes, and only then is
an old one removed), so producers and consumers keep running throughout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			moves, err := g.adminClient().Rebalance(ctx)
			if err != nil {
				return err
			}
			if len(moves) == 0 {
				fmt.Fprintln(out, "replicas are balanced; asked leaders to move to their preferred replicas")
				return nil
			}
			for _, m := range moves {
				fmt.Fprintf(out, "%s/%d: %v -> %v\n", m.Topic, m.Partition, m.Replicas, m.Target)
			}
			fmt.Fprintf(out, "started %d moves\n", len(moves))
			if wait {
				return waitMoves(cmd, g)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every move has finished, showing progress")
	return cmd
}

// waitMoves reports progress until no partition is moving.
func waitMoves(cmd *cobra.Command, g *globals) error {
	last := -1
	err := g.adminClient().WaitReassignments(cmd.Context(), func(ms []sdk.Move) {
		if len(ms) != last {
			fmt.Fprintf(cmd.OutOrStdout(), "%d partitions still moving\n", len(ms))
			last = len(ms)
		}
	})
	if err == nil {
		fmt.Fprintln(cmd.OutOrStdout(), "all moves finished")
	}
	return err
}
