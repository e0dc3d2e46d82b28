package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"
)

// Limits are the machine's physical limits, measured by `eddy bench
// limits` and shown next to every report.
type Limits struct {
	FsyncP50Micros     float64 `json:"fsync_p50_us"` // one 4 KiB append + fdatasync
	FsyncP99Micros     float64 `json:"fsync_p99_us"`
	SerialFsyncsPerSec float64 `json:"serial_fsyncs_per_sec"`
	SeqWriteMBPerSec   float64 `json:"seq_write_mb_per_sec"` // sequential write + final fsync
	TCPMBPerSec        float64 `json:"tcp_mb_per_sec"`       // loopback, one connection
	QUICMBPerSec       float64 `json:"quic_mb_per_sec"`      // loopback quic-go, one stream, TLS 1.3
	QUICCPUSecPerGB    float64 `json:"quic_cpu_sec_per_gb"`  // both ends
	MemcpyMBPerSec     float64 `json:"memcpy_mb_per_sec"`
	Dir                string  `json:"dir"`             // where the disk probes wrote
	Quick              bool    `json:"quick,omitempty"` // each probe ran ~0.5 s instead of ~2.5 s
}

// Probe parameters. MB is 1e6 bytes throughout.
const (
	limitsQuickBudget = 500 * time.Millisecond  // per probe, quick
	limitsFullBudget  = 2500 * time.Millisecond // per probe, full
	// limitsGrace bounds network I/O beyond a probe's budget: a probe that
	// has not finished by then fails instead of hanging.
	limitsGrace = 10 * time.Second

	limitsFsyncBlock   = 4 << 10
	limitsFsyncFileCap = 64 << 20 // the fsync file is emptied (untimed) when it reaches this
	limitsSeqBlock     = 1 << 20
	limitsSeqMax       = 1 << 30
	// limitsSeqWindow bounds the data the sequential write probe leaves
	// dirty: writeback of each block starts as soon as it is written and
	// the probe waits for the block this far behind, so the final fsync is
	// short and the figure is the disk's, not the page cache's.
	limitsSeqWindow  = 16 << 20
	limitsNetWrite   = 256 << 10
	limitsMemcpySize = 64 << 20
	limitsALPN       = "eddy-limits"
)

// MeasureLimits probes the machine: fsync latency, sequential write bandwidth
// (in dir), loopback TCP and QUIC throughput and memcpy bandwidth. progress,
// when not nil, is called with a short line before each probe.
//
// Each probe runs for ~2.5 s, or ~0.5 s when quick. dir must exist; "" means
// os.TempDir(). The probes' files are removed before MeasureLimits returns.
// On error the returned Limits holds the figures of the probes that
// completed.
func MeasureLimits(ctx context.Context, dir string, quick bool, progress func(string)) (Limits, error) {
	budget := limitsFullBudget
	if quick {
		budget = limitsQuickBudget
	}
	if dir == "" {
		dir = os.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Limits{}, fmt.Errorf("limits: %w", err)
	}
	l := Limits{Dir: abs, Quick: quick}
	probes := []struct {
		name, line string
		run        func() error
	}{
		{"fsync", "fsync: 4 KiB append + fdatasync in " + abs, func() (err error) {
			l.FsyncP50Micros, l.FsyncP99Micros, l.SerialFsyncsPerSec, err = probeFsync(ctx, abs, budget)
			return err
		}},
		{"sequential write", "sequential write: 1 MiB blocks + fsync in " + abs, func() (err error) {
			l.SeqWriteMBPerSec, err = probeSeqWrite(ctx, abs, budget)
			return err
		}},
		{"tcp loopback", "TCP loopback: one connection, 256 KiB writes", func() (err error) {
			l.TCPMBPerSec, err = probeTCP(ctx, budget)
			return err
		}},
		{"quic loopback", "QUIC loopback: quic-go, TLS 1.3, one stream, 256 KiB writes", func() (err error) {
			l.QUICMBPerSec, l.QUICCPUSecPerGB, err = probeQUIC(ctx, budget)
			return err
		}},
		{"memcpy", "memcpy: 64 MiB buffers", func() (err error) {
			l.MemcpyMBPerSec, err = probeMemcpy(ctx, budget)
			return err
		}},
	}
	for _, p := range probes {
		if err := ctx.Err(); err != nil {
			return l, fmt.Errorf("limits: %w", err)
		}
		if progress != nil {
			progress(p.line)
		}
		if err := p.run(); err != nil {
			return l, fmt.Errorf("limits: %s probe: %w", p.name, err)
		}
	}
	return l, nil
}

