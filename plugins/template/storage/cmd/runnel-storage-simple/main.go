// Command runnel-storage-simple is the template storage backend as a Runnel
// plugin. Build it as runnel-storage-simple and put it in a folder of
// RUNNEL_PLUGIN_PATH (or in the plugins folder beside runnel-broker); then
// `runnel-broker --storage-plugin simple`, or the topic setting
// runnel.storage.backend=simple, uses it.
package main

import (
	"github.com/runnel-io/runnel/sdk/storage"

	simple "example.com/runnel-storage-simple"
)

func main() { storage.Serve(simple.Plugin) }
