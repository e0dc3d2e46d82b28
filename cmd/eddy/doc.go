// Command eddy is the eddy broker and its command-line tools: serve runs a
// node; topic, produce and consume are clients. The command tree lives in
// internal/cli so it can be tested without a terminal; this main only
// wires the process's signals and standard streams to it.
package main
