package main

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk/pdktest"
)

const orderSchema = `{
	"type": "object",
	"required": ["id", "price"],
	"properties": {
		"id": {"type": "string", "minLength": 1},
		"price": {"type": "number", "minimum": 0},
		"email": {"type": "string", "format": "email"},
		"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}
	},
	"$defs": {"item": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}}
}`

func TestValidate(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema})
	for _, tc := range []struct {
		name   string
		value  []byte
		code   uint32 // 0: accept
		reason string // substring
	}{
		{"valid", []byte(`{"id": "a1", "price": 12.5}`), 0, ""},
		{"tombstone", nil, 0, ""},
		{"big exact number", []byte(`{"id": "a1", "price": 123456789012345678901234567890}`), 0, ""},
		{"format is an annotation", []byte(`{"id": "a1", "price": 1, "email": "nope"}`), 0, ""},
		{"negative price", []byte(`{"id": "a1", "price": -1}`), codeSchema, "value: /price: minimum: got -1, want 0"},
		{"missing property", []byte(`{"id": "a1"}`), codeSchema, "value: missing property 'price'"},
		{"nested via ref", []byte(`{"id": "a1", "price": 1, "items": [{"sku": "x"}, {}]}`), codeSchema, "value: /items/1: missing property 'sku'"},
		{"several failures", []byte(`{"id": "", "price": -1}`), codeSchema, "(and 1 more)"},
		{"wrong type", []byte(`[1, 2]`), codeSchema, "value: got array, want object"},
		{"not json", []byte(`{"id": `), codeNotJSON, "value: not JSON: unexpected EOF"},
		{"syntax error", []byte(`{"id" "a1"}`), codeNotJSON, "(at offset 6)"},
		{"trailing data", []byte(`{"id": "a1", "price": 1} {}`), codeNotJSON, "after top-level value"},
		{"empty", []byte{}, codeNotJSON, "value: not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pdktest.Validate(t, abi.Record{Value: tc.value})[0]
			if tc.code == 0 {
				if got.Reject {
					t.Fatalf("rejected (%d %q), want accept", got.Code, got.Reason)
				}
				return
			}
			if !got.Reject || got.Code != tc.code || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("got %+v, want reject code %d with %q", got, tc.code, tc.reason)
			}
		})
	}
}

func TestBatchKeepsOrder(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema})
	got := pdktest.Validate(t,
		pdktest.Value(`{"id": "a", "price": 1}`),
		pdktest.Value(`oops`),
		pdktest.Value(`{"id": "b", "price": 2}`),
		pdktest.Value(`{"id": "c", "price": -2}`),
	)
	want := []uint32{0, codeNotJSON, 0, codeSchema}
	for i, w := range want {
		if got[i].Reject != (w != 0) || got[i].Code != w {
			t.Errorf("record %d: got %+v, want code %d", i, got[i], w)
		}
	}
}

func TestOptions(t *testing.T) {
	pdktest.Init(t, map[string]string{"schema": orderSchema, "assert_format": "true", "allow_null": "false"})
	got := pdktest.Validate(t, pdktest.Value(`{"id": "a1", "price": 1, "email": "nope"}`), abi.Record{})
	if !got[0].Reject || got[0].Code != codeSchema || !strings.Contains(got[0].Reason, "/email") {
		t.Errorf("bad email: got %+v, want a schema rejection at /email", got[0])
	}
	if !got[1].Reject || got[1].Code != codeNotJSON {
		t.Errorf("null value: got %+v, want a code %d rejection", got[1], codeNotJSON)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"no schema", map[string]string{}, `"schema" is required`},
		{"schema not json", map[string]string{"schema": `{`}, "schema: not JSON"},
		{"schema invalid", map[string]string{"schema": `{"type": 5}`}, "schema"},
		{"external ref", map[string]string{"schema": `{"$ref": "other.json"}`}, "references must stay inside the schema"},
		{"unknown key", map[string]string{"schema": `{}`, "shcema": `{}`}, `unknown key "shcema"`},
		{"bad bool", map[string]string{"schema": `{}`, "allow_null": "yes"}, `"allow_null" must be true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pdktest.TryInit(tc.cfg)
			if pdktest.StatusOf(err) != abi.StatusInitFailed || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want init failed with %q", err, tc.want)
			}
		})
	}
}
