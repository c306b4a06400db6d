// Command runnel-storage-file is the file storage backend (Kafka's on-disk
// layout, package plugins/storage/file) as a plugin process. The broker
// starts it for --storage-plugin file; each partition's directory comes
// with its Open call (the broker's --data-dir), so the binary takes no
// flags.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/runnel-io/runnel/internal/telemetry"
	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Plugin is the file backend as a storage plugin.
var Plugin = storage.Plugin{
	Info: plugin.Description{
		Name:         "file",
		Version:      Version,
		Capabilities: []string{storage.CapPersistent},
		Summary:      "partition logs in Kafka's on-disk layout (segments, offset and time indexes)",
	},
	New: func() (storage.Backend, error) { return file.New(""), nil },
}

// main serves Plugin, exporting the process's spans (its side of every
// storage call) over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
func main() {
	p := Plugin
	if tel, err := telemetry.New(context.Background(), "runnel-storage-file"); err != nil {
		fmt.Fprintf(os.Stderr, "runnel-storage-file: %v\n", err)
	} else {
		p.Shutdown = tel.Shutdown
	}
	storage.Serve(p)
}
