package status

import (
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestDiskGuardCountsAdmittedWrites(t *testing.T) {
	dir := t.TempDir()
	free, total, err := diskSpace(dir)
	if err != nil {
		t.Skipf("no free-space figure here: %v", err)
	}
	if free < 2<<30 || total < free {
		t.Skipf("needs 2 GiB free, %d bytes are", free)
	}
	// A reserve 1 GiB below the free space: 400 MiB batches take 800 MiB
	// each (Raft log and segment), so the first fits and the second not,
	// although statfs has not seen the first yet.
	g := NewDiskGuard(dir, int64(free-1<<30), zerolog.Nop())
	if err := g.Admit(400 << 20); err != nil {
		t.Fatalf("first write: %v", err)
	}
	err = g.Admit(400 << 20)
	if !errors.Is(err, ErrLowDiskSpace) || !strings.Contains(err.Error(), "limits.min_free_disk_bytes") {
		t.Fatalf("second write: %v, want ErrLowDiskSpace naming the setting", err)
	}
	if g.Low() {
		t.Fatal("Low after 800 MiB of a 1 GiB margin were admitted")
	}

	if err := NewDiskGuard(dir, 0, zerolog.Nop()).Admit(1 << 20); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	huge := NewDiskGuard(dir, int64(total)+1, zerolog.Nop())
	if err := huge.Admit(0); !errors.Is(err, ErrLowDiskSpace) {
		t.Fatalf("reserve above the disk's size: %v", err)
	}
	if !huge.Low() {
		t.Fatal("Low is false below the reserve")
	}
}

func TestDiskGuardFailsOpenWithoutFigures(t *testing.T) {
	g := NewDiskGuard("/nonexistent/eddy/data", 1<<40, zerolog.Nop())
	if err := g.Admit(1 << 20); err != nil {
		t.Fatalf("a disk that cannot be inspected must not stop writes: %v", err)
	}
	if g.Low() {
		t.Fatal("Low without a figure")
	}
}
