package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImageBuildArch: eddy image build's --arch refuses what it does not
// know, and an image for another architecture needs an --init for it;
// both before any Debian package is needed.
func TestImageBuildArch(t *testing.T) {
	cfg := "../../../../firmware-config/examples/qemu.yaml"
	out := filepath.Join(t.TempDir(), "eddy.img")
	imageBuild := func(args ...string) (string, int) {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), append([]string{"image", "build", "--config", cfg, "-o", out}, args...), strings.NewReader(""), &stdout, &stderr)
		return stdout.String() + stderr.String(), code
	}
	if msg, code := imageBuild("--arch", "riscv64"); code == 0 || !strings.Contains(msg, `unknown architecture "riscv64"; images are built for amd64 or arm64`) {
		t.Fatalf("--arch riscv64: exit %d\n%s", code, msg)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if msg, code := imageBuild("--arch", other); code == 0 || !strings.Contains(msg, "--init: this eddy is for linux/"+runtime.GOARCH+"; give a static linux/"+other+" eddy") {
		t.Fatalf("--arch %s without --init: exit %d\n%s", other, code, msg)
	}
	if msg, code := imageBuild("--help"); code != 0 || !strings.Contains(msg, "--arch string") || !strings.Contains(msg, "--sysroot string") || !strings.Contains(msg, "make image-arm64") {
		t.Fatalf("--help: exit %d\n%s", code, msg)
	}
}
