package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newACLCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, list and remove access control lists (ACLs)",
		Long: `Manage who may do what, with Kafka's ACL model. An ACL allows or denies a
principal (User:alice, or User:* for every user), connecting from a host (an IP
address, or * for any), an operation on a resource: a topic, a consumer group,
a transactional id or the cluster. A resource is named literally (* matches
every name) or by a prefix (--prefixed).

ACLs are stored in the cluster and take effect on every node at once, without a
restart, once the nodes run with authorization enabled (authorization.enabled
in the node config). Then a request no ACL allows is refused, any matching deny
wins over allows, and super users (authorization.super_users, and User:admin)
skip the checks. Changing ACLs needs ALTER on the cluster; listing them needs
DESCRIBE on the cluster.

Operations: all, read, write, create, delete, alter, describe, cluster_action,
describe_configs, alter_configs, idempotent_write. read, write, delete and
alter imply describe; alter_configs implies describe_configs.`,
	}
	cmd.AddCommand(newACLAddCmd(g), newACLListCmd(g), newACLRemoveCmd(g))
	return cmd
}

// aclFlags are the flags add, list and remove share.
type aclFlags struct {
	allow, deny    []string
	principal      string
	ops            []string
	hosts          []string
	topics, groups []string
	txnIDs         []string
	cluster        bool
	prefixed       bool
	pattern        string
	defaultPattern string
}

func (f *aclFlags) resourceFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.topics, "topic", nil, "a topic name (or prefix with --prefixed; * for every topic); repeatable")
	cmd.Flags().StringArrayVar(&f.groups, "group", nil, "a consumer group id (or prefix with --prefixed; * for every group); repeatable")
	cmd.Flags().StringArrayVar(&f.txnIDs, "transactional-id", nil, "a transactional id (or prefix with --prefixed); repeatable")
	cmd.Flags().BoolVar(&f.cluster, "cluster", false, "the cluster itself (cluster-wide operations: create topics, change ACLs, upload plugins...)")
	cmd.Flags().BoolVar(&f.prefixed, "prefixed", false, "treat --topic, --group and --transactional-id as name prefixes")
}

func (f *aclFlags) hasResource() bool {
	return len(f.topics)+len(f.groups)+len(f.txnIDs) > 0 || f.cluster
}

// principals adds "User:" to bare names, so --allow alice means User:alice.
func principals(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if !strings.Contains(p, ":") {
			p = "User:" + p
		}
		out[i] = p
	}
	return out
}

