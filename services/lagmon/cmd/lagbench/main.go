// Command lagbench measures lagmon's evaluator and HTTP API on loopback:
// how many partitions per second it evaluates (the target is 10,000
// partitions across 1,000 groups every second) and the latency of Burrow's
// status endpoints under concurrent clients (p50, p99).
//
//	go run ./cmd/lagbench [--groups 1000] [--partitions 10] [--duration 3s] [--requests 20000] [--clients 8]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/httpapi"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

func main() {
	groups := flag.Int("groups", 1000, "consumer groups")
	partitions := flag.Int("partitions", 10, "partitions per group (one topic per group)")
	duration := flag.Duration("duration", 3*time.Second, "how long to evaluate")
	requests := flag.Int("requests", 20000, "API requests")
	clients := flag.Int("clients", 8, "concurrent API clients")
	flag.Parse()
	if err := run(*groups, *partitions, *duration, *requests, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "lagbench:", err)
		os.Exit(1)
	}
}

const intervals = 10

// fill builds a store whose every window is full: groups × partitions,
// each partition with a slowly growing lag.
func fill(groups, partitions int, now time.Time) *window.Store {
	store := window.New(window.Config{Intervals: intervals, Now: func() time.Time { return now }}, "bench")
	start := now.Add(-intervals * time.Minute).UnixMilli()
	for g := 0; g < groups; g++ {
		topic := fmt.Sprintf("topic-%04d", g)
		group := fmt.Sprintf("group-%04d", g)
		for i := int64(0); i < intervals; i++ {
			ts := start + i*60_000
			for p := 0; p < partitions; p++ {
				store.AddLogEnd("bench", topic, int32(p), int32(partitions), 1000+i*120, ts)
				store.AddCommit("bench", group, topic, int32(p), 1000+i*100, i, ts)
			}
		}
	}
	return store
}

func run(groups, partitions int, duration time.Duration, requests, clients int) error {
	now := time.Now()
	store := fill(groups, partitions, now)
	names, _ := store.Groups("bench")

	// Evaluation: every group in turn, as the notifiers and /metrics do.
	var evaluated int64
	begin := time.Now()
	for time.Since(begin) < duration {
		for _, g := range names {
			snap, err := store.Group("bench", g)
			if err != nil {
				return err
			}
			st := evaluate.Group(snap, now, evaluate.Config{}, true)
			evaluated += int64(st.TotalPartitions)
		}
	}
	elapsed := time.Since(begin)
	perSec := float64(evaluated) / elapsed.Seconds()
	const target = 10_000.0
	fmt.Printf("evaluate: %d groups x %d partitions, window %d: %.0f partitions/s (%.0f groups/s); target %.0f partitions/s: %.1fx\n",
		groups, partitions, intervals, perSec, perSec/float64(partitions), target, perSec/target)

	// API latency over loopback.
	cfg, err := config.Parse("[cluster.bench]\nservers=[\"127.0.0.1:9092\"]\n")
	if err != nil {
		return err
	}
	api := httpapi.New(httpapi.Options{Store: store, Config: cfg, Now: func() time.Time { return now }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	paths := []string{"/status", "/lag", ""}
	lat := make([]time.Duration, requests)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	begin = time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				url := fmt.Sprintf("%s/v3/kafka/bench/consumer/%s%s", base, names[i%len(names)], paths[i%len(paths)])
				t0 := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					slog.Error("request failed", "url", url, "err", err)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	total := time.Since(begin)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	fmt.Printf("api: %d requests (status, lag, detail of %d-partition groups), %d clients: %.0f req/s, p50 %v, p99 %v, max %v, %d failed\n",
		requests, partitions, clients, float64(requests)/total.Seconds(), q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), failed.Load())
	if failed.Load() > 0 {
		return fmt.Errorf("%d requests failed", failed.Load())
	}
	return nil
}
