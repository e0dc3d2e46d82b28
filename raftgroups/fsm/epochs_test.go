package fsm

import "testing"

func TestEpochCache(t *testing.T) {
	var c epochCache
	if got := c.assign(3, 0); got != 3 {
		t.Fatalf("first assign: got %d", got)
	}
	c.assign(3, 10) // same epoch: no new entry
	c.assign(5, 20)
	if got := c.assign(4, 30); got != 5 {
		t.Fatalf("stale epoch 4 got %d, want the current 5", got)
	}
	c.assign(7, 40)
	if len(c) != 3 {
		t.Fatalf("cache %v", c)
	}
	tests := []struct {
		requested int32
		wantEpoch int32
		wantEnd   int64
	}{
		{7, 7, 55},  // latest epoch: log end
		{5, 5, 40},  // ended where epoch 7 began
		{6, 5, 40},  // unknown epoch between: floor is 5
		{4, 3, 20},  // floor 3, next began at 20
		{1, 1, 0},   // below the first: requested, first start
		{9, -1, -1}, // above the latest: unknown
		{-1, -1, -1},
	}
	for _, tt := range tests {
		e, off := c.endOffsetFor(tt.requested, 55)
		if e != tt.wantEpoch || off != tt.wantEnd {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", tt.requested, e, off, tt.wantEpoch, tt.wantEnd)
		}
	}
	c.truncateFrom(40)
	if c.latest() != 5 {
		t.Fatalf("after truncate: %v", c)
	}
	c.trimBefore(25)
	if len(c) != 1 || c[0].Epoch != 5 {
		t.Fatalf("after trim: %v", c)
	}
}
