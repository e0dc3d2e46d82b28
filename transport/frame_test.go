package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func frameBytes(declared uint32, body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, declared), body...)
}

func TestReadFrame(t *testing.T) {
	cases := []struct {
		name     string
		in       []byte
		limit    int
		want     string
		wantErr  error
		tooLarge *FrameTooLargeError
	}{
		{name: "frame", in: frameBytes(5, "hello"), want: "hello"},
		{name: "empty frame", in: frameBytes(0, ""), want: ""},
		{name: "trailing bytes stay unread", in: frameBytes(2, "hello"), want: "he"},
		{name: "at the limit", in: frameBytes(5, "hello"), limit: 5, want: "hello"},
		{name: "no input", in: nil, wantErr: io.EOF},
		{name: "truncated length", in: []byte{0, 0, 1}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", in: frameBytes(10, "hello"), wantErr: io.ErrUnexpectedEOF},
		{name: "body missing", in: frameBytes(10, ""), wantErr: io.ErrUnexpectedEOF},
		{name: "negative length", in: frameBytes(0x80000000, "x"), wantErr: ErrNegativeFrameLength},
		{name: "minus one", in: frameBytes(0xffffffff, "x"), wantErr: ErrNegativeFrameLength},
		{name: "over the limit", in: frameBytes(6, "hello!"), limit: 5, tooLarge: &FrameTooLargeError{Size: 6, Limit: 5}},
		{name: "huge declared, no body", in: frameBytes(0x7fffffff, ""), limit: 100 << 20, tooLarge: &FrameTooLargeError{Size: 0x7fffffff, Limit: 100 << 20}},
		{name: "huge declared, no limit", in: frameBytes(0x7fffffff, "abc"), wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// OneByteReader exercises every partial read.
			r := bytes.NewReader(tc.in)
			got, err := ReadFrame(iotest.OneByteReader(r), nil, tc.limit)
			switch {
			case tc.tooLarge != nil:
				var tl *FrameTooLargeError
				if !errors.As(err, &tl) || *tl != *tc.tooLarge {
					t.Fatalf("got error %v, want %v", err, tc.tooLarge)
				}
				if consumed := len(tc.in) - r.Len(); consumed != FrameHeaderLen {
					t.Fatalf("consumed %d bytes, want only the %d-byte length", consumed, FrameHeaderLen)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("got error %v", err)
				}
				if string(got) != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, err := ReadFrame(bytes.NewReader(frameBytes(5, "hello")), buf, 0)
	require.NoError(t, err)
	require.Same(t, &buf[:1][0], &got[:1][0], "a frame that fits must be read into buf")

	long := bytes.Repeat([]byte{'z'}, 100)
	got, err = ReadFrame(bytes.NewReader(AppendFrame(nil, long)), buf, 0)
	require.NoError(t, err)
	require.Equal(t, long, got)
}

func TestReadFrameLargeBody(t *testing.T) {
	// Larger than what is allocated on trust: the body arrives in pieces
	// and the buffer grows with them.
	body := make([]byte, 5*trustedAlloc+123)
	for i := range body {
		body[i] = byte(i)
	}
	in := AppendFrame(nil, body)
	got, err := ReadFrame(iotest.HalfReader(bytes.NewReader(in)), nil, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got), "body differs")

	// Into a buffer already big enough: no growth, same memory.
	buf := make([]byte, 0, len(body))
	got, err = ReadFrame(bytes.NewReader(in), buf, 0)
	require.NoError(t, err)
	require.Same(t, &buf[:1][0], &got[:1][0])

	_, err = ReadFrame(bytes.NewReader(in[:len(in)-1]), nil, 0)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestReadFrameAllocatesWithArrivingBytes(t *testing.T) {
	// 100 MiB declared, 10 bytes sent: ReadFrame must not allocate 100 MiB
	// on the word of 4 bytes.
	in := frameBytes(100<<20, "0123456789")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(in), nil, 0)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*trustedAlloc {
		t.Fatalf("allocated %d bytes for a 10-byte body", n)
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteFrame(&buf, []byte("hello")))
	require.NoError(t, WriteFrame(&buf, nil))
	require.Equal(t, append(frameBytes(5, "hello"), 0, 0, 0, 0), buf.Bytes())
	require.Equal(t, buf.Bytes(), AppendFrame(AppendFrame(nil, []byte("hello")), nil))

	r := bytes.NewReader(buf.Bytes())
	got, err := ReadFrame(r, nil, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	got, err = ReadFrame(r, nil, 0)
	require.NoError(t, err)
	require.Len(t, got, 0)
	_, err = ReadFrame(r, nil, 0)
	require.ErrorIs(t, err, io.EOF)
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frameBytes(5, "hello"), 100)
	f.Add(frameBytes(0, ""), 0)
	f.Add(frameBytes(3, "abcdef"), 3)
	f.Add(frameBytes(10, "short"), 0)
	f.Add(frameBytes(0xffffffff, "neg"), 0)
	f.Add(frameBytes(0x7fffffff, ""), 1<<20)
	f.Add(frameBytes(200, string(make([]byte, 200))), 199)
	f.Add([]byte{0, 0}, 10)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		r := bytes.NewReader(in)
		got, err := ReadFrame(iotest.HalfReader(r), make([]byte, 0, 8), limit)
		consumed := len(in) - r.Len()
		if len(in) < FrameHeaderLen {
			if err == nil {
				t.Fatalf("frame from %d bytes", len(in))
			}
			return
		}
		declared := int32(binary.BigEndian.Uint32(in))
		var tl *FrameTooLargeError
		switch {
		case declared < 0:
			if !errors.Is(err, ErrNegativeFrameLength) {
				t.Fatalf("negative length %d: got %v", declared, err)
			}
		case limit > 0 && int(declared) > limit:
			if !errors.As(err, &tl) || tl.Size != int(declared) || tl.Limit != limit {
				t.Fatalf("declared %d, limit %d: got %v", declared, limit, err)
			}
			if consumed != FrameHeaderLen {
				t.Fatalf("oversized frame: consumed %d bytes, want %d", consumed, FrameHeaderLen)
			}
		case int(declared) > len(in)-FrameHeaderLen:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated frame: got %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("valid frame: %v", err)
			}
			want := in[FrameHeaderLen : FrameHeaderLen+int(declared)]
			if !bytes.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			if consumed != FrameHeaderLen+len(want) {
				t.Fatalf("consumed %d bytes, want %d", consumed, FrameHeaderLen+len(want))
			}
			if re := AppendFrame(nil, got); !bytes.Equal(re, in[:consumed]) {
				t.Fatalf("AppendFrame does not round-trip: %q vs %q", re, in[:consumed])
			}
		}
	})
}
