//go:build linux

package boot_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vmConfig is one qemu guest of the image tests.
type vmConfig struct {
	Dir, Image, Vars, Name string
	// HostFwd are qemu user-network forwards (hostfwd=...); nil means the
	// qemu example's: host 127.0.0.1:19092 (TCP and UDP) and 19644.
	HostFwd []string
	// AdminPort is the host port forwarded to the guest's admin API;
	// 0 means 19644.
	AdminPort int
	// Reboot lets a guest reboot in place; without it qemu exits when the
	// guest reboots (-no-reboot), as a test that expects none wants.
	Reboot bool
	// Timeout bounds this qemu run; 0 means vmTimeout.
	Timeout time.Duration
}

type vm struct {
	cmd       *exec.Cmd
	done      chan error
	serialF   string
	qmp       string
	adminPort int
	started   time.Time
}

func startVM(t *testing.T, dir, img, vars, name string) *vm {
	t.Helper()
	return startVMWith(t, vmConfig{Dir: dir, Image: img, Vars: vars, Name: name})
}

func startVMWith(t *testing.T, c vmConfig) *vm {
	t.Helper()
	if c.HostFwd == nil {
		c.HostFwd = []string{
			fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:9092", kafkaPort),
			fmt.Sprintf("hostfwd=udp:127.0.0.1:%d-:9092", kafkaPort),
			fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:9644", adminPort),
		}
	}
	if c.AdminPort == 0 {
		c.AdminPort = adminPort
	}
	v := &vm{serialF: filepath.Join(c.Dir, c.Name+".serial.log"), qmp: filepath.Join(c.Dir, c.Name+".qmp"),
		done: make(chan error, 1), adminPort: c.AdminPort}
	// -nodefaults and romfile= keep the default DVD drive and iPXE's
	// option ROM out of the boot; stdin is /dev/null and the serial
	// console a file, or a background qemu can hang (appliance-notes §6).
	args := []string{"-accel", "tcg", "-machine", "q35", "-m", "1024", "-nodefaults",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + c.Vars,
		"-drive", "file=" + c.Image + ",format=raw,if=virtio",
		"-display", "none", "-monitor", "none", "-serial", "file:" + v.serialF,
		"-qmp", "unix:" + v.qmp + ",server=on,wait=off",
		"-netdev", "user,id=n0," + strings.Join(c.HostFwd, ","), "-device", "virtio-net-pci,netdev=n0,romfile="}
	if !c.Reboot {
		args = append(args, "-no-reboot")
	}
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	out, err := os.Create(filepath.Join(c.Dir, c.Name+".qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = out, out
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The timeout is kept here rather than by timeout(1): killing that
	// wrapper would leave qemu running, holding the forwarded ports.
	if c.Timeout == 0 {
		c.Timeout = vmTimeout
	}
	limit := time.AfterFunc(c.Timeout, func() { _ = v.cmd.Process.Kill() })
	exited := make(chan struct{})
	go func() { v.done <- v.cmd.Wait(); limit.Stop(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = v.cmd.Process.Kill()
		<-exited
	})
	return v
}

func (v *vm) serial(t *testing.T) string {
	b, _ := os.ReadFile(v.serialF)
	return string(b)
}

// waitReady polls the admin API's /readyz through the forward. Slirp
// accepts a connection before the guest listens and then drops it, so
// only an HTTP answer counts; Close avoids reusing such a connection.
func (v *vm) waitReady(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.Now().Add(240 * time.Second)
	client := &http.Client{Timeout: 3 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-v.done:
			t.Fatalf("qemu exited (%v) before the broker served:\n%s", err, tail(v.serial(t), 4000))
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/readyz", v.adminPort), nil)
		req.Close = true
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(v.started)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("broker not ready after 240 s:\n%s", tail(v.serial(t), 4000))
	return 0
}

// qmp runs QMP commands in order, failing the test on an error answer.
func (v *vm) qmpRun(t *testing.T, cmds ...string) {
	t.Helper()
	c, err := net.Dial("unix", v.qmp)
	if err != nil {
		t.Fatalf("qmp: %v", err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		t.Fatalf("qmp: %v", err)
	}
	for _, cmd := range append([]string{"qmp_capabilities"}, cmds...) {
		b, _ := json.Marshal(map[string]string{"execute": cmd})
		if _, err := c.Write(append(b, '\n')); err != nil {
			t.Fatalf("qmp %s: %v", cmd, err)
		}
		for { // events (POWERDOWN) may come before the answer
			line, err := r.ReadString('\n')
			if err != nil || strings.Contains(line, `"error"`) {
				t.Fatalf("qmp %s: %q %v", cmd, line, err)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
}

// powerdown presses the ACPI power button through QMP and waits for qemu
// to exit.
func (v *vm) powerdown(t *testing.T) {
	t.Helper()
	v.qmpRun(t, "system_powerdown")
	v.waitExit(t, 90*time.Second)
}

// waitExit waits for qemu to exit cleanly.
func (v *vm) waitExit(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-v.done:
		if err != nil {
			t.Fatalf("qemu after power-off: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("guest did not power off within %s:\n%s", d, tail(v.serial(t), 3000))
	}
}

// imageTestSetup skips unless EDDY_IMAGE_TEST is set, fails when qemu,
// OVMF or one of the tools is missing or a host port (tcp, udp) is
// taken, and returns the directory for the test's files: EDDY_IMAGE_DIR,
// to keep them, or a temporary one.
func imageTestSetup(t *testing.T, why string, tools []string, tcp, udp []int) string {
	t.Helper()
	if os.Getenv("EDDY_IMAGE_TEST") == "" {
		t.Skip("set EDDY_IMAGE_TEST=1 (make image-test) to build and boot images under qemu")
	}
	for _, tool := range append([]string{"qemu-system-x86_64"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make image-deps installs it)", tool)
		}
	}
	for _, f := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v (make image-deps installs ovmf)", err)
		}
	}
	for _, p := range tcp {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("host port tcp:%d is taken (%s): %v", p, why, err)
		}
		l.Close()
	}
	for _, p := range udp {
		l, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("host port udp:%d is taken (%s): %v", p, why, err)
		}
		l.Close()
	}
	dir := t.TempDir()
	if keep := os.Getenv("EDDY_IMAGE_DIR"); keep != "" {
		dir = keep
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildStatic builds the Go package pkg as a static linux binary at out:
// what an image runs as /init.
func buildStatic(t *testing.T, pkg, out string) {
	t.Helper()
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/eddybroker/eddy/cmd/eddy/internal/cli.Version=imagetest", "-o", out, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}
