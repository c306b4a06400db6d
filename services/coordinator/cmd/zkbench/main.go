// Command zkbench measures a ZooKeeper-compatible server: many sessions in
// parallel, 100-byte znodes, and separate create, get, set and delete
// phases, each reporting operations per second and the 50th and 99th
// percentile latencies.
//
//	zkbench --target 127.0.0.1:2181            # a running server
//	zkbench --compare                           # Apache ZooKeeper vs Runnel, standalone
//	zkbench --compare --ensemble 3              # the same with 3-member ensembles
//
// With --compare, zkbench starts Apache ZooKeeper and Runnel's coordinator
// itself (one after the other, so they never compete for the CPU), runs
// the same load on both and prints the Runnel/ZooKeeper ratio per phase.
// The output is a Markdown table, ready for BENCHMARKS.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
