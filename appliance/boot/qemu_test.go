//go:build linux

package boot_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/image"
	"github.com/eddybroker/eddy/sdk"
)

// The qemu example config advertises these host ports, which the test
// forwards to the guest's 9092 (TCP and UDP) and 9644.
const (
	kafkaPort = 19092
	adminPort = 19644
	ovmfCode  = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars  = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// vmTimeout bounds one qemu run, whatever the test does.
	vmTimeout = 6 * time.Minute
)

// TestImageBoots builds the image from firmware-config/examples/qemu.yaml
// with a freshly built static eddy, boots it under qemu (TCG, OVMF), and
// produces and consumes through the forwarded ports: the SDK over QUIC
// and TCP, kcat over TCP. It then presses the power button, writes a
// different device config into the image (DHCP instead of the static
// address, another hostname, five partitions per new topic), boots it
// again, sees the new config in effect and reads everything back from
// the data partition. Last, with reboots allowed, it pushes a new version
// with eddy image push (slot b boots once, serves and becomes the
// default) and then an update whose /init exits (the kernel panics, the
// box reboots into slot b by itself), checking the data each time.
// It runs under `make image-test` (EDDY_IMAGE_TEST=1); it takes a few
// minutes on two cores.
func TestImageBoots(t *testing.T) {
	dir := imageTestSetup(t, "the qemu example advertises it", []string{"kcat"}, []int{kafkaPort, adminPort}, []int{kafkaPort})

	// Build: a static eddy, then the image.
	start := time.Now()
	eddyBin := filepath.Join(dir, "eddy")
	buildStatic(t, "../../cmd/eddy", eddyBin)
	goBuild := time.Since(start)
	cfgFile := "../../firmware-config/examples/qemu.yaml"
	yml, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := device.Parse(yml)
	if err != nil {
		t.Fatal(err)
	}
	kernel, modules, err := image.KernelFor()
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "eddy.img")
	start = time.Now()
	res, err := image.Build(context.Background(), image.Options{Config: cfg, ConfigYAML: yml, Init: eddyBin, Kernel: kernel, Modules: modules, Version: "imagetest", Output: img})
	if err != nil {
		t.Fatal(err)
	}
	imgBuild := time.Since(start)
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	allocated := st.Blocks * 512
	t.Logf("FIGURE go build (static eddy) %s; image build %s; image %d MiB (%d MiB allocated), UKI %.1f MB, initramfs %.1f MB, %d modules",
		goBuild.Round(time.Millisecond), imgBuild.Round(time.Millisecond), res.Size>>20, allocated>>20, float64(res.UKISize)/1e6, float64(res.InitramfsSize)/1e6, len(res.Modules))

	vars := filepath.Join(dir, "vars.fd")
	copyFile(t, ovmfVars, vars)

	// First boot: produce over QUIC, TCP and kcat, read it back.
	vm := startVM(t, dir, img, vars, "boot1")
	serving := vm.waitReady(t)
	t.Logf("FIGURE boot 1: qemu start to broker serving %s (TCG)", serving.Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	quicRecords := produce(ctx, t, sdk.QUIC, "image-quic", 50)
	tcpRecords := produce(ctx, t, sdk.TCP, "image-tcp", 50)
	consume(ctx, t, sdk.QUIC, "image-quic", quicRecords)
	consume(ctx, t, sdk.TCP, "image-tcp", tcpRecords)
	kcatLines := []string{"kcat-1", "kcat-2", "kcat-3"}
	// One key, so one partition and the produce order comes back.
	kcat(t, "-P", "-t", "image-kcat", "-K", ":").input("k:" + strings.Join(kcatLines, "\nk:") + "\n")
	if got := kcat(t, "-C", "-t", "image-kcat", "-o", "beginning", "-c", "3", "-f", "%s\n").input(""); got != strings.Join(kcatLines, "\n")+"\n" {
		t.Fatalf("kcat read %q", got)
	}

	// Power button: the broker stops, the data is synced and unmounted,
	// the guest powers off and qemu exits.
	start = time.Now()
	vm.powerdown(t)
	t.Logf("FIGURE power button to qemu exit %s", time.Since(start).Round(100*time.Millisecond))
	if log := vm.serial(t); !strings.Contains(log, "power button pressed") || !strings.Contains(log, "powering off") || strings.Contains(log, "data partition grown") {
		t.Fatalf("no clean power-off (or a data partition grown on the image's own disk) in the serial log:\n%s", tail(log, 3000))
	}

	// A different device config written into the built image (eddy
	// image config) takes effect on the next boot.
	// It also drops the static address, so the second boot takes its
	// address from qemu's DHCP server (the same 10.0.2.15).
	var lines []string
	for _, l := range strings.Split(string(yml), "\n") {
		if f := strings.TrimSpace(l); strings.HasPrefix(f, "address:") || strings.HasPrefix(f, "gateway:") || strings.HasPrefix(f, "dns:") {
			continue
		}
		lines = append(lines, l)
	}
	yml2 := strings.Replace(strings.Join(lines, "\n"), "hostname: eddy-qemu", "hostname: eddy-qemu-2", 1) + "  topics:\n    default_partitions: 5\n"
	cfg2, err := device.Parse([]byte(yml2))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := image.WriteConfig(context.Background(), img, cfg2, []byte(yml2)); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE eddy image config (write a device config into the image) %s", time.Since(start).Round(time.Millisecond))
	// Flashed onto a bigger disk: boot 2 grows the data partition to fill it.
	if err := os.Truncate(img, 2<<30); err != nil {
		t.Fatal(err)
	}

	// Second boot: everything is still there.
	vm = startVM(t, dir, img, vars, "boot2")
	serving = vm.waitReady(t)
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Logf("FIGURE boot 2: qemu start to broker serving %s (TCG)", serving.Round(100*time.Millisecond))
	// The new hostname is configured; the kernel keeps the old one, which
	// the broker's Raft data is keyed on.
	if log := vm.serial(t); !strings.Contains(log, "data partition grown") || !strings.Contains(log, "new_mib=1790") || !strings.Contains(log, "data file system grown") {
		t.Fatalf("boot 2 did not grow the data partition to the 2 GiB disk:\n%s", tail(log, 3000))
	}
	if log := vm.serial(t); !strings.Contains(log, "hostname=eddy-qemu-2") || !strings.Contains(log, "keeping the old kernel hostname") || !strings.Contains(log, "network up (DHCP)") {
		t.Fatalf("boot 2 did not use the new device config:\n%s", tail(log, 3000))
	}
	kcat(t, "-P", "-t", "image-newconfig").input("x\n")
	if got := kcat(t, "-L", "-t", "image-newconfig").input(""); !strings.Contains(got, "with 5 partitions") {
		t.Fatalf("a topic created after the config change:\n%s", got)
	}
	consume(ctx, t, sdk.QUIC, "image-quic", quicRecords)
	consume(ctx, t, sdk.TCP, "image-tcp", tcpRecords)
	if got := kcat(t, "-C", "-t", "image-kcat", "-o", "beginning", "-c", "3", "-f", "%s\n").input(""); got != strings.Join(kcatLines, "\n")+"\n" {
		t.Fatalf("kcat after reboot read %q", got)
	}
	vm.powerdown(t)

	// Updates, with the guest allowed to reboot: a new version pushed
	// with eddy image push boots from slot b, serves, and becomes the
	// default; then an update whose /init dies (the kernel panics and
	// reboots, panic=10) falls back to slot b by itself.
	updateImg := filepath.Join(dir, "update.img")
	if _, err := image.Build(context.Background(), image.Options{Config: cfg, ConfigYAML: yml, Init: eddyBin, Kernel: kernel, Modules: modules, Version: "imagetest-2", Output: updateImg}); err != nil {
		t.Fatal(err)
	}
	brokenInit := filepath.Join(dir, "broken-init")
	buildStatic(t, "../image/testdata/hello", brokenInit)
	brokenImg := filepath.Join(dir, "broken.img")
	if _, err := image.Build(context.Background(), image.Options{Config: cfg, ConfigYAML: yml, Init: brokenInit, Kernel: kernel, Modules: modules, Version: "imagetest-broken", Output: brokenImg}); err != nil {
		t.Fatal(err)
	}
	vm = startVMWith(t, vmConfig{Dir: dir, Image: img, Vars: vars, Name: "boot3", Reboot: true, Timeout: 10 * time.Minute})
	vm.waitReady(t)
	if st := system(t); st.Slot != "a" || st.State != "good" || st.Version != "imagetest" {
		t.Fatalf("before the update: %+v", st)
	}
	start = time.Now()
	out, err := push(eddyBin, updateImg)
	if err != nil || !strings.Contains(out, "update complete: slot b (version imagetest-2) is the default") {
		t.Fatalf("eddy image push: %v\n%s\nserial:\n%s", err, out, tail(vm.serial(t), 4000))
	}
	t.Logf("FIGURE update: push to new slot serving and marked good %s (healthy_after 10s included)\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if st := system(t); st.Slot != "b" || st.State != "good" || st.Version != "imagetest-2" || !st.Slots[1].Default {
		t.Fatalf("after the update: %+v", st)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consume(ctx, t, sdk.QUIC, "image-quic", quicRecords)
	more := produce(ctx, t, sdk.TCP, "image-tcp-2", 20)

	start = time.Now()
	out, err = push(eddyBin, brokenImg)
	if err == nil || !strings.Contains(out+err.Error(), "update rolled back") {
		t.Fatalf("pushing a broken update: %v\n%s\nserial:\n%s", err, out, tail(vm.serial(t), 4000))
	}
	t.Logf("FIGURE rollback: push of a broken update to the box serving the old slot again %s\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if log := vm.serial(t); !strings.Contains(log, "Attempted to kill init") {
		t.Fatalf("the broken update did not panic the kernel:\n%s", tail(log, 4000))
	}
	if st := system(t); st.Slot != "b" || st.State != "good" || st.Version != "imagetest-2" || st.Slots[0].Version != "imagetest-broken" {
		t.Fatalf("after the rollback: %+v", st)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consume(ctx, t, sdk.QUIC, "image-quic", quicRecords)
	consume(ctx, t, sdk.TCP, "image-tcp", tcpRecords)
	consume(ctx, t, sdk.TCP, "image-tcp-2", more)
	vm.powerdown(t)
}

// qemuAdminToken is the qemu example's node.admin_token.
const qemuAdminToken = "lab-admin-token"

// system asks the guest's admin API for its version and slots.
func system(t *testing.T) sdk.SystemStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := (&sdk.ClusterAdmin{URL: fmt.Sprintf("http://127.0.0.1:%d", adminPort), Token: qemuAdminToken}).System(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// push runs eddy image push against the guest and returns its output.
func push(eddyBin, img string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, eddyBin, "image", "push", fmt.Sprintf("127.0.0.1:%d", adminPort), img, "--admin-token", qemuAdminToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func dial(ctx context.Context, t *testing.T, tr sdk.Transport) *sdk.Client {
	t.Helper()
	opts := []sdk.Option{sdk.WithBrokers(fmt.Sprintf("127.0.0.1:%d", kafkaPort)), sdk.WithTransport(tr)}
	if tr == sdk.QUIC {
		// The node made its CA inside the guest; a lab test trusts the
		// first certificate it sees (the qemu example is insecure anyway).
		opts = append(opts, sdk.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	}
	c, err := sdk.Dial(ctx, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", tr, err)
	}
	return c
}

func produce(ctx context.Context, t *testing.T, tr sdk.Transport, topic string, n int) []string {
	t.Helper()
	c := dial(ctx, t, tr)
	defer c.Close()
	var want []string
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf("%s-%03d", topic, i)
		want = append(want, v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)})
	}
	start := time.Now()
	if err := c.Produce(ctx, recs...); err != nil {
		t.Fatalf("produce over %s: %v", tr, err)
	}
	t.Logf("produced %d records over %s in %s", n, tr, time.Since(start).Round(time.Millisecond))
	return want
}

func consume(ctx context.Context, t *testing.T, tr sdk.Transport, topic string, want []string) {
	t.Helper()
	c := dial(ctx, t, tr)
	defer c.Close()
	cl, err := c.NewKgo(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s over %s: got %d of %d records", topic, tr, len(got), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// One key: one partition, so the order is the produce order.
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("consume %s over %s: got %v, want %v", topic, tr, got, want)
	}
}

type kcatRun struct {
	t    *testing.T
	args []string
}

func kcat(t *testing.T, args ...string) kcatRun { return kcatRun{t, args} }

func (k kcatRun) input(in string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", append([]string{"-b", fmt.Sprintf("127.0.0.1:%d", kafkaPort), "-q"}, k.args...)...)
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		k.t.Fatalf("kcat %v: %v\n%s", k.args, err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
