package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// BenchmarkEncode is the same measurement for `go test -bench`: every
// format, in-process and as a process, per batch size.
func BenchmarkEncode(b *testing.B) {
	dir := b.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "../runnel-serde-json", "../runnel-serde-tsv", "../runnel-serde-avro")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatal(err)
	}
	for _, f := range formats {
		for _, process := range []bool{false, true} {
			s, err := open(f, process, dir)
			if err != nil {
				b.Fatal(err)
			}
			mode := "in-process"
			if process {
				mode = "process"
			}
			for _, n := range batchSizes {
				b.Run(fmt.Sprintf("%s/%s/batch=%d", f.name, mode, n), benchEncode(s, f, n))
			}
			s.Close()
		}
	}
}
