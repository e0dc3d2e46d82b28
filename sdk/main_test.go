package sdk_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
)

// The examples and tests talk to a real node started here. In your
// program, the broker is wherever your eddy node runs: 127.0.0.1:9092 and
// ./eddy-data/tls/ca.crt for `eddy serve` with no flags.
var (
	brokerAddr string // the node's QUIC address
	kafkaAddr  string // the node's Kafka TCP address
	caFile     string // the node's CA certificate
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-sdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	node, err := appliance.Start(ctx, nodecfg.Config{
		DataDir: dir,
		Listen:  nodecfg.Addresses{QUIC: "127.0.0.1:0", Kafka: "127.0.0.1:0", Admin: "127.0.0.1:0", Raft: "127.0.0.1:0"},
		Raft:    nodecfg.RaftConfig{TickMillis: 10},
		Groups:  nodecfg.GroupsConfig{InitialRebalanceDelay: "100ms"},
	}, zerolog.Nop())
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start node:", err)
		os.Exit(1)
	}
	brokerAddr, kafkaAddr, caFile = node.Addrs().QUIC, node.Addrs().Kafka, node.CAFile()
	code := m.Run()
	node.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}