// Markdown renders the limits as a small markdown table (probe | result) for reports.
func (l Limits) Markdown() string {
	var b strings.Builder
	row := func(probe, result string) { fmt.Fprintf(&b, "| %s | %s |\n", probe, result) }
	row("probe", "result")
	b.WriteString("|---|---|\n")
	row("one 4 KiB append + fdatasync", fmt.Sprintf("p50 %s µs, p99 %s µs → %s serial fsyncs/s",
		limitsNum(l.FsyncP50Micros), limitsNum(l.FsyncP99Micros), limitsNum(l.SerialFsyncsPerSec)))
	row("sequential write, 1 MiB blocks + fsync", limitsNum(l.SeqWriteMBPerSec)+" MB/s")
	row("TCP loopback, one connection", limitsNum(l.TCPMBPerSec)+" MB/s")
	row("QUIC loopback (quic-go, TLS 1.3), one stream", fmt.Sprintf("%s MB/s, %s CPU-seconds per GB (both ends)",
		limitsNum(l.QUICMBPerSec), limitsNum(l.QUICCPUSecPerGB)))
	row("memcpy, 64 MiB buffers", limitsNum(l.MemcpyMBPerSec)+" MB/s")
	if l.Dir != "" || l.Quick {
		where := "`" + l.Dir + "`"
		if l.Dir == "" {
			where = "?"
		}
		if l.Quick {
			where += " (quick probes, ~0.5 s each)"
		}
		row("disk probes ran in", where)
	}
	return b.String()
}

// limitsNum formats v with about three significant digits.
func limitsNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// probeFsync appends 4 KiB blocks to a file in dir, each followed by
// fdatasync, for budget. It returns the p50 and p99 latency of one
// append + fdatasync in µs and how many of them complete per second
// back to back.
func probeFsync(ctx context.Context, dir string, budget time.Duration) (p50, p99, perSec float64, err error) {
	f, err := os.CreateTemp(dir, "eddy-limits-fsync-*")
	if err != nil {
		return 0, 0, 0, err
	}
	defer limitsRemove(f, &err)

	block := make([]byte, limitsFsyncBlock)
	limitsFill(block)
	var (
		samples []time.Duration
		busy    time.Duration
		size    int64
	)
	deadline := time.Now().Add(budget)
	for len(samples) == 0 || time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, err
		}
		if size+limitsFsyncBlock > limitsFsyncFileCap {
			// Keep the file small on fast (e.g. in-memory) file systems;
			// every timed write still appends.
			if err := f.Truncate(0); err != nil {
				return 0, 0, 0, err
			}
			if err := limitsFdatasync(f); err != nil {
				return 0, 0, 0, err
			}
			size = 0
		}
		t0 := time.Now()
		if _, err := f.WriteAt(block, size); err != nil {
			return 0, 0, 0, err
		}
		if err := limitsFdatasync(f); err != nil {
			return 0, 0, 0, err
		}
		d := max(time.Since(t0), 1)
		samples = append(samples, d)
		busy += d
		size += limitsFsyncBlock
	}
	slices.Sort(samples)
	micros := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return micros(limitsPercentile(samples, 50)), micros(limitsPercentile(samples, 99)),
		float64(len(samples)) / busy.Seconds(), nil
}

// limitsPercentile is the nearest-rank percentile p (0–100) of sorted.
func limitsPercentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// probeSeqWrite writes 1 MiB blocks to a file in dir for budget (or up to
// 1 GiB), then fsyncs it, and returns MB/s over the whole, fsync included.
// sync_file_range(2) starts each block's writeback right away and keeps at
// most limitsSeqWindow dirty (where the file system does not support it,
// the probe does without).
func probeSeqWrite(ctx context.Context, dir string, budget time.Duration) (mbps float64, err error) {
	f, err := os.CreateTemp(dir, "eddy-limits-seq-*")
	if err != nil {
		return 0, err
	}
	defer limitsRemove(f, &err)
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	writeback := true
	hint := func(off int64, flags int) {
		if !writeback {
			return
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SyncFileRange(int(fd), off, limitsSeqBlock, flags)
		}); err != nil || serr != nil {
			writeback = false // a real I/O error shows at the final fsync
		}
	}

	block := make([]byte, limitsSeqBlock)
	limitsFill(block) // incompressible, in case the file system compresses
	var n int64
	start := time.Now()
	deadline := start.Add(budget)
	for n == 0 || (n < limitsSeqMax && time.Now().Before(deadline)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if _, err := f.Write(block); err != nil {
			return 0, err
		}
		hint(n, unix.SYNC_FILE_RANGE_WRITE)
		if n >= limitsSeqWindow {
			hint(n-limitsSeqWindow, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
		n += limitsSeqBlock
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds() / 1e6, nil
}

// limitsRemove closes and removes f, reporting a failure in *err unless
// it already holds one.
func limitsRemove(f *os.File, err *error) {
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if *err == nil {
		*err = errors.Join(cerr, rerr)
	}
}

// limitsFdatasync is fdatasync(2) on f, retried on EINTR.
func limitsFdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// limitsFill fills b with pseudo-random bytes.
func limitsFill(b []byte) {
	var seed [32]byte
	_, _ = rand.NewChaCha8(seed).Read(b)
}

// limitsReceived is what the receiving end of a network probe saw.
type limitsReceived struct {
	n   int64     // bytes read until EOF
	end time.Time // when EOF arrived
	err error
}

// limitsDrain reads r until EOF with 256 KiB reads and counts the bytes.
func limitsDrain(r io.Reader) limitsReceived {
	buf := make([]byte, limitsNetWrite)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return limitsReceived{n: n, end: time.Now()}
		}
		if err != nil {
			return limitsReceived{n: n, err: err}
		}
	}
}

