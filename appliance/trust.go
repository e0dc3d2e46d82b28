package appliance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// ClusterCAFile is the bundle of every node's CA certificate, written in
// <data>/tls. Clients that trust it can reach every node of the cluster.
const ClusterCAFile = "cluster-ca.crt"

// trustBundle is the PEM concatenation of every registered node's CA, in
// node id order, so every node writes the same bytes.
func trustBundle(st *meta.State) []byte {
	var b bytes.Buffer
	for _, id := range st.NodeIDs() {
		if pem := st.Nodes[id].CACert; pem != "" {
			fmt.Fprintf(&b, "# eddy node %d\n%s", id, strings.TrimRight(pem, "\n")+"\n")
		}
	}
	return b.Bytes()
}

// writeTrustBundle refreshes <data>/tls/cluster-ca.crt when the set of
// node CAs changed.
func (n *Node) writeTrustBundle() {
	bundle := trustBundle(n.host.Meta())
	if len(bundle) == 0 {
		return
	}
	path := filepath.Join(n.cfg.DataDir, "tls", ClusterCAFile)
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, bundle) {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, bundle, 0o644); err != nil {
		n.log.Warn().Err(err).Msg("could not write the cluster CA bundle")
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		n.log.Warn().Err(err).Msg("could not write the cluster CA bundle")
	}
}

// watchMeta keeps files derived from the metadata current until stop.
func (n *Node) watchMeta(stop <-chan struct{}) {
	defer n.wg.Done()
	for {
		changed := n.host.MetaChanged()
		n.writeTrustBundle()
		select {
		case <-stop:
			return
		case <-changed:
		}
	}
}
