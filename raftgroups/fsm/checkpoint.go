package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eddybroker/eddy/raftgroups/partlog"
)

const checkpointFile = "checkpoint.json"

// checkpoint is what Sync makes durable: the Raft index the partition log
// reflects, and the log's bounds at that index. Open cuts the log back to
// EndOffset and reports Index, so Dragonboat replays everything after it
// from its own fsynced log.
type checkpoint struct {
	Version     int        `json:"version"`
	Index       uint64     `json:"index"`
	StartOffset int64      `json:"start_offset"`
	EndOffset   int64      `json:"end_offset"`
	Epochs      epochCache `json:"epochs"`
	Producers   producers  `json:"producers,omitempty"`
}

const checkpointVersion = 1

func readCheckpoint(dir string) (checkpoint, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		// The file is replaced by rename, so a torn checkpoint means the
		// disk lied about a sync; refusing to guess is the safe answer.
		return checkpoint{}, false, fmt.Errorf("checkpoint %s is corrupt: %w", filepath.Join(dir, checkpointFile), err)
	}
	if c.Version != checkpointVersion {
		return checkpoint{}, false, fmt.Errorf("checkpoint %s has version %d, this eddy reads %d", filepath.Join(dir, checkpointFile), c.Version, checkpointVersion)
	}
	return c, true, nil
}

// writeCheckpoint replaces the checkpoint atomically: temp file, fsync,
// rename, fsync of the directory.
func writeCheckpoint(dir string, c checkpoint) error {
	c.Version = checkpointVersion
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, checkpointFile), b)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	partlog.CrashPoint("fsm.checkpoint.tmp-written")
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	partlog.CrashPoint("fsm.checkpoint.renamed")
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
