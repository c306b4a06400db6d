// Command serdebench measures serializer throughput for each built-in
// format, linked in-process and as a plugin process, across batch sizes,
// and prints the plugin process's throughput as a ratio of the in-process
// one. `make bench` runs it with the binaries of `make build`.
//
// Both sides run with their defaults: this process with Go's GOGC of 100,
// a plugin process with the GOGC of 400 that serde.Serve sets when the
// environment gives none.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/runnel-io/runnel/plugins/serde/builtin"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// format is one serializer under test with a typical value.
type format struct {
	name  string
	cfg   serde.Config
	value string
}

var formats = []format{
	{name: "json", value: `{"id":123456,"name":"user-123456","email":"user@example.com","score":1.5,"tags":["a","b","c"]}`},
	{name: "tsv", cfg: serde.Config{Options: map[string]string{"columns": "id:int,name,email,score:float,tags:json"}},
		value: `{"id":123456,"name":"user-123456","email":"user@example.com","score":1.5,"tags":["a","b","c"]}`},
	{name: "avro", cfg: serde.Config{Schema: []byte(`{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":["null","string"]},{"name":"score","type":"double"},{"name":"tags","type":{"type":"array","items":"string"}}]}`)},
		value: `{"id":123456,"name":"user-123456","email":"user@example.com","score":1.5,"tags":["a","b","c"]}`},
}

var batchSizes = []int{1, 16, 256, 4096}

// open returns the serializer in-process or as a process from dir.
func open(f format, process bool, dir string) (serde.Serde, error) {
	l := &serde.Loader{Builtins: builtin.Plugins(), Mode: serde.PreferBuiltin, Logger: hclog.NewNullLogger()}
	if process {
		l.Mode = serde.ProcessOnly
		l.Search = plugin.Search{Path: []string{dir}, Executable: "/nonexistent"}
	}
	return l.Open(context.Background(), f.name, f.cfg)
}

// benchEncode encodes batches of n copies of the format's value; b.N
// counts values, so ns/op is per value.
func benchEncode(s serde.Serde, f format, n int) func(b *testing.B) {
	return func(b *testing.B) {
		batch := make([][]byte, n)
		for i := range batch {
			batch[i] = []byte(f.value)
		}
		ctx := context.Background()
		b.SetBytes(int64(len(f.value)))
		b.ResetTimer()
		for done := 0; done < b.N; done += n {
			if _, err := s.Encode(ctx, batch[:min(n, b.N-done)]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func main() {
	dir := flag.String("plugins", filepath.Join("..", "bin", "plugins"), "folder holding runnel-serde-* binaries (make build puts them in bin/plugins)")
	rounds := flag.Int("rounds", 3, "measurements of each, in alternating order; the medians are compared")
	flag.Parse()
	fmt.Printf("encode throughput of a 94-byte JSON value (canonical form), median of %d rounds:\n", *rounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "format\tbatch\tin-process values/s\tplugin process values/s\tprocess/in-process\t")
	for _, f := range formats {
		in, err := open(f, false, *dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "serdebench:", err)
			os.Exit(1)
		}
		proc, err := open(f, true, *dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "serdebench:", err, "(run make build first)")
			os.Exit(1)
		}
		for _, n := range batchSizes {
			var ra, rp []float64
			for i := range *rounds {
				// Alternate which goes first, so neither always runs on
				// a warmer (or more loaded) machine.
				if i%2 == 0 {
					ra = append(ra, rate(testing.Benchmark(benchEncode(in, f, n))))
					rp = append(rp, rate(testing.Benchmark(benchEncode(proc, f, n))))
				} else {
					rp = append(rp, rate(testing.Benchmark(benchEncode(proc, f, n))))
					ra = append(ra, rate(testing.Benchmark(benchEncode(in, f, n))))
				}
			}
			a, p := median(ra), median(rp)
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.0f\t%.3f\t\n", f.name, n, a, p, p/a)
		}
		in.Close()
		proc.Close()
	}
	w.Flush()
}

func rate(r testing.BenchmarkResult) float64 {
	if r.T <= 0 {
		return 0
	}
	return float64(r.N) / r.T.Seconds()
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