func parseOps(names []string) ([]kadm.ACLOperation, error) {
	var ops []kadm.ACLOperation
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			op, err := kmsg.ParseACLOperation(part)
			if err != nil {
				return nil, fmt.Errorf("--operation %q: use all, read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs or idempotent_write", part)
			}
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// patternType returns the pattern for the builder: --prefixed, else
// --pattern, else the command's default.
func (f *aclFlags) patternType() (kadm.ACLPattern, error) {
	if f.prefixed {
		if f.pattern != "" && !strings.EqualFold(f.pattern, "prefixed") {
			return 0, fmt.Errorf("--prefixed and --pattern %s contradict each other", f.pattern)
		}
		return kadm.ACLPatternPrefixed, nil
	}
	name := f.pattern
	if name == "" {
		name = f.defaultPattern
	}
	p, err := kmsg.ParseACLResourcePatternType(name)
	if err != nil || p == kadm.ACLPatternUnknown {
		return 0, fmt.Errorf("--pattern %q: use literal, prefixed, any or match", name)
	}
	return p, nil
}

// resources sets the builder's resources; for filters, no resource flag
// means every resource.
func (f *aclFlags) resources(b *kadm.ACLBuilder, filter bool) {
	if filter && !f.hasResource() {
		b.AnyResource()
		return
	}
	b.MaybeTopics(f.topics...).MaybeGroups(f.groups...).MaybeTransactionalIDs(f.txnIDs...).MaybeClusters(f.cluster)
}

func newACLAddCmd(g *globals) *cobra.Command {
	f := &aclFlags{defaultPattern: "literal"}
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Allow or deny principals operations on resources",
		Long: `Add ACLs: every combination of the principals, operations, resources and
hosts given. Adding an ACL that exists changes nothing.`,
		Example: `  eddy acl add --allow User:alice --operation write --topic orders
  eddy acl add --allow User:analytics --operation read --topic sensor. --prefixed
  eddy acl add --allow User:analytics --operation read --group analytics
  eddy acl add --deny User:* --operation all --topic secret. --prefixed
  eddy acl add --allow User:ci --operation alter --cluster     # may upload plugins and change ACLs
  eddy acl add --allow User:edge-7 --host 10.0.0.7 --operation write --topic telemetry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.allow)+len(f.deny) == 0 {
				return errors.New("give at least one principal with --allow or --deny")
			}
			if len(f.ops) == 0 {
				return errors.New("give at least one --operation")
			}
			if !f.hasResource() {
				return errors.New("give a resource: --topic, --group, --transactional-id or --cluster")
			}
			ops, err := parseOps(f.ops)
			if err != nil {
				return err
			}
			for _, op := range ops {
				if op == kadm.OpAny {
					return errors.New("--operation any is for list and remove; to grant everything use all")
				}
			}
			pattern, err := f.patternType()
			if err != nil {
				return err
			}
			if pattern != kadm.ACLPatternLiteral && pattern != kadm.ACLPatternPrefixed {
				return fmt.Errorf("an ACL's pattern is literal or prefixed, not %s", pattern)
			}
			b := kadm.NewACLs().MaybeAllow(principals(f.allow)...).MaybeDeny(principals(f.deny)...).
				Operations(ops...).ResourcePatternType(pattern)
			if len(f.hosts) > 0 {
				if len(f.allow) > 0 {
					b.MaybeAllowHosts(f.hosts...)
				}
				if len(f.deny) > 0 {
					b.MaybeDenyHosts(f.hosts...)
				}
			}
			f.resources(b, false)
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			results, err := c.Admin().CreateACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("add ACLs: %w", err)
			}
			var failed []string
			for _, r := range results {
				line := aclLine(r.Permission, r.Principal, r.Host, r.Operation, r.Type, r.Pattern, r.Name)
				if r.Err != nil {
					failed = append(failed, fmt.Sprintf("%s: %v%s", line, r.Err, detail(r.ErrMessage)))
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), "added:", line)
			}
			if len(failed) > 0 {
				return fmt.Errorf("add ACLs:\n  %s", strings.Join(failed, "\n  "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.allow, "allow", nil, "principal to allow (User:alice; a bare name means User:name; User:* is everyone); repeatable")
	cmd.Flags().StringArrayVar(&f.deny, "deny", nil, "principal to deny; repeatable")
	cmd.Flags().StringArrayVar(&f.ops, "operation", nil, "operation to allow or deny; repeatable or comma-separated")
	cmd.Flags().StringArrayVar(&f.hosts, "host", nil, "IP address the principal connects from (default * for any); repeatable")
	f.resourceFlags(cmd)
	return cmd
}

func newACLListCmd(g *globals) *cobra.Command {
	f := &aclFlags{defaultPattern: "any"}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List ACLs, optionally only those for some resources or a principal",
		Long: `List ACLs. With no flags, every ACL of the cluster. --topic/--group/
--transactional-id/--cluster select resources: by default (--pattern any) the
ACLs on exactly that name, of any pattern type; --pattern match lists every ACL
that applies to that name (literal, wildcard and prefixes), which is what
decides access.`,
		Example: `  eddy acl list
  eddy acl list --principal User:alice
  eddy acl list --topic orders --pattern match`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, err := parseOps(f.ops)
			if err != nil {
				return err
			}
			pattern, err := f.patternType()
			if err != nil {
				return err
			}
			b := kadm.NewACLs().Operations(ops...).ResourcePatternType(pattern)
			if f.principal != "" {
				p := principals([]string{f.principal})[0]
				b.Allow(p).Deny(p)
			} else {
				b.Allow().Deny()
			}
			if len(f.hosts) > 0 {
				b.AllowHosts(f.hosts...).DenyHosts(f.hosts...)
			} else {
				b.AllowHosts().DenyHosts()
			}
			f.resources(b, true)
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			results, err := c.Admin().DescribeACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("list ACLs: %w", err)
			}
			var rows []kadm.DescribedACL
			for _, r := range results {
				if r.Err != nil {
					return fmt.Errorf("list ACLs: %w%s", r.Err, detail(r.ErrMessage))
				}
				rows = append(rows, r.Described...)
			}
			return printACLs(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVar(&f.principal, "principal", "", "only ACLs of this principal")
	cmd.Flags().StringArrayVar(&f.ops, "operation", nil, "only ACLs of this operation; repeatable")
	cmd.Flags().StringArrayVar(&f.hosts, "host", nil, "only ACLs for this host; repeatable")
	cmd.Flags().StringVar(&f.pattern, "pattern", "", "how --topic/--group names select ACLs: any (default), match, literal or prefixed")
	f.resourceFlags(cmd)
	return cmd
}

func newACLRemoveCmd(g *globals) *cobra.Command {
	f := &aclFlags{defaultPattern: "literal"}
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove ACLs",
		Long: `Remove the ACLs matching the flags. A resource is required; principals,
operations and hosts narrow the match (none given: any). Names match literal
ACLs unless --prefixed (or --pattern any|match, which can remove many ACLs at
once: list with the same flags first to see what would go).`,
		Example: `  eddy acl remove --allow User:alice --operation write --topic orders
  eddy acl remove --topic sensor. --prefixed            # every ACL on that prefix`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !f.hasResource() {
				return errors.New("give a resource: --topic, --group, --transactional-id or --cluster")
			}
			ops, err := parseOps(f.ops)
			if err != nil {
				return err
			}
			pattern, err := f.patternType()
			if err != nil {
				return err
			}
			b := kadm.NewACLs().Operations(ops...).ResourcePatternType(pattern)
			switch {
			case len(f.allow)+len(f.deny) == 0:
				b.Allow().Deny()
			default:
				b.MaybeAllow(principals(f.allow)...).MaybeDeny(principals(f.deny)...)
			}
			if len(f.allow) > 0 || len(f.deny) == 0 {
				b.AllowHosts(f.hosts...)
			}
			if len(f.deny) > 0 || len(f.allow) == 0 {
				b.DenyHosts(f.hosts...)
			}
			f.resources(b, false)
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			results, err := c.Admin().DeleteACLs(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("remove ACLs: %w", err)
			}
			n := 0
			for _, r := range results {
				if r.Err != nil {
					return fmt.Errorf("remove ACLs: %w%s", r.Err, detail(r.ErrMessage))
				}
				for _, d := range r.Deleted {
					fmt.Fprintln(cmd.OutOrStdout(), "removed:", aclLine(d.Permission, d.Principal, d.Host, d.Operation, d.Type, d.Pattern, d.Name))
					n++
				}
			}
			if n == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no ACL matched")
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.allow, "allow", nil, "remove ACLs allowing this principal; repeatable")
	cmd.Flags().StringArrayVar(&f.deny, "deny", nil, "remove ACLs denying this principal; repeatable")
	cmd.Flags().StringArrayVar(&f.ops, "operation", nil, "remove only ACLs of this operation (default any); repeatable")
	cmd.Flags().StringArrayVar(&f.hosts, "host", nil, "remove only ACLs for this host (default any); repeatable")
	cmd.Flags().StringVar(&f.pattern, "pattern", "", "how names select ACLs: literal (default), prefixed, any or match")
	f.resourceFlags(cmd)
	return cmd
}

