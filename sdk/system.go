package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// SystemStatus is a node's version and, on an eddy appliance, its A/B
// boot slots (docs/appliance.md, "Updates").
type SystemStatus struct {
	// Version of the running eddy.
	Version string `json:"version"`
	// Slot is the running slot, a or b; empty for `eddy serve`.
	Slot string `json:"slot,omitempty"`
	// State is "good" (the boot loader's default) or "trial" (booted
	// once after an update, not yet proven).
	State string `json:"state,omitempty"`
	// Slots lists both slots' versions.
	Slots []SlotInfo `json:"slots,omitempty"`
	// BootID changes with every boot.
	BootID string `json:"boot_id,omitempty"`
	// Updates says whether the node takes pushed updates, and if not,
	// why.
	Updates string `json:"updates,omitempty"`
}

// SlotInfo is one boot slot.
type SlotInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Default bool   `json:"default"`
}

// UpdateResult is what a node says when it takes an update.
type UpdateResult struct {
	// Slot the update was written to; the node reboots into it once.
	Slot    string `json:"slot"`
	Version string `json:"version"`
	Bytes   int64  `json:"bytes"`
}

// System returns the node's version and boot slots.
func (a *ClusterAdmin) System(ctx context.Context) (SystemStatus, error) {
	var st SystemStatus
	return st, a.do(ctx, http.MethodGet, "/v1/system", nil, &st)
}

// PushUpdate sends a unified kernel image (from `eddy image build`) to
// the node, which writes it to its other slot and reboots into it once.
// progress, when not nil, is told how many bytes were sent. The upload
// is bounded by ctx only: a slow link may take minutes.
func (a *ClusterAdmin) PushUpdate(ctx context.Context, uki []byte, progress func(sent, total int64)) (UpdateResult, error) {
	var body io.Reader = bytes.NewReader(uki)
	if progress != nil {
		body = &countingReader{r: body, total: int64(len(uki)), progress: progress}
	}
	hc := &http.Client{}
	if a.HTTP != nil {
		hc.Transport = a.HTTP.Transport
	}
	data, err := a.send(ctx, hc, http.MethodPost, "/v1/system/update", "application/efi", body, int64(len(uki)))
	if err != nil {
		return UpdateResult{}, err
	}
	var res UpdateResult
	if err := json.Unmarshal(data, &res); err != nil {
		return UpdateResult{}, fmt.Errorf("admin POST /v1/system/update: decode: %w", err)
	}
	return res, nil
}

type countingReader struct {
	r           io.Reader
	sent, total int64
	progress    func(sent, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.sent += int64(n)
	if n > 0 {
		c.progress(c.sent, c.total)
	}
	return n, err
}
