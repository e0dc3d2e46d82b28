package partlog

import (
	"fmt"
	"math"
)

// Config shapes a Log's files. The zero value gives Kafka's defaults.
type Config struct {
	// SegmentBytes rolls the active segment when an append would take it
	// past this size. 0 means 1 GiB. At most 2 GiB - 1, because index
	// positions are uint32 and one more batch (at most 2 GiB) must still
	// fit after a segment reaches it.
	SegmentBytes int64
	// SegmentMs rolls the active segment when its first append is at least
	// this old, measured with the now passed to Append. 0 means 7 days.
	SegmentMs int64
	// IndexIntervalBytes is the distance in bytes between sparse index
	// entries. 0 means 4096.
	IndexIntervalBytes int
}

const (
	defaultSegmentBytes       = 1 << 30
	defaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	defaultIndexIntervalBytes = 4096
)

// Validate reports the first field out of range. Zero values are valid and
// mean the default.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("%w: SegmentBytes %d: must be between 1 and %d bytes, or 0 for 1 GiB", ErrInvalidConfig, c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs < 0:
		return fmt.Errorf("%w: SegmentMs %d: must not be negative (0 means 7 days)", ErrInvalidConfig, c.SegmentMs)
	case c.IndexIntervalBytes < 0 || c.IndexIntervalBytes > math.MaxInt32:
		return fmt.Errorf("%w: IndexIntervalBytes %d: must be between 1 and %d, or 0 for 4096", ErrInvalidConfig, c.IndexIntervalBytes, math.MaxInt32)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = defaultSegmentBytes
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = defaultSegmentMs
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = defaultIndexIntervalBytes
	}
	return c
}

// SetConfig changes segment rolling and indexing for future appends;
// existing segments keep their layout. It is a writer method: call it only
// where Append may be called.
func (l *Log) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	l.cfg = c.withDefaults()
	return nil
}
