// Command runnel-serde-tsv is the tsv serializer as a plugin process.
package main

import (
	"github.com/runnel-io/runnel/plugins/serde/tsv"
	"github.com/runnel-io/runnel/sdk/serde"
)

func main() { serde.Serve(tsv.Plugin) }
