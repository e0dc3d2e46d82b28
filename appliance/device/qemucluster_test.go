package device

import (
	"fmt"
	"maps"
	"testing"
)

// The qemu-cluster examples are three guests of one machine, each on its
// own qemu user network: box N is forwarded host 127.0.0.1:2919N (Kafka,
// TCP and UDP), 2964N (admin) and 2710N (Raft), and reaches the others
// through 10.0.2.2, the host's loopback seen from a guest. The image
// test (appliance/boot TestImageCluster) forwards exactly these ports.
func TestQEMUClusterExamples(t *testing.T) {
	wantCluster := map[uint64]string{1: "10.0.2.2:27101", 2: "10.0.2.2:27102", 3: "10.0.2.2:27103"}
	var first Config
	for n := 1; n <= 3; n++ {
		c, _, err := Load(fmt.Sprintf("../../firmware-config/examples/qemu-cluster/box%d.yaml", n))
		if err != nil {
			t.Fatal(err)
		}
		nc := c.Node
		if nc.NodeID != uint64(n) || c.Network.Hostname != fmt.Sprintf("eddy-qemu-%d", n) {
			t.Errorf("box%d: node_id %d, hostname %q", n, nc.NodeID, c.Network.Hostname)
		}
		if !maps.Equal(nc.InitialCluster, wantCluster) {
			t.Errorf("box%d: initial_cluster %v, want %v", n, nc.InitialCluster, wantCluster)
		}
		kafka := fmt.Sprintf("127.0.0.1:%d", 29190+n)
		if nc.Advertise.Kafka != kafka || nc.Advertise.QUIC != kafka || nc.Advertise.Admin != fmt.Sprintf("10.0.2.2:%d", 29640+n) {
			t.Errorf("box%d: advertise %+v", n, nc.Advertise)
		}
		if nc.Listen.Kafka != "0.0.0.0:9092" || nc.Listen.QUIC != "0.0.0.0:9092" || nc.Listen.Admin != "0.0.0.0:9644" || nc.Listen.Raft != "0.0.0.0:7100" {
			t.Errorf("box%d: listen %+v (the forwards go to 9092, 9644 and 7100)", n, nc.Listen)
		}
		if c.Network.DHCP || c.Network.Address != "10.0.2.15/24" || c.Network.Gateway != "10.0.2.2" {
			t.Errorf("box%d: network %+v", n, c.Network)
		}
		if nc.Topics.DefaultReplicationFactor != 3 || nc.ClusterSecret == "" || !nc.Insecure {
			t.Errorf("box%d: replication factor %d, cluster secret set %v, insecure %v", n, nc.Topics.DefaultReplicationFactor, nc.ClusterSecret != "", nc.Insecure)
		}
		if n == 1 {
			first = c
			continue
		}
		// One image built from box1 takes the others' configs (eddy image
		// config): same modules, data size, command line and secret.
		if fmt.Sprint(c.Kernel, c.Data) != fmt.Sprint(first.Kernel, first.Data) || nc.ClusterSecret != first.Node.ClusterSecret {
			t.Errorf("box%d does not fit box1's image: kernel %+v data %+v", n, c.Kernel, c.Data)
		}
	}
}
