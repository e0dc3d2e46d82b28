package plugins

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/rs/zerolog"
)

// benchModule is the module the compile and instantiate benchmarks use:
// accept_all.wasm, or the file named by EDDY_BENCH_WASM (for example a
// guest built with the Go guest kit) to measure a realistic module.
func benchModule(b *testing.B) []byte {
	if path := os.Getenv("EDDY_BENCH_WASM"); path != "" {
		wasm, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return wasm
	}
	return testModule(b, "accept_all")
}

// BenchmarkValidate: one Validate of 1,000 records of 1 KiB, through
// accept_all (walks the records) and scan_all (also reads every value
// byte, like a parser), with wazero's termination checks and without
// (unsafe; for comparison only).
func BenchmarkValidate(b *testing.B) {
	ctx := context.Background()
	rs := records(1000, 1024)
	for _, module := range []string{"accept_all", "scan_all"} {
		for _, mode := range []struct {
			name    string
			disable bool
		}{{"close-on-ctx-done", false}, {"unsafe-no-close-on-ctx-done", true}} {
			b.Run(module+"/"+mode.name, func(b *testing.B) {
				h, _ := newTestHost(b, func(c *Config) {
					c.Logger = zerolog.Nop()
					c.DisableCloseOnContextDone = mode.disable
					c.Limits.CallTimeout = time.Minute // measure, do not cut
				})
				p := load(b, h, module, nil)
				b.SetBytes(int64(len(rs) * 1024))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Validate(ctx, rs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
			})
		}
	}
}

// BenchmarkValidateParts splits a Validate call of 1,000 × 1 KiB into the
// host's encoding, the guest call (input copy included) and parsing.
func BenchmarkValidateParts(b *testing.B) {
	ctx := context.Background()
	rs := records(1000, 1024)
	h, _ := newTestHost(b, func(c *Config) { c.Logger = zerolog.Nop() })
	p := load(b, h, "accept_all", nil)
	in, err := p.pool.get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer p.pool.put(in)
	input := abi.AppendBatch(nil, rs)
	out, err := in.run(ctx, abi.ExportValidate, input)
	if err != nil {
		b.Fatal(err)
	}
	verdicts := append([]byte(nil), out...)
	perRecord := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
	}
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, len(input))
		for b.Loop() {
			buf = abi.AppendBatch(buf[:0], rs)
		}
		perRecord(b)
	})
	b.Run("guest-call", func(b *testing.B) {
		for b.Loop() {
			cctx, cancel := context.WithTimeout(withSink(ctx, p.sink), h.limits.CallTimeout)
			if _, err := in.run(cctx, abi.ExportValidate, input); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
		perRecord(b)
	})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := abi.ParseVerdicts(verdicts, len(rs), maxReasonBytes); err != nil {
				b.Fatal(err)
			}
		}
		perRecord(b)
	})
}

// BenchmarkCompile: compiling and checking a module in a fresh host,
// cold and with a warm CacheDir (the broker restarting).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	wasm := benchModule(b)
	run := func(b *testing.B, dir func() string) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			h, err := NewHost(ctx, Config{CacheDir: dir(), Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			m, err := h.acquireModule(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			h.releaseModule(m)
			if err := h.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("cold", func(b *testing.B) {
		run(b, func() string { return b.TempDir() })
	})
	b.Run("warm-cache-dir", func(b *testing.B) {
		dir := b.TempDir()
		h, err := NewHost(ctx, Config{CacheDir: dir, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.acquireModule(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		if err := h.Close(ctx); err != nil {
			b.Fatal(err)
		}
		run(b, func() string { return dir })
	})
}

// BenchmarkInstantiate: creating one instance (instantiation,
// _initialize, eddy_init) of a compiled module, as the pool does.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	h, _ := newTestHost(b, func(c *Config) { c.Logger = zerolog.Nop() })
	m, err := h.acquireModule(ctx, benchModule(b))
	if err != nil {
		b.Fatal(err)
	}
	defer h.releaseModule(m)
	sink := newLogSink(zerolog.Nop(), 10)
	cfg := configBlock(nil)
	var pages uint32
	for b.Loop() {
		in, err := h.instantiate(ctx, m, cfg, sink)
		if err != nil {
			b.Fatal(err)
		}
		pages = in.mem.Size()
		in.close()
	}
	b.ReportMetric(float64(pages), "memory-bytes")
}
