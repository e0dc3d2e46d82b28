// Package partlogtest builds Kafka RecordBatch v2 bytes for tests, the way
// Kafka clients encode them. It does not import partlog, so partlog's own
// tests can use it too.
package partlogtest
