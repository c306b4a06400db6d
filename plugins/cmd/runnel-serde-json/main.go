// Command runnel-serde-json is the json serializer as a plugin process.
package main

import (
	"github.com/runnel-io/runnel/plugins/serde/json"
	"github.com/runnel-io/runnel/sdk/serde"
)

func main() { serde.Serve(json.Plugin) }
