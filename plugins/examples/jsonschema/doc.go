// Command jsonschema is an eddy validator plugin: it rejects records whose
// value is not a JSON document that satisfies a JSON Schema.
//
// Build it with plugins/examples/build.sh (or: GOOS=wasip1 GOARCH=wasm go
// build -buildmode=c-shared -trimpath -o jsonschema.wasm .) and bind it to a
// topic as a validator.
//
// # Config
//
//	schema         required. The JSON Schema document. Its "$schema" picks
//	               the draft (4, 6, 7, 2019-09, 2020-12); without one,
//	               2020-12. References must stay inside the document
//	               ("#/$defs/..."): the plugin loads nothing from outside.
//	assert_format  "true" to enforce "format" (email, date-time, uuid, ...).
//	               Default "false": format is an annotation, as 2020-12 says.
//	allow_null     "false" to reject records with a null value. Default
//	               "true": a null value is a tombstone (a delete on a
//	               compacted topic) and has no document to validate.
//
// Unknown keys fail init, so a misspelt option is not silently ignored.
//
// # Behaviour
//
// Each record's value is parsed as one JSON document (numbers keep their
// exact decimal form) and validated. The key and headers are not looked at.
// A rejected record reaches the producer as INVALID_RECORD with the reason:
//
//	code 1  the value is not JSON, or is null when allow_null is false:
//	        "value: not JSON: invalid character 'x' looking for beginning of value (at offset 0)"
//	code 2  the document fails the schema; the reason names the JSON
//	        pointer of the first failing value and the failed keyword:
//	        "value: /price: minimum: got -1, want 0"
//	        and how many other failures there were: "(and 2 more)".
//
// Parsing a document allocates in proportion to its size; the schema is
// compiled once per module instance, at init.
package main