// aclLine is one ACL as a sentence: "allow User:alice write topic orders
// (literal) from *".
func aclLine(perm kmsg.ACLPermissionType, principal, host string, op kadm.ACLOperation, rt kmsg.ACLResourceType, pattern kadm.ACLPattern, name string) string {
	return fmt.Sprintf("%s %s %s %s %s (%s) from %s", strings.ToLower(perm.String()), principal, strings.ToLower(op.String()),
		strings.ToLower(rt.String()), name, strings.ToLower(pattern.String()), host)
}

func printACLs(out io.Writer, rows []kadm.DescribedACL) error {
	seen := map[kadm.DescribedACL]bool{}
	uniq := rows[:0]
	for _, r := range rows {
		if !seen[r] {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	sort.Slice(uniq, func(i, j int) bool {
		a, b := uniq[i], uniq[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Pattern != b.Pattern {
			return a.Pattern < b.Pattern
		}
		if a.Principal != b.Principal {
			return a.Principal < b.Principal
		}
		if a.Operation != b.Operation {
			return a.Operation < b.Operation
		}
		if a.Permission != b.Permission {
			return a.Permission < b.Permission
		}
		return a.Host < b.Host
	})
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tOPERATION\tPERMISSION\tHOST")
	for _, r := range uniq {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToLower(r.Type.String()), r.Name, strings.ToLower(r.Pattern.String()),
			r.Principal, strings.ToLower(r.Operation.String()), strings.ToLower(r.Permission.String()), r.Host)
	}
	return w.Flush()
}
