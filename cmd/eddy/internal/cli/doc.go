// Package cli is the eddy command tree (cobra): serve, topic, produce,
// consume. Run takes its arguments and standard streams as parameters so
// every command can be driven from tests without a terminal.
package cli
