package transport

import "errors"

// ErrCloseAfterResponse, returned by a Responder together with a non-nil
// payload, writes that payload and then closes the connection gracefully:
// the answer to a failed authentication, which Kafka clients read before
// they see the connection end. Requests read after it are not answered.
var ErrCloseAfterResponse = errors.New("transport: connection closed after its last response")
