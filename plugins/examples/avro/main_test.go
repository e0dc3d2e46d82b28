package main

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk/pdktest"
	"github.com/hamba/avro/v2"
)

const orderSchema = `{
	"type": "record", "name": "Order", "namespace": "shop",
	"fields": [
		{"name": "id", "type": "string"},
		{"name": "qty", "type": "int"},
		{"name": "total", "type": "double"},
		{"name": "paid", "type": "boolean"},
		{"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
		{"name": "note", "type": ["null", "string"], "default": null},
		{"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
		{"name": "raw", "type": "bytes"},
		{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
		{"name": "items", "type": {"type": "array", "items": {
			"type": "record", "name": "Item",
			"fields": [{"name": "sku", "type": "string"}, {"name": "price", "type": "float"}]}}},
		{"name": "tags", "type": {"type": "map", "values": "long"}},
		{"name": "gift", "type": ["null", "Item"]}
	]
}`

type item struct {
	SKU   string  `avro:"sku"`
	Price float32 `avro:"price"`
}

type order struct {
	ID     string           `avro:"id"`
	Qty    int32            `avro:"qty"`
	Total  float64          `avro:"total"`
	Paid   bool             `avro:"paid"`
	Status string           `avro:"status"`
	Note   *string          `avro:"note"`
	Hash   [4]byte          `avro:"hash"`
	Raw    []byte           `avro:"raw"`
	At     int64            `avro:"at"`
	Items  []item           `avro:"items"`
	Tags   map[string]int64 `avro:"tags"`
	Gift   *item            `avro:"gift"`
}

func sample() order {
	note := "leave at door"
	return order{
		ID: "o-1", Qty: -3, Total: 12.5, Paid: true, Status: "PAID", Note: &note,
		Hash: [4]byte{1, 2, 3, 4}, Raw: []byte{0, 255}, At: 1700000000000,
		Items: []item{{"a", 1}, {"b", 2.5}, {"c", 0}},
		Tags:  map[string]int64{"x": 1, "y": -1},
		Gift:  &item{"g", 0},
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(orderSchema), v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAccepts(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema})
	empty := order{Status: "NEW"}
	got := pdktest.Validate(t,
		abi.Record{Value: encode(t, sample())},
		abi.Record{Value: encode(t, empty)},
		abi.Record{}, // tombstone
	)
	for i, v := range got {
		if v.Reject {
			t.Errorf("record %d rejected: %q", i, v.Reason)
		}
	}
}

// TestEveryPrefixAndSuffix: Avro's binary encoding is self-delimiting, so
// every strict prefix of a datum, and the datum with a byte appended, must
// be rejected.
func TestEveryPrefixAndSuffix(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema})
	full := encode(t, sample())
	recs := []abi.Record{{Value: append(append([]byte{}, full...), 0)}}
	for n := range len(full) {
		recs = append(recs, abi.Record{Value: full[:n:n]})
	}
	for i, v := range pdktest.Validate(t, recs...) {
		if !v.Reject || v.Code != codeDatum {
			t.Errorf("case %d (%d bytes): got %+v, want a code %d rejection", i, len(recs[i].Value), v, codeDatum)
		}
	}
}

func TestReasons(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema})
	full := encode(t, sample())
	// Offsets into full: id (1 length byte + 3), qty, total, paid, ...
	paidAt := 1 + 3 + 1 + 8
	badBool := append([]byte{}, full...)
	badBool[paidAt] = 2
	badEnum := append([]byte{}, full...)
	badEnum[paidAt+1] = 6 // zig-zag 3: a fourth symbol
	badUTF8 := append([]byte{}, full...)
	badUTF8[1] = 0xff
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"bad boolean", badBool, "value: /paid: boolean byte 2 is neither 0 nor 1"},
		{"bad enum", badEnum, "value: /status: enum index 3, want [0, 3)"},
		{"bad utf8", badUTF8, "value: /id: string is not UTF-8"},
		{"truncated item", full[:len(full)-20], "value: /"},
		{"empty", []byte{}, "value: /id: long: no bytes left"},
		{"leftover", append(append([]byte{}, full...), 1, 2), "value: 2 bytes left over after the datum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pdktest.Validate(t, abi.Record{Value: tc.value})[0]
			if !got.Reject || got.Code != codeDatum || !strings.HasPrefix(got.Reason, tc.want) {
				t.Fatalf("got %+v, want a code %d rejection starting %q", got, codeDatum, tc.want)
			}
		})
	}
}

