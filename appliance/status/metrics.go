package status

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a node's Prometheus metrics. All fields are safe for
// concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts Kafka requests by API name.
	Requests *prometheus.CounterVec
	// RequestErrors counts per-partition or per-request Kafka error codes
	// returned, by API and error name.
	RequestErrors *prometheus.CounterVec
	// RequestSeconds is the time from reading a request to its response
	// being ready, by API.
	RequestSeconds *prometheus.HistogramVec

	ProduceBytes   prometheus.Counter
	ProduceRecords prometheus.Counter
	ProduceBatches prometheus.Counter
	FetchBytes     prometheus.Counter

	// LeaderChanges counts leader changes this node observed.
	LeaderChanges prometheus.Counter

	// LimitsExceeded counts the times a client ran into one of the node's
	// limits (the limits section of its config), by limit.
	LimitsExceeded *prometheus.CounterVec
}

// NewMetrics creates the metrics on a fresh registry with Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Name: "kafka_requests_total", Help: "Kafka requests served, by API.",
		}, []string{"api"}),
		RequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Name: "kafka_request_errors_total", Help: "Kafka error codes returned, by API and error.",
		}, []string{"api", "error"}),
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "eddy", Name: "kafka_request_seconds", Help: "Time to serve a Kafka request, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100 µs … 13 s
		}, []string{"api"}),
		ProduceBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Name: "produce_bytes_total", Help: "Record batch bytes acknowledged to producers.",
		}),
		ProduceRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Name: "produce_records_total", Help: "Records acknowledged to producers.",
		}),
		ProduceBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Name: "produce_batches_total", Help: "Record batches acknowledged to producers.",
		}),
		FetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Name: "fetch_bytes_total", Help: "Record batch bytes returned to consumers.",
		}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Name: "raft_leader_changes_total", Help: "Raft leader changes observed by this node, over all shards.",
		}),
		LimitsExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Name: "limits_exceeded_total", Help: "Requests refused or connections closed because a client ran into a limit, by limit.",
		}, []string{"limit"}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Requests, m.RequestErrors, m.RequestSeconds,
		m.ProduceBytes, m.ProduceRecords, m.ProduceBatches, m.FetchBytes,
		m.LeaderChanges, m.LimitsExceeded,
	)
	return m
}

// RegisterGauge adds a gauge whose value is read at scrape time.
func (m *Metrics) RegisterGauge(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "eddy", Name: name, Help: help}, f))
}

// RegisterCounter adds a counter whose value is read at scrape time.
func (m *Metrics) RegisterCounter(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "eddy", Name: name, Help: help}, f))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
