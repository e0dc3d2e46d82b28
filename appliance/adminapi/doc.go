// Package adminapi is the node's admin HTTP API under /v1: cluster
// membership and state for the `eddy cluster` commands and for other nodes.
// When the node has an admin token, every /v1 request must carry it as a
// bearer token. Health and metrics live in package status.
package adminapi
