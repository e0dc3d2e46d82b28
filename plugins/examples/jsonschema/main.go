package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Rejection codes.
const (
	codeNotJSON = 1 // the value is not a JSON document
	codeSchema  = 2 // the document fails the schema
)

// schemaURL names the configured schema inside the compiler; it appears in
// nothing the producer sees.
const schemaURL = "https://eddy.invalid/plugins/jsonschema/schema.json"

func init() {
	pdk.OnInit(configure)
	pdk.OnValidate(validate)
}

func main() {}

// The plugin's state, set by configure.
var (
	schema    *jsonschema.Schema
	allowNull bool
	printer   = message.NewPrinter(language.English)
	reader    bytes.Reader // reused for every value
)

func configure(c pdk.Config) error {
	if err := c.CheckKeys("schema", "assert_format", "allow_null"); err != nil {
		return err
	}
	src, err := c.Required("schema")
	if err != nil {
		return err
	}
	assertFormat, err := boolOption(c, "assert_format", false)
	if err != nil {
		return err
	}
	if allowNull, err = boolOption(c, "allow_null", true); err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	if err != nil {
		return fmt.Errorf("config: schema: not JSON: %v", err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.UseLoader(noLoader{})
	if assertFormat {
		comp.AssertFormat()
	}
	if err := comp.AddResource(schemaURL, doc); err != nil {
		return fmt.Errorf("config: schema: %v", err)
	}
	if schema, err = comp.Compile(schemaURL); err != nil {
		return fmt.Errorf("config: schema: %v", err)
	}
	return nil
}

// boolOption reads an optional "true"/"false" key.
func boolOption(c pdk.Config, key string, def bool) (bool, error) {
	switch v, ok := c[key]; {
	case !ok || v == "":
		return def, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, fmt.Errorf("config: %q must be true or false, not %q", key, v)
	}
}

// noLoader refuses references outside the schema document: a plugin has
// no file system or network to load them from.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("cannot load %s: references must stay inside the schema (use $defs)", url)
}

func validate(r pdk.Record) pdk.Verdict {
	if r.Value == nil {
		if allowNull {
			return pdk.Accept()
		}
		return pdk.Reject(codeNotJSON, "value: null (a tombstone), and allow_null is false")
	}
	reader.Reset(r.Value)
	doc, err := jsonschema.UnmarshalJSON(&reader)
	if err != nil {
		return pdk.Reject(codeNotJSON, notJSON(err))
	}
	if err := schema.Validate(doc); err != nil {
		return pdk.Reject(codeSchema, violation(err))
	}
	return pdk.Accept()
}

// notJSON words a parse error.
func notJSON(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("value: not JSON: %v (at offset %d)", err, se.Offset-1)
	}
	return "value: not JSON: " + err.Error()
}

// violation words a validation error after its first leaf: the JSON
// pointer of the failing value and what failed there.
func violation(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "value: " + err.Error()
	}
	first := ve
	for len(first.Causes) > 0 {
		first = first.Causes[0]
	}
	var b strings.Builder
	b.WriteString("value: ")
	for _, tok := range first.InstanceLocation {
		b.WriteByte('/')
		b.WriteString(escapePointer(tok))
	}
	if len(first.InstanceLocation) > 0 {
		b.WriteString(": ")
	}
	b.WriteString(first.ErrorKind.LocalizedString(printer))
	if more := leaves(ve) - 1; more > 0 {
		fmt.Fprintf(&b, " (and %d more)", more)
	}
	return b.String()
}

func leaves(e *jsonschema.ValidationError) int {
	if len(e.Causes) == 0 {
		return 1
	}
	n := 0
	for _, c := range e.Causes {
		n += leaves(c)
	}
	return n
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(tok string) string {
	if !strings.ContainsAny(tok, "~/") {
		return tok
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}
