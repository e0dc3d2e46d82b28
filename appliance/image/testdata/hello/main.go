// Command hello stands in for eddy as /init in image tests: a static
// binary that builds in a second.
package main

func main() { println("hello") }
