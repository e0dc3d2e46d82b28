package main

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// Limits on one datum.
const (
	maxDepth = 256     // nesting of records, arrays, maps and unions
	maxItems = 1 << 20 // array items and map entries in all
)

// datumError is why a datum does not decode, and where: path holds the
// path's segments innermost first, added as the error unwinds.
type datumError struct {
	path []string
	msg  string
}

func (e *datumError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(e.path[i])
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func errorf(format string, args ...any) *datumError {
	return &datumError{msg: fmt.Sprintf(format, args...)}
}

// at adds a path segment to err.
func at(err *datumError, seg string) *datumError {
	err.path = append(err.path, seg)
	return err
}

// checker walks one datum. It allocates only to report an error.
type checker struct {
	buf   []byte
	items int
}

// checkDatum reports whether b is exactly one datum of s.
func checkDatum(s avro.Schema, b []byte) error {
	c := checker{buf: b}
	if err := c.check(s, 0); err != nil {
		return err
	}
	if len(c.buf) != 0 {
		return errorf("%d bytes left over after the datum", len(c.buf))
	}
	return nil
}

func (c *checker) check(s avro.Schema, depth int) *datumError {
	if depth > maxDepth {
		return errorf("nested deeper than %d", maxDepth)
	}
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		if len(c.buf) < 1 {
			return errorf("boolean: no byte left")
		}
		if c.buf[0] > 1 {
			return errorf("boolean byte %d is neither 0 nor 1", c.buf[0])
		}
		c.buf = c.buf[1:]
		return nil
	case avro.Int:
		_, err := c.varint(true)
		return err
	case avro.Long:
		_, err := c.varint(false)
		return err
	case avro.Float:
		return c.skip(4, "float")
	case avro.Double:
		return c.skip(8, "double")
	case avro.Bytes:
		_, err := c.lenPrefixed("bytes")
		return err
	case avro.String:
		return c.str()
	case avro.Fixed:
		return c.skip(s.(*avro.FixedSchema).Size(), "fixed")
	case avro.Enum:
		n, err := c.varint(true)
		if err != nil {
			return err
		}
		if syms := s.(*avro.EnumSchema).Symbols(); n < 0 || n >= int64(len(syms)) {
			return errorf("enum index %d, want [0, %d)", n, len(syms))
		}
		return nil
	case avro.Record, avro.Error:
		for _, f := range s.(*avro.RecordSchema).Fields() {
			if err := c.check(f.Type(), depth+1); err != nil {
				return at(err, f.Name())
			}
		}
		return nil
	case avro.Ref:
		return c.check(s.(*avro.RefSchema).Schema(), depth)
	case avro.Union:
		// The branch index is an int (Avro spec; decoders read at most 5
		// bytes), not a long: a longer varint made the checker accept a
		// datum that decoders then misread (FuzzCheckAgreesWithDecoder).
		n, err := c.varint(true)
		if err != nil {
			return err
		}
		types := s.(*avro.UnionSchema).Types()
		if n < 0 || n >= int64(len(types)) {
			return errorf("union branch %d, want [0, %d)", n, len(types))
		}
		return c.check(types[n], depth+1)
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		return c.blocks(depth, func(i int) *datumError {
			if err := c.check(items, depth+1); err != nil {
				return at(err, strconv.Itoa(i))
			}
			return nil
		})
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		return c.blocks(depth, func(i int) *datumError {
			key, err := c.lenPrefixed("map key")
			if err != nil {
				return at(err, strconv.Itoa(i))
			}
			if !utf8.Valid(key) {
				return at(errorf("map key is not UTF-8"), strconv.Itoa(i))
			}
			if err := c.check(values, depth+1); err != nil {
				return at(err, string(key))
			}
			return nil
		})
	}
	return errorf("schema type %s not supported", s.Type())
}

// blocks walks the blocks of an array or map, calling item for each item
// with its index.
func (c *checker) blocks(depth int, item func(i int) *datumError) *datumError {
	for i := 0; ; {
		n, err := c.varint(false)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		size := int64(-1)
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			n = -n
			if size, err = c.varint(false); err != nil {
				return err
			}
			if size < 0 || size > int64(len(c.buf)) {
				return errorf("block of %d bytes, %d left", size, len(c.buf))
			}
		}
		if c.items += int(min(n, maxItems+1)); n > maxItems || c.items > maxItems {
			return errorf("more than %d array items and map entries", maxItems)
		}
		start := len(c.buf)
		for range n {
			if err := item(i); err != nil {
				return err
			}
			i++
		}
		if size >= 0 && int64(start-len(c.buf)) != size {
			return errorf("block says %d bytes, its items take %d", size, start-len(c.buf))
		}
	}
}

// varint reads a zig-zag varint: an int (at most 5 bytes, 32 bits) or a
// long (at most 10 bytes, 64 bits).
func (c *checker) varint(is32 bool) (int64, *datumError) {
	u, n := binary.Uvarint(c.buf)
	kind, bits := "long", 64
	if is32 {
		kind, bits = "int", 32
	}
	switch {
	case n == 0:
		return 0, errorf("%s: no bytes left", kind)
	case n < 0 || (is32 && (n > 5 || u>>32 != 0)):
		return 0, errorf("%s does not fit in %d bits", kind, bits)
	}
	c.buf = c.buf[n:]
	return int64(u>>1) ^ -int64(u&1), nil
}

// skip consumes n bytes of a fixed-size type.
func (c *checker) skip(n int, kind string) *datumError {
	if len(c.buf) < n {
		return errorf("%d bytes of %s, %d left", n, kind, len(c.buf))
	}
	c.buf = c.buf[n:]
	return nil
}

// lenPrefixed consumes a long length and that many bytes.
func (c *checker) lenPrefixed(kind string) ([]byte, *datumError) {
	n, err := c.varint(false)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errorf("%s: negative length %d", kind, n)
	}
	if n > int64(len(c.buf)) {
		return nil, errorf("%d bytes of %s, %d left", n, kind, len(c.buf))
	}
	b := c.buf[:n]
	c.buf = c.buf[n:]
	return b, nil
}

func (c *checker) str() *datumError {
	b, err := c.lenPrefixed("string")
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errorf("string is not UTF-8")
	}
	return nil
}
