package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Limits of the listeners FuzzServeConn feeds: small, so the fuzzer
// reaches every branch of the connection with small inputs.
const (
	fuzzMaxFrame    = 256
	fuzzMaxPreAuth  = 64
	fuzzMaxInFlight = 2
)

// fuzzHandler answers by the first byte of a frame: 'N' no response, 'E' a
// Responder error (the connection closes), 'C' a last response and
// ErrCloseAfterResponse; anything else "F" followed by the frame. An
// oversized frame gets "O", its declared size and its head.
type fuzzHandler struct{}

func (fuzzHandler) ServeFrame(_ context.Context, _ *ConnInfo, frame []byte) Responder {
	if len(frame) > 0 {
		switch frame[0] {
		case 'N':
			return nil
		case 'E':
			return func(context.Context) ([]byte, error) { return nil, errors.New("fuzz: request failed") }
		case 'C':
			p := append([]byte("C"), frame...)
			return func(context.Context) ([]byte, error) { return p, ErrCloseAfterResponse }
		}
	}
	// The frame is only valid during this call.
	p := append([]byte("F"), frame...)
	return func(context.Context) ([]byte, error) { return p, nil }
}

func (fuzzHandler) ServeOversized(_ context.Context, _ *ConnInfo, head []byte, size int) Responder {
	p := binary.BigEndian.AppendUint32([]byte("O"), uint32(size))
	p = append(p, head...)
	return func(context.Context) ([]byte, error) { return p, nil }
}

// fuzzListeners are a TCP listener whose connections are authenticated
// from the start and one whose connections never are (held to the
// pre-authentication frame limit), shared by a fuzz process's inputs.
var fuzzListeners = sync.OnceValues(func() ([2]string, error) {
	var addrs [2]string
	for i, auth := range []bool{true, false} {
		cfg := ServerConfig{
			Name: "fuzz", Handler: fuzzHandler{},
			MaxFrameBytes: fuzzMaxFrame, MaxPreAuthFrameBytes: fuzzMaxPreAuth, MaxInFlight: fuzzMaxInFlight,
			Logger: zerolog.Nop(),
		}
		if auth {
			cfg.OnConnect = func(c *ConnInfo) { c.SetPrincipal("User:fuzz") }
		}
		s, err := ListenTCP("127.0.0.1:0", nil, cfg)
		if err != nil {
			return addrs, err
		}
		// Serves until the fuzz process exits.
		go func() { _ = s.Serve(context.Background()) }()
		addrs[i] = s.Addr().String()
	}
	return addrs, nil
})

// FuzzServeConn feeds arbitrary bytes to a served TCP connection, as a
// client would send them, closes the client's sending side, and checks
// what comes back against a model of the connection: one response per
// request in order; "no response" where the handler said so; an oversized
// frame answered from its head and skipped; a frame over the
// pre-authentication limit, a truncated or negative length, or a
// Responder error ending the connection after the responses before it.
// When the input ends cleanly (or with a Responder's close) the responses
// must be exactly the model's; when it ends in a broken frame they must
// be a prefix of them. Nothing may hang: the connection must close within
// seconds of the input's end.
func FuzzServeConn(f *testing.F) {
	frame := func(b string) []byte { return AppendFrame(nil, []byte(b)) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f.Add(true, cat(frame("hello"), frame(""), frame("N no answer"), frame("world")))
	f.Add(false, cat(frame("small"), frame(string(make([]byte, 100)))))
	f.Add(true, cat(frame("a"), frame(string(bytes.Repeat([]byte{'x'}, 300))), frame("b")))
	f.Add(true, cat(frame("a"), frame("E fails"), frame("b")))
	f.Add(true, cat(frame("a"), frame("C closes"), frame("b")))
	f.Add(true, cat(frame("a"), []byte{0, 0, 0, 9, 'x'}))
	f.Add(true, cat(frame("a"), []byte{0xff, 0xff, 0xff, 0xfe}))
	f.Add(true, cat(frame("a"), frame("b"), frame("c"), frame("d"), frame("e"), frame("f")))
	f.Add(false, []byte{})
	f.Fuzz(func(t *testing.T, auth bool, in []byte) {
		addrs, err := fuzzListeners()
		if err != nil {
			t.Fatal(err)
		}
		addr := addrs[1]
		if auth {
			addr = addrs[0]
		}
		want, exact := modelConn(in, auth)
		got, err := exchange(addr, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > len(want) || (exact && len(got) != len(want)) {
			t.Fatalf("got %d responses, want %d (exact %v):\n got %q\nwant %q", len(got), len(want), exact, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("response %d: got %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// modelConn returns the responses a connection owes for input in, and
// whether all of them must arrive rather than some prefix of them. All
// must when every frame of the input is well formed (complete, with a
// legal length), whether the connection then ends at the input's end or
// at a Responder that closes it. A broken frame anywhere stops the reader
// at once, and by design the responses still pending then are dropped.
func modelConn(in []byte, auth bool) (want [][]byte, exact bool) {
	answering := true
	for pos := 0; ; {
		rest := in[pos:]
		if len(rest) == 0 {
			return want, true
		}
		if len(rest) < FrameHeaderLen {
			return want, false
		}
		n := int(int32(binary.BigEndian.Uint32(rest)))
		body := rest[FrameHeaderLen:]
		switch {
		case n < 0:
			return want, false
		case !auth && n > fuzzMaxPreAuth:
			return want, false
		case n > fuzzMaxFrame:
			head := min(n, OversizedHeadBytes)
			if len(body) < head {
				return want, false
			}
			if answering {
				p := binary.BigEndian.AppendUint32([]byte("O"), uint32(n))
				want = append(want, append(p, body[:head]...))
			}
			if len(body) < n {
				return want, false
			}
			pos += FrameHeaderLen + n
			continue
		case len(body) < n:
			return want, false
		}
		req := body[:n]
		pos += FrameHeaderLen + n
		if !answering {
			continue
		}
		if len(req) > 0 {
			switch req[0] {
			case 'N':
				continue
			case 'E':
				answering = false
				continue
			case 'C':
				want = append(want, append([]byte("C"), req...))
				answering = false
				continue
			}
		}
		want = append(want, append([]byte("F"), req...))
	}
}

// exchange sends in on a new connection to addr, half-closes it and reads
// every response frame until the server closes the connection.
func exchange(addr string, in []byte) ([][]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	// Close with a reset: a fuzz run makes tens of thousands of
	// connections, which TIME_WAIT would otherwise keep from their ports.
	defer func() { _ = tc.SetLinger(0); _ = tc.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	_ = tc.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		_, err := tc.Write(in)
		if err == nil {
			err = tc.CloseWrite()
		}
		werr <- err
	}()
	out, rerr := io.ReadAll(tc)
	<-werr // the server may stop reading early: a failed write is fine
	if rerr != nil && !errors.Is(rerr, syscall.ECONNRESET) {
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return nil, fmt.Errorf("connection still open 10s after the input ended (a hang):\n%s", buf)
		}
		return nil, fmt.Errorf("read responses: %w", rerr)
	}
	var resps [][]byte
	r := bytes.NewReader(out)
	for r.Len() > 0 {
		p, err := ReadFrame(r, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("response stream %q: %w", out, err)
		}
		resps = append(resps, p)
	}
	return resps, nil
}
