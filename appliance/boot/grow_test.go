//go:build linux

package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSysfs lays out /sys/class/block for disk vda with partition vda2 as
// the kernel does: class/block/<name> links into the device tree, where a
// partition is a directory inside its disk's.
func fakeSysfs(t *testing.T, lbs string) string {
	t.Helper()
	root := t.TempDir()
	disk := filepath.Join(root, "devices/pci0000:00/0000:00:03.0/virtio1/block/vda")
	files := map[string]string{
		"size":                     "4194304\n", // 2 GiB
		"queue/logical_block_size": lbs + "\n",
		"vda2/partition":           "2\n",
		"vda2/start":               "133120\n",
		"vda2/size":                "1048576\n",
		"vda1/partition":           "1\n",
	}
	for name, v := range files {
		p := filepath.Join(disk, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	class := filepath.Join(root, "class/block")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ name, to string }{{"vda", disk}, {"vda2", filepath.Join(disk, "vda2")}} {
		rel, _ := filepath.Rel(class, l.to)
		if err := os.Symlink(rel, filepath.Join(class, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	old := sysClassBlock
	sysClassBlock = class
	t.Cleanup(func() { sysClassBlock = old })
	return root
}

func TestPartitionOf(t *testing.T) {
	fakeSysfs(t, "512")
	p, err := partitionOf("/dev/vda2")
	if err != nil {
		t.Fatal(err)
	}
	if want := (dataPartition{name: "vda2", disk: "vda", number: 2, start: 133120, size: 1048576, diskSize: 4194304}); p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	if _, err := partitionOf("/dev/vda"); err == nil || !strings.Contains(err.Error(), "not a partition") {
		t.Fatalf("a whole disk: %v", err)
	}
	if _, err := partitionOf("/dev/sdz1"); err == nil {
		t.Fatal("a missing device")
	}
	fakeSysfs(t, "4096")
	if _, err := partitionOf("/dev/vda2"); err == nil || !strings.Contains(err.Error(), "4096-byte sectors") {
		t.Fatalf("a 4Kn disk: %v", err)
	}
}

// TestExt4Size reads the size of file systems mke2fs made, 32- and 64-bit.
func TestExt4Size(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	for _, tt := range []struct {
		name, features, blockSize string
		blocks, size              uint64
	}{
		{"64bit", "64bit", "4096", 16384, 4096},
		{"32bit", "^64bit", "1024", 65536, 1024},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "fs")
			out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", tt.features, "-b", tt.blockSize, file, "64M").CombinedOutput()
			if err != nil {
				t.Fatalf("mke2fs: %v\n%s", err, out)
			}
			blocks, size, err := ext4Size(file)
			if err != nil || blocks != tt.blocks || size != tt.size {
				t.Fatalf("got %d blocks of %d, %v; want %d of %d", blocks, size, err, tt.blocks, tt.size)
			}
		})
	}
	if _, _, err := parseExt4Super(make([]byte, 1024)); err == nil {
		t.Fatal("zeros are not ext4")
	}
}

func TestExt4IoctlNumber(t *testing.T) {
	// _IOW('f', 16, __u64) as <linux/ext4.h> has it.
	if ext4IocResizeFS != 0x40086610 {
		t.Fatalf("EXT4_IOC_RESIZE_FS = %#x", ext4IocResizeFS)
	}
}
