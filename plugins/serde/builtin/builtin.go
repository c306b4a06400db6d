// Package builtin is the registry of the serializers Runnel links
// in-process (Vault's built-in plugins): hosts pass Plugins to
// serde.Loader, and the same implementations run as the plugin binaries
// runnel-serde-json, runnel-serde-tsv and runnel-serde-avro.
package builtin

import (
	"github.com/runnel-io/runnel/plugins/serde/avro"
	"github.com/runnel-io/runnel/plugins/serde/json"
	"github.com/runnel-io/runnel/plugins/serde/tsv"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Plugins returns the built-in serializers by name. The map is new on each
// call, so a host may add its own.
func Plugins() map[string]serde.Plugin {
	return map[string]serde.Plugin{
		"json": json.Plugin,
		"tsv":  tsv.Plugin,
		"avro": avro.Plugin,
	}
}
