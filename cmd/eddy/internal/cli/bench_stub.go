//go:build !bench

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newBenchCmd explains how to get the harness: the eddy flashed onto
// devices leaves it out, with the NATS server it runs as the peer.
func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "bench",
		Short:              "Benchmark harness (not in this build: make bench-bin)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("this eddy was built without the benchmark harness, which embeds the NATS server it compares against;\n" +
				"build one with `make bench-bin` (go build -tags bench) and run bin/eddy-bench bench ..., or use `make bench` / `make bench-quick`")
		},
	}
}
