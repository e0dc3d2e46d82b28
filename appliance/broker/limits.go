package broker

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddybroker/eddy/appliance/status"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// Limits bound what one produce may ask of the broker (the node config's
// limits section). Zero values take the defaults.
type Limits struct {
	// MaxRecordsPerBatch caps the records a batch declares, and all of a
	// partition's batches in one request together; 0 means no cap.
	MaxRecordsPerBatch int
	// MaxDecompressedBytes caps how far a partition's compressed batches
	// may inflate, together, when the broker decodes them for a plugin;
	// 0 means 64 MiB.
	MaxDecompressedBytes int
	// Disk refuses produces while the data disk is below its free-space
	// reserve; nil means no check.
	Disk *status.DiskGuard
}

// Names of the broker's limits in the eddy_limits_exceeded_total metric
// (transport names its own).
const (
	limitRecordsPerBatch = "records_per_batch"
	limitDecompressed    = "decompressed_bytes"
	limitMinFreeDisk     = "min_free_disk_bytes"
)

// limitLogSampler keeps a client that runs into a limit in a loop from
// flooding the log; it is shared by the process's brokers.
var limitLogSampler = &zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}

// limitHit counts a refusal in eddy_limits_exceeded_total and logs it.
func (b *Broker) limitHit(rc *reqCtx, limit string, err error) {
	if b.m != nil {
		b.m.LimitsExceeded.WithLabelValues(limit).Inc()
	}
	log := b.log.Sample(limitLogSampler)
	ev := log.Warn().Str("limit", limit).Err(err)
	if rc != nil && rc.conn != nil {
		ev = ev.Stringer("remote", rc.conn.RemoteAddr).Str("client_id", rc.hdr.clientID)
	}
	ev.Msg("refused a produce over a limit")
}

func (b *Broker) maxDecompressed() int {
	if n := b.cfg.Limits.MaxDecompressedBytes; n > 0 {
		return n
	}
	return maxValidateDecompressed
}

// checkRecordCounts refuses batches that declare more records than the
// limit allows, one batch or all of a partition's together (total, their
// sum, as proposeBatches counted it). The count's consistency with the
// batch's bytes is checked by partlog.ValidateBatches (uncompressed) or
// when decoding (compressed); this bounds what a compressed batch may
// claim, which is otherwise only limited by how far it inflates, and so
// the offsets one request takes and the records a plugin call decodes.
func (b *Broker) checkRecordCounts(rc *reqCtx, headers []partlog.BatchHeader, total int) error {
	limit := b.cfg.Limits.MaxRecordsPerBatch
	if limit <= 0 || total <= limit {
		return nil
	}
	err := fmt.Errorf("%w: %d batches declare %d records together, over the broker's limit of %d per partition and request (limits.max_records_per_batch)",
		kerr.InvalidRecord, len(headers), total, limit)
	for i, h := range headers {
		if int(h.RecordCount) > limit {
			err = fmt.Errorf("%w: batch %d declares %d records, over the broker's limit of %d per batch (limits.max_records_per_batch)",
				kerr.InvalidRecord, i, h.RecordCount, limit)
			break
		}
	}
	b.limitHit(rc, limitRecordsPerBatch, err)
	return err
}

// checkDiskSpace refuses a write of n bytes that would take the data disk
// below its reserve. KAFKA_STORAGE_ERROR is retriable: producers keep their
// records and retry, and succeed once space has been freed.
func (b *Broker) checkDiskSpace(rc *reqCtx, n int) error {
	if b.cfg.Limits.Disk == nil {
		return nil
	}
	if err := b.cfg.Limits.Disk.Admit(n); err != nil {
		err = fmt.Errorf("%w: %w", kerr.KafkaStorageError, err)
		b.limitHit(rc, limitMinFreeDisk, err)
		return err
	}
	return nil
}
