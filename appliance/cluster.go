package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/eddybroker/eddy/appliance/adminapi"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// askToJoin asks the node at the admin URL join to add this node to its
// cluster (a non-voting meta member), so this node can start its meta
// replica as a joiner. It retries until ctx ends: the node may be starting.
func askToJoin(ctx context.Context, hc *http.Client, join, token string, id uint64, raftAddr string) error {
	body, _ := json.Marshal(adminapi.AddNodeRequest{ID: id, RaftAddr: raftAddr})
	url := strings.TrimRight(join, "/") + "/v1/cluster/nodes"
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("join %s: %w", join, err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				return nil
			case resp.StatusCode < 500 && resp.StatusCode != http.StatusConflict:
				// Refused for good (bad token, bad request): say why.
				return fmt.Errorf("join %s: %s: %s", join, resp.Status, bytes.TrimSpace(msg))
			}
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w (last error: %v)", join, ctx.Err(), lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// desiredControllers is how many voting members the meta shard keeps when
// enough nodes are alive: three tolerate one failure.
const desiredControllers = 3

// maintainControllers runs on every node and acts on the meta leader:
// while fewer than three controllers vote, it promotes a live, registered
// non-voting member. Promoting only live nodes keeps a quorum reachable.
func (n *Node) maintainControllers(stop <-chan struct{}) {
	defer n.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if leader, _, ok := n.host.Leader(meta.MetaShardID); !ok || leader != n.cfg.NodeID {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		voting, nonVoting, err := n.host.MetaMembers(ctx)
		if err == nil && len(voting) < desiredControllers {
			st := n.host.Meta()
			for _, id := range st.NodeIDs() {
				addr, isNonVoting := nonVoting[id]
				if isNonVoting && n.view.Alive(id) {
					if err := n.host.PromoteController(ctx, id, addr); err != nil {
						n.log.Warn().Err(err).Uint64("node", id).Msg("could not promote node to controller")
					}
					break
				}
			}
		}
		cancel()
	}
}
