package main

import (
	"fmt"
	"io"
	"time"
)

// writeTable prints one system's results as a Markdown table.
func writeTable(w io.Writer, res []PhaseResult) {
	fmt.Fprintln(w, "| phase | ops | ops/s | p50 | p99 | errors |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range res {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %d |\n", r.Name, r.Ops, r.Rate(), ms(r.P50), ms(r.P99), r.Errors)
	}
}

// writeComparison prints both systems side by side with the
// Runnel/ZooKeeper throughput ratio of each phase.
func writeComparison(w io.Writer, zookeeper, runnel []PhaseResult) {
	fmt.Fprintln(w, "| phase | ZooKeeper ops/s | p50 | p99 | Runnel ops/s | p50 | p99 | Runnel/ZooKeeper |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i := range min(len(zookeeper), len(runnel)) {
		z, r := zookeeper[i], runnel[i]
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.0f | %s | %s | %s |\n", z.Name,
			z.Rate(), ms(z.P50), ms(z.P99), r.Rate(), ms(r.P50), ms(r.P99), ratio(r.Rate(), z.Rate()))
	}
	var errs []string
	for _, set := range [][]PhaseResult{zookeeper, runnel} {
		for _, r := range set {
			if r.Errors > 0 {
				errs = append(errs, fmt.Sprintf("%s: %d errors", r.Name, r.Errors))
			}
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nerrors: %v\n", errs)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// ms formats a latency in milliseconds with enough digits for
// sub-millisecond values.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
