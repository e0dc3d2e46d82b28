// Command ttl is an eddy retention plugin: it lets records expire a time to
// live after their timestamp, the TTL being set per record by a header.
//
// Build it with plugins/examples/build.sh and bind it to a topic as a
// retention policy. The host deletes a segment only when every record in it
// and in every older segment has expired, so a long-lived record holds back
// the deletion of the records after it.
//
// # Config
//
//	header       the header that carries a record's TTL (default "ttl").
//	default_ttl  the TTL of records without the header, in the same forms
//	             as the header. Unset: such records never expire.
//
// Unknown keys fail init.
//
// # Behaviour
//
// A TTL is either a Go duration ("30s", "1h30m", "250ms") or a whole number
// of milliseconds ("60000"); it may not be negative. A record has expired
// when its timestamp is not negative and now - timestamp >= TTL (so a TTL
// of 0 expires at once). If the header repeats, the last one counts. A
// header value that is not a valid TTL counts as absent (default_ttl
// applies) and is logged once per module instance at warn level. Records
// with a negative timestamp (unknown) never expire.
//
// Deciding does not allocate once a TTL value has been seen: parsed values
// are cached (up to 4096 distinct ones).
package main