// limitsErr prefers ctx's error over err, which is usually the deadline
// that ctx's cancellation set off.
func limitsErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// probeTCP sends 256 KiB writes over one loopback TCP connection for
// budget and returns MB/s as counted by the reader.
func probeTCP(parent context.Context, budget time.Duration) (mbps float64, err error) {
	ctx, cancel := context.WithTimeout(parent, budget+limitsGrace)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return 0, limitsErr(parent, err)
	}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		ln.Close()
		wg.Wait()
	}()
	safety, _ := ctx.Deadline()

	received := make(chan limitsReceived, 1)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			received <- limitsReceived{err: err}
			return
		}
		defer c.Close()
		if err := c.SetDeadline(safety); err != nil {
			received <- limitsReceived{err: err}
			return
		}
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
		defer stop()
		received <- limitsDrain(c)
	})

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, limitsErr(parent, err)
	}
	defer c.Close()
	if err := c.SetDeadline(safety); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	buf := make([]byte, limitsNetWrite)
	start := time.Now()
	deadline := start.Add(budget)
	for first := true; first || time.Now().Before(deadline); first = false {
		if _, err := c.Write(buf); err != nil {
			return 0, limitsErr(parent, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, limitsErr(parent, err)
	}
	r := <-received
	if r.err != nil {
		return 0, limitsErr(parent, fmt.Errorf("reader: %w", r.err))
	}
	return float64(r.n) / r.end.Sub(start).Seconds() / 1e6, nil
}

// probeQUIC sends 256 KiB writes over one stream of one loopback quic-go
// connection for budget. It returns MB/s as counted by the reader and the
// CPU time of the process (both ends) per GB.
func probeQUIC(parent context.Context, budget time.Duration) (mbps, cpuSecPerGB float64, err error) {
	serverTLS, clientTLS, err := limitsTLS()
	if err != nil {
		return 0, 0, fmt.Errorf("certificate: %w", err)
	}
	ctx, cancel := context.WithTimeout(parent, budget+limitsGrace)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS, &quic.Config{})
	if err != nil {
		cancel()
		return 0, 0, err
	}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		ln.Close()
		wg.Wait()
	}()

	received := make(chan limitsReceived, 1)
	wg.Go(func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			received <- limitsReceived{err: err}
			return
		}
		defer conn.CloseWithError(0, "")
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			received <- limitsReceived{err: err}
			return
		}
		stop := context.AfterFunc(ctx, func() { str.CancelRead(1) })
		defer stop()
		received <- limitsDrain(str)
	})

	conn, err := quic.DialAddr(ctx, ln.Addr().String(), clientTLS, &quic.Config{})
	if err != nil {
		return 0, 0, limitsErr(parent, err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, 0, limitsErr(parent, err)
	}
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(1) })
	defer stop()

	buf := make([]byte, limitsNetWrite)
	cpu0, err := limitsCPU()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	deadline := start.Add(budget)
	for first := true; first || time.Now().Before(deadline); first = false {
		if _, err := str.Write(buf); err != nil {
			return 0, 0, limitsErr(parent, err)
		}
	}
	if err := str.Close(); err != nil {
		return 0, 0, limitsErr(parent, err)
	}
	r := <-received
	if r.err != nil {
		return 0, 0, limitsErr(parent, fmt.Errorf("reader: %w", r.err))
	}
	cpu1, err := limitsCPU()
	if err != nil {
		return 0, 0, err
	}
	gb := float64(r.n) / 1e9
	return gb * 1e3 / r.end.Sub(start).Seconds(), (cpu1 - cpu0).Seconds() / gb, nil
}

// limitsCPU is the user + system CPU time of the whole process.
func limitsCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// limitsTLS makes a self-signed ECDSA certificate for localhost and
// 127.0.0.1 and the TLS 1.3 configurations of both ends that use it.
func limitsTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := crand.Int(crand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "eddy-limits"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{limitsALPN},
	}
	client = &tls.Config{
		RootCAs:    roots,
		ServerName: "localhost",
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{limitsALPN},
	}
	return server, client, nil
}

// probeMemcpy copies a 64 MiB buffer into another with copy() for budget
// and returns MB copied per second.
func probeMemcpy(ctx context.Context, budget time.Duration) (float64, error) {
	src := make([]byte, limitsMemcpySize)
	dst := make([]byte, limitsMemcpySize)
	src[0] = 1
	for k := 1; k < len(src); k *= 2 { // touch every page of src
		copy(src[k:], src[:k])
	}
	copy(dst, src) // and of dst, untimed
	var n int64
	start := time.Now()
	deadline := start.Add(budget)
	for n == 0 || time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		copy(dst, src)
		n += limitsMemcpySize
	}
	elapsed := time.Since(start)
	runtime.KeepAlive(dst)
	return float64(n) / elapsed.Seconds() / 1e6, nil
}
