package fsm

// epochEntry records that LeaderEpoch began writing at StartOffset.
type epochEntry struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"start_offset"`
}

// epochCache is Kafka's leader-epoch cache: the offsets at which each Raft
// term (used as the leader epoch) started appending. Clients use it through
// OffsetForLeaderEpoch to detect a truncated log after a leader change.
// Entries are ordered by both epoch and start offset.
type epochCache []epochEntry

// assign returns the epoch to stamp on a batch appended at offset. Epochs
// never go backwards: a stale leader's command keeps the current epoch.
func (c *epochCache) assign(epoch int32, offset int64) int32 {
	n := len(*c)
	if n > 0 && epoch <= (*c)[n-1].Epoch {
		return (*c)[n-1].Epoch
	}
	*c = append(*c, epochEntry{Epoch: epoch, StartOffset: offset})
	return epoch
}

// latest returns the newest epoch, or -1 when none is known.
func (c epochCache) latest() int32 {
	if len(c) == 0 {
		return -1
	}
	return c[len(c)-1].Epoch
}

// endOffsetFor mirrors Kafka's LeaderEpochFileCache.endOffsetFor: the
// largest epoch not above requested and the offset where the next epoch
// began (the log end for the latest epoch). (-1, -1) means unknown.
func (c epochCache) endOffsetFor(requested int32, logEnd int64) (int32, int64) {
	if requested < 0 || len(c) == 0 {
		return -1, -1
	}
	if requested == c.latest() {
		return requested, logEnd
	}
	higher := -1
	for i, e := range c {
		if e.Epoch > requested {
			higher = i
			break
		}
	}
	if higher < 0 {
		return -1, -1
	}
	if higher == 0 {
		return requested, c[0].StartOffset
	}
	return c[higher-1].Epoch, c[higher].StartOffset
}

// truncateFrom drops epochs that began at or after offset (the log was cut there).
func (c *epochCache) truncateFrom(offset int64) {
	for len(*c) > 0 && (*c)[len(*c)-1].StartOffset >= offset {
		*c = (*c)[:len(*c)-1]
	}
}

// trimBefore forgets epochs wholly below the log start offset, keeping the
// one in force at start, so the cache stays bounded as retention runs.
func (c *epochCache) trimBefore(start int64) {
	i := 0
	for i+1 < len(*c) && (*c)[i+1].StartOffset <= start {
		i++
	}
	if i > 0 {
		*c = append((*c)[:0], (*c)[i:]...)
	}
}

func (c epochCache) clone() epochCache { return append(epochCache(nil), c...) }

// epochAt returns the epoch in force at offset, or -1 when unknown.
func (c epochCache) epochAt(offset int64) int32 {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i].StartOffset <= offset {
			return c[i].Epoch
		}
	}
	return -1
}
