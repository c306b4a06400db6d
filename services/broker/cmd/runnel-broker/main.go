// Command runnel-broker is a broker that speaks the Apache Kafka protocol,
// keeping its metadata in a ZooKeeper-compatible coordinator.
package main

import (
	"github.com/runnel-io/runnel/internal/service"
	"github.com/runnel-io/runnel/services/broker/node"
)

func main() {
	var cfg node.Config
	service.Main("runnel-broker", cfg.Flags, node.Module(&cfg))
}
