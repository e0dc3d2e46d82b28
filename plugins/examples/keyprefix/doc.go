// Command keyprefix is an eddy partitioner plugin: records whose key starts
// with a configured prefix go to that prefix's partition, and all other
// keys are hashed as the Java client's default partitioner does, so
// records keep the partition a Kafka client would have chosen for them.
//
// Build it with plugins/examples/build.sh and bind it to a topic as a
// partitioner.
//
// # Config
//
//	prefixes        required. Comma-separated prefix=partition pairs, e.g.
//	                "eu-=0,us-=1,ap-=2". Spaces around entries are trimmed;
//	                a prefix may not be empty or repeated. The last "=" of
//	                an entry separates the prefix from the partition.
//	null_partition  the partition for records with a null key (default 0).
//
// Unknown keys fail init.
//
// # Behaviour
//
// For each record, in order:
//
//  1. A null key goes to null_partition. (The Java client spreads null
//     keys with its sticky partitioner; a plugin sees one record at a time
//     and keeps it deterministic instead.)
//  2. A key that starts with a configured prefix goes to that prefix's
//     partition; when several prefixes match, the longest wins.
//  3. Any other key, including an empty one, goes to
//     (murmur2(key) & 0x7fffffff) % partitions, as Kafka's
//     BuiltInPartitioner.partitionForKey (Utils.murmur2, Utils.toPositive).
//
// A configured partition that does not exist in the topic (it is >= the
// topic's partition count) fails the whole batch with abi.StatusHandlerError
// rather than sending records somewhere unexpected: fix the config or add
// partitions. Partitioning does not allocate.
package main
