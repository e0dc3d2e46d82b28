// Package transport moves Kafka-framed bytes between clients and the
// broker. It owns the TCP and QUIC listeners, reading and writing
// length-prefixed frames, the per-connection pipeline that answers
// pipelined requests in order with backpressure, the node's TLS material
// (its own CA and leaf certificate), and the client-side QUIC dialer that
// gives franz-go's kgo one net.Conn per QUIC stream.
//
// One Kafka connection is a TCP connection or one bidirectional QUIC
// stream of the eddy-kafka/1 ALPN; both are served by the same code and a
// Handler cannot tell them apart except through ConnInfo.
//
// transport has no Kafka semantics: it never decodes a request or response
// (no kmsg), it only frames them. Parsing, routing, errors on the wire,
// authentication beyond TLS and authorization belong to the Handler
// (appliance/broker).
//
// Every goroutine transport starts belongs to a Server or a QUICDialer,
// whose Close stops it and waits for it.
package transport
