//go:build linux

package boot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// ntpServer is a minimal NTP server on 127.0.0.1: it answers client
// (mode 3) packets as a stratum-2 server whose clock is the host's plus
// ahead.
type ntpServer struct {
	conn    *net.UDPConn
	ahead   time.Duration
	answers atomic.Int64
	done    chan struct{}
}

// startNTPServer listens on 127.0.0.1:port (0: any free port).
func startNTPServer(t *testing.T, port int, ahead time.Duration) *ntpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	s := &ntpServer{conn: conn, ahead: ahead, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *ntpServer) addr() string { return s.conn.LocalAddr().String() }

func (s *ntpServer) close() {
	s.conn.Close()
	<-s.done
}

func (s *ntpServer) serve() {
	defer close(s.done)
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		recv := time.Now().Add(s.ahead)
		if n < 48 || buf[0]&7 != 3 {
			continue
		}
		resp := make([]byte, 48)
		resp[0] = 0<<6 | 4<<3 | 4                       // no leap warning, version 4, server
		resp[1] = 2                                     // stratum
		resp[2] = 6                                     // poll 2^6 s
		resp[3] = 0xec                                  // precision 2^-20 s
		binary.BigEndian.PutUint32(resp[8:], 1<<16/100) // root dispersion 10 ms
		copy(resp[12:], "TEST")
		binary.BigEndian.PutUint64(resp[16:], ntpTime(recv.Add(-time.Minute))) // reference
		copy(resp[24:32], buf[40:48])                                          // origin: the client's transmit
		binary.BigEndian.PutUint64(resp[32:], ntpTime(recv))
		binary.BigEndian.PutUint64(resp[40:], ntpTime(time.Now().Add(s.ahead)))
		if _, err := s.conn.WriteToUDP(resp, from); err != nil {
			return
		}
		s.answers.Add(1)
	}
}

// ntpTime is t as an NTP time stamp: seconds since 1900 and a binary
// fraction.
func ntpTime(t time.Time) uint64 {
	d := t.Sub(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC))
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// freePort returns a UDP port on 127.0.0.1 with nothing listening (it was
// free a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

// fakeClock is a clock ahead of or behind the host's, which step moves.
type fakeClock struct {
	mu    sync.Mutex
	skew  time.Duration
	steps []time.Duration
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.skew)
}

func (f *fakeClock) step(offset time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skew += offset
	f.steps = append(f.steps, offset)
	return nil
}

func (f *fakeClock) stepped() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.steps...)
}

// syncedBuffer is a log sink read while goroutines write to it.
type syncedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testClockSync is a clockSync on a fake clock with short waits.
func testClockSync(servers ...string) (*clockSync, *fakeClock, *syncedBuffer) {
	logs := &syncedBuffer{}
	clock := &fakeClock{}
	c := newClockSync(zerolog.New(logs).Level(zerolog.DebugLevel), servers)
	c.now, c.step = clock.now, clock.step
	c.bootWait, c.queryTimeout = 2*time.Second, 300*time.Millisecond
	c.retryMin, c.retryMax, c.resync = 20*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond
	return c, clock, logs
}

// tolerance allows for loopback round trips on a loaded host: the client
// splits the round trip evenly, so the error is at most half of it.
const tolerance = 100 * time.Millisecond

func near(got, want time.Duration) bool { return (got - want).Abs() < tolerance }

// TestNTPQueryOffset reads the offset of a server ahead of and behind the
// host's clock, and of a host clock that is itself off.
func TestNTPQueryOffset(t *testing.T) {
	for _, tt := range []struct {
		name        string
		ahead, skew time.Duration
	}{
		{"server ahead", 90 * time.Second, 0},
		{"server behind", -42 * time.Second, 0},
		{"clock behind", 0, -3 * time.Hour},
		{"in sync", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startNTPServer(t, 0, tt.ahead)
			c, clock, _ := testClockSync(srv.addr())
			clock.skew = tt.skew
			offset, server, err := c.query(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.ahead - tt.skew; server != srv.addr() || !near(offset, want) {
				t.Fatalf("offset %s from %s, want %s from %s", offset, server, want, srv.addr())
			}
		})
	}
}

