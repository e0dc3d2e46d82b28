package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// A Target is a broker the harness can start fresh for every run.
type Target interface {
	Name() string
	// Describe says what the target is, for reports.
	Describe() string
	// Start starts the broker (w.Nodes() nodes) with its data under dir.
	Start(ctx context.Context, w Workload, dir string) (Instance, error)
}

// An Instance is a running broker of one run.
type Instance interface {
	// CreateTopic creates the workload's topic (eddy) or streams (NATS).
	CreateTopic(ctx context.Context, name string, partitions, replication int) error
	NewProducer(ctx context.Context, w Workload, topic string) (Producer, error)
	// NewConsumer returns consumer index of n, reading its share of the
	// partitions from the beginning.
	NewConsumer(ctx context.Context, w Workload, topic string, index, n int) (Consumer, error)
	Close() error
}

// A Producer sends records. Send does not block on the broker: done is
// called once when the record is acknowledged or failed. The runner
// bounds the records in flight.
type Producer interface {
	Send(ctx context.Context, key, value []byte, done func(error)) error
	// Flush waits until every record sent so far is done.
	Flush(ctx context.Context) error
	Close()
}

// A Consumer reads its partitions from the beginning and calls fn with
// each record's value until ctx ends or fn returns false.
type Consumer interface {
	Run(ctx context.Context, fn func(value []byte) bool) error
	Close()
}

var targets = map[string]Target{}

func register(t Target) { targets[t.Name()] = t }

// TargetNames lists the targets, eddy's first.
func TargetNames() []string {
	var names []string
	for n := range targets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ei, ej := strings.HasPrefix(names[i], "eddy"), strings.HasPrefix(names[j], "eddy")
		if ei != ej {
			return ei
		}
		return names[i] < names[j]
	})
	return names
}

// LookupTarget returns the target called name.
func LookupTarget(name string) (Target, error) {
	if t, ok := targets[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("unknown target %q: use %s", name, strings.Join(TargetNames(), ", "))
}

// DefaultTargets run when neither the command line nor the workload
// names any: eddy over both transports and NATS with the like-for-like
// durability (fsync before ack).
var DefaultTargets = []string{"eddy-quic", "eddy-tcp", "nats"}
