package node

import (
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestFlagsAndSettings(t *testing.T) {
	var c Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"--config", "num.partitions=3", "--config", "log.retention.ms=1000;segment.bytes = 2048"}); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9092" || c.Coordinator != "127.0.0.1:2181" || c.Storage != "file" || c.ID != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.NATSURL != "" || c.NATSSubjectPrefix != "runnel" || c.ClusterName != "local" || c.NATSInterval != 5*time.Second {
		t.Fatalf("event defaults: %+v", c)
	}
	got, err := c.ParseSettings()
	want := map[string]string{"num.partitions": "3", "log.retention.ms": "1000", "segment.bytes": "2048"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v %v", got, err)
	}
	c.Settings = []string{"novalue"}
	if _, err := c.ParseSettings(); err == nil {
		t.Fatal("a setting without '=' was accepted")
	}
}

func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	var c Config
	if h, p, err := c.advertised(bound); err != nil || h != "127.0.0.1" || p != 4242 {
		t.Fatalf("default: %s %d %v", h, p, err)
	}
	c.AdvertisedListener = "kafka.example:19092"
	if h, p, err := c.advertised(bound); err != nil || h != "kafka.example" || p != 19092 {
		t.Fatalf("explicit: %s %d %v", h, p, err)
	}
	c.AdvertisedListener = ""
	host, _ := os.Hostname()
	if h, p, err := c.advertised(&net.TCPAddr{IP: net.IPv4zero, Port: 9092}); err != nil || h != host || p != 9092 {
		t.Fatalf("all interfaces: %s %d %v", h, p, err)
	}
	c.AdvertisedListener = "nohost"
	if _, _, err := c.advertised(bound); err == nil {
		t.Fatal("an address without a port was accepted")
	}
}

func TestEventFlagsAreChecked(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		flag string
	}{
		{Config{NATSURL: "nats://127.0.0.1:4222", ClusterName: "prod.eu"}, "--cluster-name"},
		{Config{NATSURL: "nats://127.0.0.1:4222", NATSSubjectPrefix: "a b"}, "--nats-subject-prefix"},
		{Config{NATSURL: "nats://127.0.0.1:4222", NATSInterval: -time.Second}, "--nats-interval"},
	} {
		cfg, flag := c.cfg, c.flag
		cfg.DataDir = t.TempDir()
		if _, err := New(Params{Config: cfg}); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%+v: %v, want an error naming %s", cfg, err, flag)
		}
	}
	// Without --nats-url the event flags are not used.
	if _, err := New(Params{Config: Config{DataDir: t.TempDir(), ClusterName: "prod.eu", Storage: "memory"}}); err != nil {
		t.Errorf("events off: %v", err)
	}
}
