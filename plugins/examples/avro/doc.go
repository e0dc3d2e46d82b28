// Command avro is an eddy validator plugin: it rejects records whose value
// is not exactly one datum in Avro's binary encoding of a configured schema.
//
// Build it with plugins/examples/build.sh and bind it to a topic as a
// validator.
//
// # Config
//
//	schema      required. The writer's Avro schema, as JSON (a record,
//	            or any other schema). Named types may refer to each other;
//	            the schema is parsed and checked at init
//	            (github.com/hamba/avro/v2).
//	framing     "none" (default): the value is the bare Avro datum.
//	            "confluent": the value is Confluent's wire format, a zero
//	            magic byte and a 4-byte big-endian schema ID before the
//	            datum, as written by Confluent serializers.
//	schema_id   with framing "confluent", the only schema ID accepted
//	            (decimal). Unset: any ID, the datum is still checked against
//	            schema.
//	allow_null  "false" to reject records with a null value. Default
//	            "true": a null value is a tombstone on a compacted topic.
//
// Unknown keys fail init.
//
// # Behaviour
//
// The value is walked against the schema as a decoder would, without
// building the decoded value: lengths and counts must fit in the value,
// booleans must be 0 or 1, ints must fit in 32 bits, strings must be UTF-8,
// enum symbols and union branches must exist, array and map block byte
// sizes must match, and the datum must use every byte of the value. The key
// and headers are not looked at. A rejected record reaches the producer as
// INVALID_RECORD with the reason:
//
//	code 1  framing: a null value when allow_null is false, or a missing
//	        Confluent header or wrong schema ID:
//	        "value: schema ID 7, want 12"
//	code 2  the value does not decode with the schema; the reason names
//	        the path of the failing part (record fields, array indexes, map
//	        keys) and what is wrong:
//	        "value: /items/2/price: 5 bytes of double, 3 left"
//
// Checking does not allocate for accepted records. A datum may hold at most
// 1,048,576 array items and map entries in all and nest at most 256 deep.
package main
