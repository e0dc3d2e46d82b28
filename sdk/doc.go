// Package sdk is eddy's Go client. Dial returns a Client that speaks the
// Kafka protocol over QUIC (one QUIC connection per broker, one stream per
// Kafka connection) or, on request, over TCP. Underneath is franz-go's kgo,
// exposed by Client.Kgo for anything the helpers here do not cover:
// batching, compression, partitioners, retries and consumer options are
// all kgo's.
//
// The SDK imports only package transport from eddy, never the server.
package sdk
