// Command eddy-chaos runs the chaos schedule of package chaos against the
// eddy binary it is given and prints what it found: `make chaos` runs it
// for ten minutes with every fault kind.
package main