// TestNTPFallsThrough asks a closed port and a server that never answers
// before one that does.
func TestNTPFallsThrough(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startNTPServer(t, 0, 7*time.Second)
	c, _, logs := testClockSync(dead, silent.LocalAddr().String(), srv.addr())
	start := time.Now()
	offset, server, err := c.query(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if server != srv.addr() || !near(offset, 7*time.Second) {
		t.Fatalf("offset %s from %s, want 7s from %s", offset, server, srv.addr())
	}
	if took := time.Since(start); took < c.queryTimeout || took > 10*c.queryTimeout {
		t.Fatalf("took %s; the silent server should cost one query timeout (%s)", took, c.queryTimeout)
	}
	if l := logs.String(); !strings.Contains(l, dead) || !strings.Contains(l, "did not answer") {
		t.Fatalf("the dead server is not in the log:\n%s", l)
	}

	// None answers: the error names them all.
	c, _, _ = testClockSync(dead, silent.LocalAddr().String())
	if _, _, err := c.query(context.Background()); err == nil || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), silent.LocalAddr().String()) {
		t.Fatalf("no server: %v", err)
	}
	// A cancelled context ends the query at once.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	c, _, _ = testClockSync(silent.LocalAddr().String())
	c.queryTimeout = 10 * time.Second
	start = time.Now()
	if _, _, err := c.query(ctx); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled query: %v after %s", err, time.Since(start))
	}
}

// TestNTPBootSteps steps a clock 2 h behind once at boot, logs it, and
// leaves a clock within a second alone.
func TestNTPBootSteps(t *testing.T) {
	srv := startNTPServer(t, 0, 0)
	c, clock, logs := testClockSync(srv.addr())
	clock.skew = -2 * time.Hour
	c.resync = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.start(ctx)
	if s := clock.stepped(); len(s) != 1 || !near(s[0], 2*time.Hour) {
		t.Fatalf("steps %v, want one of 2h", s)
	}
	if l := logs.String(); !strings.Contains(l, `"message":"clock stepped from NTP"`) || !strings.Contains(l, `"server":"`+srv.addr()+`"`) || !strings.Contains(l, `"level":"info"`) {
		t.Fatalf("log:\n%s", l)
	}

	c, clock, logs = testClockSync(srv.addr())
	clock.skew = 400 * time.Millisecond
	c.start(ctx)
	if s := clock.stepped(); len(s) != 0 {
		t.Fatalf("a clock 400 ms off was stepped: %v", s)
	}
	if l := logs.String(); !strings.Contains(l, "clock in sync with NTP") {
		t.Fatalf("log:\n%s", l)
	}
}

// TestNTPBackgroundRetry boots with no server answering: the boot goes on
// after bootWait with a warning, and the clock is stepped, once, when a
// server appears; the resyncs after that leave it alone.
func TestNTPBackgroundRetry(t *testing.T) {
	port := freePort(t)
	c, clock, logs := testClockSync("127.0.0.1:" + strconv.Itoa(port))
	c.bootWait = 300 * time.Millisecond
	clock.skew = 5 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	c.start(ctx)
	if took := time.Since(start); took < c.bootWait || took > c.bootWait+2*time.Second {
		t.Fatalf("start took %s, want about %s", took, c.bootWait)
	}
	if l := logs.String(); !strings.Contains(l, "no NTP server answered") || !strings.Contains(l, `"level":"warn"`) {
		t.Fatalf("log:\n%s", l)
	}
	time.Sleep(200 * time.Millisecond) // a few failed retries
	if s := clock.stepped(); len(s) != 0 {
		t.Fatalf("stepped without a server: %v", s)
	}
	srv := startNTPServer(t, port, 0)
	deadline := time.Now().Add(10 * time.Second)
	for len(clock.stepped()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := clock.stepped(); len(s) != 1 || !near(s[0], -5*time.Minute) {
		t.Fatalf("steps %v, want one of -5m", s)
	}
	// Resyncs every 50 ms: they query, and step no more.
	answered := srv.answers.Load()
	for srv.answers.Load() < answered+3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.answers.Load() < answered+3 {
		t.Fatal("no resyncs")
	}
	if s := clock.stepped(); len(s) != 1 {
		t.Fatalf("resyncs stepped again: %v", s)
	}
	// The goroutine ends with ctx.
	cancel()
	time.Sleep(100 * time.Millisecond)
	answered = srv.answers.Load()
	time.Sleep(200 * time.Millisecond)
	if n := srv.answers.Load(); n != answered {
		t.Fatalf("%d queries after ctx ended", n-answered)
	}
}

// TestNTPStepFailure reports a clock that cannot be set as not synced.
func TestNTPStepFailure(t *testing.T) {
	srv := startNTPServer(t, 0, time.Hour)
	c, _, logs := testClockSync(srv.addr())
	c.step = func(time.Duration) error { return errors.New("EPERM") }
	if ok, err := c.sync(context.Background(), true); ok || err == nil || !strings.Contains(err.Error(), "EPERM") {
		t.Fatalf("sync: %v %v", ok, err)
	}
	if l := logs.String(); !strings.Contains(l, "setting the clock") {
		t.Fatalf("log:\n%s", l)
	}
}
