// Command runnel is Runnel's command-line tool: topics, produce, consume,
// groups and cluster talk to any Kafka-compatible broker, and `runnel dev`
// runs the whole local platform in one process.
package main

import (
	"os"

	"github.com/runnel-io/runnel/cmd/runnel/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