func TestPrimitivesAndLimits(t *testing.T) {
	for _, tc := range []struct {
		schema string
		value  []byte
		want   string // "" accept
	}{
		{`"int"`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, ""},                 // max int32
		{`"int"`, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, "int does not fit"}, // 2^32
		{`"int"`, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, "int does not fit"},
		{`"long"`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ""},
		{`"long"`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, "long does not fit"},
		{`"null"`, []byte{}, ""},
		{`"bytes"`, []byte{0x01}, "bytes: negative length -1"},
		{`{"type": "array", "items": "int"}`, []byte{0x03, 0x04, 0x02, 0x04, 0x00}, ""},                         // count -2, size 2
		{`{"type": "array", "items": "int"}`, []byte{0x03, 0x06, 0x02, 0x04, 0x06, 0x00}, "block says 3 bytes"}, // count -2, size 3
		{`{"type": "array", "items": "null"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00}, "more than 1048576"},
		{`["null", "int"]`, []byte{0x04}, "union branch 2, want [0, 2)"},
		{`{"type": "map", "values": "int"}`, []byte{0x02, 0x02, 'k', 0x04, 0x02, 0x02, 'k', 0x80, 0x80, 0x80, 0x80, 0x20}, "value: /k: int does not fit"},
		{`{"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}`, []byte{0x02, 0x02, 0x00}, ""},
		{`{"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}`, []byte(strings.Repeat("\x02", 300) + "\x00"), "nested deeper than 256"},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			pdktest.Init(t, map[string]string{"schema": tc.schema})
			got := pdktest.Validate(t, abi.Record{Value: tc.value})[0]
			if tc.want == "" {
				if got.Reject {
					t.Fatalf("rejected: %q", got.Reason)
				}
				return
			}
			if !got.Reject || !strings.Contains(got.Reason, tc.want) {
				t.Fatalf("got %+v, want a rejection with %q", got, tc.want)
			}
		})
	}
}

func TestConfluentFraming(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema, "framing": "confluent", "schema_id": "12", "allow_null": "false"})
	framed := func(id uint32, v []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{0}, id), v...)
	}
	datum := encode(t, sample())
	got := pdktest.Validate(t,
		abi.Record{Value: framed(12, datum)},
		abi.Record{Value: framed(7, datum)},
		abi.Record{Value: datum},
		abi.Record{},
		abi.Record{Value: framed(12, datum[:10])},
	)
	want := []struct {
		code   uint32
		reason string
	}{{0, ""}, {codeFraming, "value: schema ID 7, want 12"}, {codeFraming, "no Confluent header"}, {codeFraming, "null"}, {codeDatum, "value: /"}}
	for i, w := range want {
		if got[i].Code != w.code || got[i].Reject != (w.code != 0) || !strings.Contains(got[i].Reason, w.reason) {
			t.Errorf("record %d: got %+v, want code %d with %q", i, got[i], w.code, w.reason)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{}, `"schema" is required`},
		{map[string]string{"schema": `{"type": "record"}`}, "config: schema:"},
		{map[string]string{"schema": `"int"`, "framing": "magic"}, "framing must be none or confluent"},
		{map[string]string{"schema": `"int"`, "schema_id": "3"}, "schema_id needs framing confluent"},
		{map[string]string{"schema": `"int"`, "framing": "confluent", "schema_id": "-3"}, "not a 32-bit unsigned number"},
		{map[string]string{"schema": `"int"`, "allow_null": "no"}, "allow_null must be true or false"},
		{map[string]string{"schema": `"int"`, "scheme": "x"}, `unknown key "scheme"`},
	} {
		err := pdktest.TryInit(tc.cfg)
		if pdktest.StatusOf(err) != abi.StatusInitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want init failed with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	s := avro.MustParse(orderSchema)
	datum := encode(t, sample())
	if n := testing.AllocsPerRun(100, func() {
		if err := checkDatum(s, datum); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per datum, want 0", n)
	}
}

// FuzzCheckAgreesWithDecoder: whatever the checker accepts, hamba/avro's
// decoder decodes.
func FuzzCheckAgreesWithDecoder(f *testing.F) {
	s := avro.MustParse(orderSchema)
	full, err := avro.Marshal(s, sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkDatum(s, b) != nil {
			return
		}
		var v any
		if err := avro.Unmarshal(s, b, &v); err != nil {
			t.Fatalf("checker accepted %x, decoder says %v", b, err)
		}
	})
}
