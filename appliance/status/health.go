package status

import (
	"fmt"
	"net/http"
)

// Checker reports whether a node is ready to serve clients: nil when it is,
// otherwise why not.
type Checker func() error

// Register adds /healthz (the process is alive and serving HTTP), /readyz
// (the node can serve Kafka requests, per ready) and /metrics to mux.
func Register(mux *http.ServeMux, m *Metrics, ready Checker) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", m.Handler())
}
