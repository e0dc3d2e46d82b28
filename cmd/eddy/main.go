package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/eddybroker/eddy/appliance/boot"
	"github.com/eddybroker/eddy/cmd/eddy/internal/cli"
)

func main() {
	// The kernel starts the image's initramfs as /init, PID 1; a container
	// running "eddy serve" as PID 1 is not an appliance.
	if os.Getpid() == 1 && os.Args[0] == "/init" {
		boot.Main() // docs/appliance.md; never returns
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
