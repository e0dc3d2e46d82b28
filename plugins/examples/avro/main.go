package main

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/hamba/avro/v2"
)

// Rejection codes.
const (
	codeFraming = 1 // null value or bad Confluent header
	codeDatum   = 2 // the datum does not decode with the schema
)

func init() {
	pdk.OnInit(configure)
	pdk.OnValidate(validate)
}

func main() {}

// The plugin's state, set by configure.
var (
	schema    avro.Schema
	confluent bool
	wantID    int64 = -1 // -1: any schema ID
	allowNull bool
)

func configure(c pdk.Config) error {
	if err := c.CheckKeys("schema", "framing", "schema_id", "allow_null"); err != nil {
		return err
	}
	src, err := c.Required("schema")
	if err != nil {
		return err
	}
	if schema, err = avro.ParseWithCache(src, "", &avro.SchemaCache{}); err != nil {
		return fmt.Errorf("config: schema: %v", err)
	}
	switch f := c["framing"]; f {
	case "", "none":
		confluent = false
	case "confluent":
		confluent = true
	default:
		return fmt.Errorf("config: framing must be none or confluent, not %q", f)
	}
	wantID = -1
	if id, ok := c["schema_id"]; ok && id != "" {
		if !confluent {
			return fmt.Errorf("config: schema_id needs framing confluent")
		}
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return fmt.Errorf("config: schema_id %q is not a 32-bit unsigned number", id)
		}
		wantID = int64(n)
	}
	switch v := c["allow_null"]; v {
	case "", "true":
		allowNull = true
	case "false":
		allowNull = false
	default:
		return fmt.Errorf("config: allow_null must be true or false, not %q", v)
	}
	return nil
}

func validate(r pdk.Record) pdk.Verdict {
	v := r.Value
	if v == nil {
		if allowNull {
			return pdk.Accept()
		}
		return pdk.Reject(codeFraming, "value: null (a tombstone), and allow_null is false")
	}
	if confluent {
		if len(v) < 5 || v[0] != 0 {
			return pdk.Reject(codeFraming, "value: no Confluent header (magic byte 0 and a 4-byte schema ID)")
		}
		if id := int64(binary.BigEndian.Uint32(v[1:])); wantID >= 0 && id != wantID {
			return pdk.Reject(codeFraming, fmt.Sprintf("value: schema ID %d, want %d", id, wantID))
		}
		v = v[5:]
	}
	if err := checkDatum(schema, v); err != nil {
		return pdk.Reject(codeDatum, "value: "+err.Error())
	}
	return pdk.Accept()
}
