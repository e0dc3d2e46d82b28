package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClusterAdmin talks to a node's admin HTTP API (default
// http://127.0.0.1:9644) for what the Kafka protocol does not cover:
// cluster membership and replica placement.
type ClusterAdmin struct {
	// URL is the admin API's base URL.
	URL string
	// Token is the cluster's admin token, sent as a bearer token; empty
	// when the node has none.
	Token string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// Node is one cluster node as the admin API reports it.
type Node struct {
	ID         uint64 `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	QUICAddr   string `json:"quic_addr"`
	KafkaAddr  string `json:"kafka_addr"`
	AdminAddr  string `json:"admin_addr"`
	Rack       string `json:"rack,omitempty"`
	State      string `json:"state"`
	Controller bool   `json:"controller"`
	MetaLeader bool   `json:"meta_leader"`
	Replicas   int    `json:"replicas"`
	Leaders    int    `json:"leaders"`
	// System is the node's version and boot slots as it last reported
	// them; nil when it has not.
	System *SystemStatus `json:"system,omitempty"`
}

// Nodes lists the cluster's nodes with their state and load.
func (a *ClusterAdmin) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	return out, a.do(ctx, http.MethodGet, "/v1/cluster/nodes", nil, &out)
}

// AddNode adds node id, reachable for Raft at raftAddr, to the cluster;
// start it afterwards with --join.
func (a *ClusterAdmin) AddNode(ctx context.Context, id uint64, raftAddr string) error {
	return a.do(ctx, http.MethodPost, "/v1/cluster/nodes", map[string]any{"id": id, "raft_addr": raftAddr}, nil)
}

// do sends one request and decodes a JSON answer into out (when not nil).
// An error response's message is returned as the error.
func (a *ClusterAdmin) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, contentType = b, "application/json"
	}
	data, err := a.doRaw(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// doRaw sends body as is and returns the answer's body; any status but
// 2xx is an *AdminError.
func (a *ClusterAdmin) doRaw(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return a.send(ctx, hc, method, path, contentType, rd, int64(len(body)))
}

// send makes one request of size bytes with hc and returns the answer's
// body.
func (a *ClusterAdmin) send(ctx context.Context, hc *http.Client, method, path, contentType string, body io.Reader, size int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", a.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		aerr := &AdminError{Method: method, Path: path, Status: resp.Status, StatusCode: resp.StatusCode}
		if json.Unmarshal(data, &e) == nil {
			aerr.Message = e.Error
		}
		return nil, aerr
	}
	return data, nil
}

// AdminError is an error answer of the admin API.
type AdminError struct {
	Method, Path string
	Status       string // e.g. "503 Service Unavailable"
	StatusCode   int
	Message      string // the node's explanation, when it gave one
}

func (e *AdminError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("admin %s %s: %s: %s", e.Method, e.Path, e.Status, e.Message)
	}
	return fmt.Sprintf("admin %s %s: %s", e.Method, e.Path, e.Status)
}

// Temporary reports whether the node could not answer for now (503: the
// metadata has no leader during an election), so asking again may work.
func (e *AdminError) Temporary() bool { return e.StatusCode == http.StatusServiceUnavailable }

// Move is a partition moving to a new replica set.
type Move struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []uint64 `json:"replicas"`
	Target    []uint64 `json:"target"`
	Learners  []uint64 `json:"learners,omitempty"`
}

// Rebalance spreads partition replicas and preferred leaders evenly over
// the live nodes. It returns the moves it started; they proceed in the
// background (see Reassignments).
func (a *ClusterAdmin) Rebalance(ctx context.Context) ([]Move, error) {
	var out []Move
	return out, a.do(ctx, http.MethodPost, "/v1/cluster/rebalance", map[string]any{}, &out)
}

// Reassign moves partitions of topic to new replica sets (partition index
// to node ids, the first being the preferred leader).
func (a *ClusterAdmin) Reassign(ctx context.Context, topic string, partitions map[int32][]uint64) error {
	return a.do(ctx, http.MethodPost, "/v1/topics/"+url.PathEscape(topic)+"/reassign", map[string]any{"partitions": partitions}, nil)
}

// Reassignments lists the partitions whose replicas are moving.
func (a *ClusterAdmin) Reassignments(ctx context.Context) ([]Move, error) {
	var out []Move
	return out, a.do(ctx, http.MethodGet, "/v1/cluster/reassignments", nil, &out)
}

// waitUnavailableFor is how long WaitReassignments rides out a node that
// cannot read the metadata (an election) before giving up.
const waitUnavailableFor = 30 * time.Second

// WaitReassignments polls until no partition is moving or ctx ends. A
// node that cannot read the metadata for a moment (an election) is asked
// again, for up to 30 s.
func (a *ClusterAdmin) WaitReassignments(ctx context.Context, progress func([]Move)) error {
	var unavailableSince time.Time
	for {
		moves, err := a.Reassignments(ctx)
		var aerr *AdminError
		switch {
		case errors.As(err, &aerr) && aerr.Temporary() && (unavailableSince.IsZero() || time.Since(unavailableSince) < waitUnavailableFor):
			// A moving leader can leave the metadata briefly unreadable.
			if unavailableSince.IsZero() {
				unavailableSince = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			continue
		case err != nil:
			return err
		}
		unavailableSince = time.Time{}
		if progress != nil {
			progress(moves)
		}
		if len(moves) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
