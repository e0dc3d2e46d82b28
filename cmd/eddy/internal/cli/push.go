package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/appliance/image"
	"github.com/eddybroker/eddy/sdk"
)

func newImagePushCmd(g *globals) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "push HOST IMAGE",
		Short: "Update a running box: write the image's kernel to its other slot and boot it",
		Long: `Push an image built by eddy image build to a running eddy box through its
admin API (HOST is host[:port], 9644 by default, or a URL). The box writes the
image's unified kernel image to the slot it is not running, reboots into it
once, and makes it the default only after the broker has served for
update.healthy_after. If the new slot does not come up — a kernel panic, a
broker that never serves within update.trial_timeout — the box reboots and
the boot loader boots the old slot, with the data partition untouched.

The push needs the admin token (--admin-token or $EDDY_ADMIN_TOKEN) or a
client certificate, even on an insecure lab box. Push to one box of a
cluster at a time: each one's partitions fail over while it reboots.

With --wait (the default) it follows the box through the reboot and exits 0
once the new slot is marked good, or 1 if the box rolled back.`,
		Example: `  eddy image push 10.0.0.11 eddy.img --admin-token "$TOKEN"
  eddy image push 127.0.0.1:19644 bin/eddy.img --admin-token lab-admin-token   # the qemu example`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			admin := *g
			admin.admin = adminURL(args[0])
			a := admin.adminClient()
			before, err := a.System(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if before.Slot == "" || !strings.HasPrefix(before.Updates, "enabled") {
				return fmt.Errorf("%s (version %s) takes no updates: %s", args[0], before.Version, before.Updates)
			}
			uki, osrel, err := image.ReadUKI(ctx, args[1])
			if err != nil {
				return err
			}
			version := osrel["IMAGE_VERSION"]
			fmt.Fprintf(out, "%s: version %s on slot %s (%s); pushing %s (version %s, %.1f MB)\n",
				args[0], before.Version, before.Slot, before.State, args[1], version, float64(len(uki))/1e6)
			start := time.Now()
			last := time.Time{}
			res, err := a.PushUpdate(ctx, uki, func(sent, total int64) {
				if time.Since(last) > time.Second || sent == total {
					last = time.Now()
					fmt.Fprintf(errOut, "\r  sent %3d%% (%.1f of %.1f MB)", sent*100/total, float64(sent)/1e6, float64(total)/1e6)
				}
			})
			fmt.Fprintln(errOut)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "written to slot %s in %s; the box reboots into it once\n", res.Slot, time.Since(start).Round(100*time.Millisecond))
			if !wait {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return followUpdate(wctx, a, before, res, start, out)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", true, "follow the box through its reboot until the new slot is marked good or rolled back")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	return cmd
}

// followUpdate polls the box until the pushed slot is marked good, or
// the box is back on the old slot.
func followUpdate(ctx context.Context, a *sdk.ClusterAdmin, before sdk.SystemStatus, res sdk.UpdateResult, start time.Time, out io.Writer) error {
	bootID := before.BootID
	reported := ""
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the box did not settle on a slot in time (last seen: %s); look at its console", orDash(reported))
		case <-time.After(2 * time.Second):
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := a.System(pctx)
		cancel()
		if err != nil {
			continue // rebooting
		}
		if st.BootID == bootID {
			continue // not rebooted yet
		}
		took := time.Since(start).Round(100 * time.Millisecond)
		now := fmt.Sprintf("version %s on slot %s (%s)", st.Version, st.Slot, st.State)
		if now != reported {
			fmt.Fprintf(out, "%s: box serving %s\n", took, now)
			reported = now
		}
		switch {
		case st.Slot == res.Slot && st.State == "good":
			fmt.Fprintf(out, "update complete: slot %s (version %s) is the default, %s after the push\n", st.Slot, st.Version, took)
			return nil
		case st.Slot == before.Slot:
			return fmt.Errorf("update rolled back: slot %s (version %s) failed its trial boot and the box is back on slot %s (version %s); its console log says why",
				res.Slot, res.Version, st.Slot, st.Version)
		}
	}
}

// adminURL turns HOST[:PORT] into the admin API's URL.
func adminURL(host string) string {
	if strings.Contains(host, "://") {
		return host
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "9644")
	}
	return "http://" + host
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
