package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newPluginCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Upload, list, describe and delete Wasm plugins (through the admin API, --admin)",
		Long: `Plugins are WebAssembly modules that run inside the broker: validators checked
on every produce, partitioners the SDK runs to place records, and retention
policies. Upload a module, then attach it to a topic with a topic config:

  eddy plugin upload orders-schema jsonschema.wasm
  eddy topic create orders --config eddy.validator=orders-schema \
      --config 'eddy.validator.config.schema={"type":"object","required":["id"]}'
  eddy topic alter orders --config eddy.validator=orders-schema@1   # pin (roll back to) version 1
  eddy topic alter orders --delete-config eddy.validator            # detach

docs/plugins.md describes the module contract.`,
	}
	cmd.AddCommand(newPluginUploadCmd(g), newPluginListCmd(g), newPluginDescribeCmd(g), newPluginDeleteCmd(g))
	return cmd
}

func newPluginUploadCmd(g *globals) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:     "upload NAME FILE.wasm",
		Short:   "Upload a module as the next version of plugin NAME",
		Example: "  eddy plugin upload orders-schema plugins/examples/jsonschema/jsonschema.wasm",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			v, err := g.adminClient().UploadPlugin(cmd.Context(), args[0], module, description)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uploaded %s version %d (%s, %d bytes, sha256 %s; compiled in %.0f ms, instantiated in %.1f ms)\n",
				args[0], v.Version, strings.Join(v.Kinds, ", "), v.Size, v.SHA256[:12], v.CompileMs, v.InstantiateMs)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "a note stored with the version")
	return cmd
}

func newPluginListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List plugins with their latest version and the topics using them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := g.adminClient().Plugins(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tLATEST\tVERSIONS\tKINDS\tSIZE\tUPLOADED\tUSED BY")
			for _, p := range ps {
				l := p.Versions[len(p.Versions)-1]
				var used []string
				for _, v := range p.Versions {
					used = append(used, v.UsedBy...)
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%s\t%s\n", p.Name, l.Version, len(p.Versions), strings.Join(l.Kinds, ","), l.Size, l.UploadedAt, strings.Join(used, ", "))
			}
			return w.Flush()
		},
	}
}

func newPluginDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a plugin's versions, the topics using each, and this node's call counts, failures and latency",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.adminClient().Plugin(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "plugin %s\n", p.Name)
			for _, v := range p.Versions {
				latest := ""
				if v.Latest {
					latest = " (latest)"
				}
				fmt.Fprintf(out, "\nversion %d%s\n  kinds:    %s\n  abi:      %s\n  size:     %d bytes\n  sha256:   %s\n  uploaded: %s\n",
					v.Version, latest, strings.Join(v.Kinds, ", "), v.ABI, v.Size, v.SHA256, v.UploadedAt)
				if len(v.UsedBy) > 0 {
					fmt.Fprintf(out, "  used by:  %s\n", strings.Join(v.UsedBy, ", "))
				} else {
					fmt.Fprintf(out, "  used by:  no topic\n")
				}
				for _, s := range v.Stats {
					state := "ok"
					if s.Failed {
						state = "FAILED (disabled until the node restarts or the topic's setting changes)"
					}
					fmt.Fprintf(out, "  on this node: %d calls, %d records, %d failures, mean %.2f ms, max %.2f ms per call, %s\n",
						s.Calls, s.Records, s.Failures, s.MeanMs, s.MaxMs, state)
					if s.LastError != "" {
						fmt.Fprintf(out, "    last error: %s\n", s.LastError)
					}
				}
			}
			return nil
		},
	}
}

func newPluginDeleteCmd(g *globals) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "delete NAME --version V",
		Short: "Delete one version of a plugin (refused while a topic uses it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 1 {
				return fmt.Errorf("give the version to delete with --version (eddy plugin describe %s lists them)", args[0])
			}
			if err := g.adminClient().DeletePlugin(cmd.Context(), args[0], version); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s version %d\n", args[0], version)
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to delete")
	return cmd
}
