//go:build race

package pluginstest

// raceEnabled: wazero compiles a multi-megabyte Go module in seconds, but
// ten times slower under the race detector.
const raceEnabled = true
