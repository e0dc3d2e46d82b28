package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// scramIterations is the cost of the credentials `eddy user add` makes:
// Kafka's minimum, so PLAIN logins (which pay it per connection) stay
// cheap on small boxes.
const scramIterations = 4096

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and delete SASL users (SCRAM credentials, stored in the cluster's metadata)",
		Long: `Manage the users clients log in as on listeners with auth: sasl (SCRAM-SHA-256,
SCRAM-SHA-512 and PLAIN). A user is known to authorization as User:<name>.

Credentials are salted and hashed by this command (Kafka's
AlterUserScramCredentials); neither the password nor anything a client could
log in with is stored. Changes apply on every node at once, without a restart.
Needs a principal allowed to alter the cluster.

With --via-admin the admin API (--admin, --admin-token) does it instead: how
the operator holding the admin token makes the first user of a secured cluster.`,
	}
	// viaAdmin: the user commands go through the admin API.
	viaAdmin := new(bool)
	cmd.PersistentFlags().BoolVar(viaAdmin, "via-admin", false, "use the admin API (--admin, --admin-token) instead of a Kafka connection")
	cmd.AddCommand(newUserAddCmd(g, viaAdmin), newUserListCmd(g, viaAdmin), newUserDeleteCmd(g, viaAdmin))
	return cmd
}

// scramMechanisms parses --mechanism values.
func scramMechanisms(names []string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for _, n := range names {
		switch strings.ToUpper(n) {
		case "SCRAM-SHA-256":
			out = append(out, kadm.ScramSha256)
		case "SCRAM-SHA-512":
			out = append(out, kadm.ScramSha512)
		default:
			return nil, fmt.Errorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", n)
		}
	}
	return out, nil
}

func newUserAddCmd(g *globals, viaAdmin *bool) *cobra.Command {
	var (
		passwordFile string
		mechanisms   []string
	)
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user, or set its password",
		Long: `Create a user, or set the password of an existing one, with a credential for
each --mechanism (both by default; PLAIN logins check either). The password is
read from --password-file, else $EDDY_PASSWORD, else the first line of stdin.`,
		Example: `  eddy user add alice --password-file alice.pw
  printf '%s\n' "$PW" | eddy user add alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mechs, err := scramMechanisms(mechanisms)
			if err != nil {
				return err
			}
			pw, err := readPassword(passwordFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if *viaAdmin {
				if cmd.Flags().Changed("mechanism") {
					return fmt.Errorf("--mechanism needs the Kafka API: drop --via-admin (the admin API sets both)")
				}
				if err := g.adminClient().SetUser(cmd.Context(), args[0], string(pw)); err != nil {
					return fmt.Errorf("add user %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: SCRAM-SHA-256, SCRAM-SHA-512 set\n", args[0])
				return nil
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var ups []kadm.UpsertSCRAM
			for _, m := range mechs {
				ups = append(ups, kadm.UpsertSCRAM{User: args[0], Mechanism: m, Iterations: scramIterations, Password: string(pw)})
			}
			res, err := c.Admin().AlterUserSCRAMs(cmd.Context(), nil, ups)
			if err != nil {
				return fmt.Errorf("add user %s: %w", args[0], err)
			}
			if r := res[args[0]]; r.Err != nil {
				return fmt.Errorf("add user %s: %w: %s", args[0], r.Err, r.ErrMessage)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s set\n", args[0], strings.Join(mechanisms, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password (default $EDDY_PASSWORD, else stdin)")
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to set a credential for")
	return cmd
}

func newUserListCmd(g *globals, viaAdmin *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "list [NAME...]",
		Short: "List users and their SCRAM mechanisms (never their credentials)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if *viaAdmin {
				users, err := g.adminClient().Users(cmd.Context())
				if err != nil {
					return fmt.Errorf("list users: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tMECHANISMS")
				for _, u := range users {
					var mechs []string
					for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
						if it, ok := u.Mechanisms[m]; ok {
							mechs = append(mechs, fmt.Sprintf("%s=iterations=%d", m, it))
						}
					}
					fmt.Fprintf(tw, "%s\t%s\n", u.Name, strings.Join(mechs, " "))
				}
				return tw.Flush()
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Admin().DescribeUserSCRAMs(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("list users: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tMECHANISMS")
			var failed error
			for _, u := range res.Sorted() {
				if u.Err != nil {
					failed = fmt.Errorf("user %s: %w: %s", u.User, u.Err, u.ErrMessage)
					continue
				}
				var mechs []string
				for _, ci := range u.CredInfos {
					mechs = append(mechs, ci.String())
				}
				fmt.Fprintf(tw, "%s\t%s\n", u.User, strings.Join(mechs, " "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return failed
		},
	}
}

func newUserDeleteCmd(g *globals, viaAdmin *bool) *cobra.Command {
	var mechanisms []string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user (or only some of its credentials, with --mechanism)",
		Long: `Delete a user's SCRAM credentials; without --mechanism, all of them, which
deletes the user. Connections already logged in stay open until they close.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if *viaAdmin {
				if len(mechanisms) > 0 {
					return fmt.Errorf("--mechanism needs the Kafka API: drop --via-admin")
				}
				if err := g.adminClient().DeleteUser(cmd.Context(), args[0]); err != nil {
					return fmt.Errorf("delete user %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
				return nil
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if len(mechanisms) == 0 {
				desc, err := c.Admin().DescribeUserSCRAMs(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("delete user %s: %w", args[0], err)
				}
				d := desc[args[0]]
				if d.Err != nil {
					return fmt.Errorf("delete user %s: %w: %s", args[0], d.Err, d.ErrMessage)
				}
				for _, ci := range d.CredInfos {
					mechanisms = append(mechanisms, ci.Mechanism.String())
				}
			}
			mechs, err := scramMechanisms(mechanisms)
			if err != nil {
				return err
			}
			var dels []kadm.DeleteSCRAM
			for _, m := range mechs {
				dels = append(dels, kadm.DeleteSCRAM{User: args[0], Mechanism: m})
			}
			res, err := c.Admin().AlterUserSCRAMs(cmd.Context(), dels, nil)
			if err != nil {
				return fmt.Errorf("delete user %s: %w", args[0], err)
			}
			if r := res[args[0]]; r.Err != nil {
				return fmt.Errorf("delete user %s: %w: %s", args[0], r.Err, r.ErrMessage)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s deleted\n", args[0], strings.Join(mechanisms, ", "))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", nil, "delete only these SCRAM mechanisms' credentials")
	return cmd
}
