package txnlog

import (
	"fmt"
	"testing"
)

// BenchmarkAppendSync measures group commit: a batch of 150-byte records,
// then one Sync (a real fdatasync), as the committer does.
func BenchmarkAppendSync(b *testing.B) {
	for _, batch := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchAppend(b, batch, false)
		})
	}
}

// BenchmarkAppendNoSync isolates the cost of framing and buffering.
func BenchmarkAppendNoSync(b *testing.B) {
	benchAppend(b, 64, true)
}

func benchAppend(b *testing.B, batch int, noSync bool) {
	opts := DefaultOptions(b.TempDir())
	opts.NoSync = noSync
	l, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, 150)
	for i := range payload {
		payload[i] = byte(i)
	}
	b.SetBytes(int64(batch * len(payload)))
	b.ReportAllocs()
	z := int64(0)
	for b.Loop() {
		for range batch {
			z++
			if err := l.Append(z, payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(z)/b.Elapsed().Seconds(), "records/s")
}
