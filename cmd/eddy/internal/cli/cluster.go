package cli

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/sdk"
)

// admin returns the admin API client from the global flags.
func (g *globals) adminClient() *sdk.ClusterAdmin {
	token := g.adminToken
	if token == "" {
		token = os.Getenv("EDDY_ADMIN_TOKEN")
	}
	return &sdk.ClusterAdmin{URL: g.admin, Token: token}
}

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change the cluster's nodes (through the admin API, --admin)",
	}
	cmd.AddCommand(newClusterNodesCmd(g), newClusterAddNodeCmd(g))
	return cmd
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
