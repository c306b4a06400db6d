// Command runnel-serde-text is the text serializer as a Runnel plugin.
// Build it as runnel-serde-text and put it in a folder of
// RUNNEL_PLUGIN_PATH (or in the plugins folder beside the runnel binary).
package main

import (
	"github.com/runnel-io/runnel/sdk/serde"

	text "example.com/runnel-serde-text"
)

func main() { serde.Serve(text.Plugin) }
