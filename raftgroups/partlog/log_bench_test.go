package partlog

import (
	"testing"

	"github.com/rs/zerolog"
)

// benchBatch is a 16 KiB batch of 16 records with 1 KiB values.
func benchBatch(b *testing.B) []byte {
	return simpleBatch(b, 16, 1000, 1, "bench")
}

func BenchmarkAppend(b *testing.B) {
	batch := benchBatch(b)
	for _, tc := range []struct {
		name string
		sync int // Sync every this many appends, 0 never
	}{{"nosync", 0}, {"sync64", 64}} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := Open(b.TempDir(), Config{SegmentBytes: 64 << 20}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := l.Append(batch, 1, -1, int64(i)); err != nil {
					b.Fatal(err)
				}
				if tc.sync > 0 && i%tc.sync == tc.sync-1 {
					if err := l.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				if i%4096 == 4095 { // keep the disk footprint bounded
					b.StopTimer()
					if err := l.AdvanceStart(l.EndOffset()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	batch := benchBatch(b)
	l, err := Open(b.TempDir(), Config{SegmentBytes: 16 << 20}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for i := range 4096 { // 64 MiB over 4 segments
		if _, err := l.Append(batch, 1, -1, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		maxBytes int
	}{{"batch", 1}, {"1MiB", 1 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			var dst []byte
			var n int64
			off, end := int64(0), l.EndOffset()
			b.ReportAllocs()
			for b.Loop() {
				dst, err = l.Read(off, tc.maxBytes, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(dst))
				off += 16 * int64(len(dst)/len(batch))
				if off >= end {
					off = 0
				}
			}
			b.SetBytes(n / int64(b.N))
		})
	}
}
