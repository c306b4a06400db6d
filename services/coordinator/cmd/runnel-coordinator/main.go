// Command runnel-coordinator is a ZooKeeper-compatible coordination server,
// standalone or as a member of a raft ensemble.
package main

import (
	"github.com/runnel-io/runnel/internal/service"
	"github.com/runnel-io/runnel/services/coordinator/member"
)

func main() {
	var cfg member.Config
	service.Main("runnel-coordinator", cfg.Flags, member.Module(&cfg))
}
