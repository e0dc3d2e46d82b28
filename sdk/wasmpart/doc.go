// Package wasmpart places records with a topic's partitioner plugin, as
// the brokers run it, so every eddy producer puts a key in the same
// partition (and passes eddy.partitioner.enforce=reject). It is a
// kgo.Partitioner: topics without a partitioner plugin, and topics not
// prepared, are placed as kgo places them by default (murmur2 of the key,
// as the Java client does).
package wasmpart
