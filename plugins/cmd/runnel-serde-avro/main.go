// Command runnel-serde-avro is the avro serializer as a plugin process.
package main

import (
	"github.com/runnel-io/runnel/plugins/serde/avro"
	"github.com/runnel-io/runnel/sdk/serde"
)

func main() { serde.Serve(avro.Plugin) }
