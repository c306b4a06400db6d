// Command runnel-lagmon is a consumer-lag monitor compatible with LinkedIn
// Burrow: it watches the clusters named by --config (or one cluster given by
// --bootstrap-server and/or --nats-url) and serves Burrow's v3 HTTP API,
// Prometheus metrics and a dashboard on --listen.
package main

import (
	"github.com/runnel-io/runnel/internal/service"
	"github.com/runnel-io/runnel/services/lagmon/monitor"
)

func main() {
	var f monitor.Flags
	service.Main("runnel-lagmon", f.Register, monitor.Module(&f))
}
