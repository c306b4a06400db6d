// Command runnel-storage-memory is the in-memory storage backend (package
// plugins/storage/memory) as a plugin process. Its data lives as long as
// the process: a restart after a crash starts every partition empty.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/runnel-io/runnel/internal/telemetry"
	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Plugin is the memory backend as a storage plugin.
var Plugin = storage.Plugin{
	Info: plugin.Description{
		Name:    "memory",
		Version: Version,
		Summary: "partition logs in memory; nothing survives the process",
	},
	New: func() (storage.Backend, error) { return memory.New(), nil },
}

// main serves Plugin, exporting the process's spans (its side of every
// storage call) over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
func main() {
	p := Plugin
	if tel, err := telemetry.New(context.Background(), "runnel-storage-memory"); err != nil {
		fmt.Fprintf(os.Stderr, "runnel-storage-memory: %v\n", err)
	} else {
		p.Shutdown = tel.Shutdown
	}
	storage.Serve(p)
}
