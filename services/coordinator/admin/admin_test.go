package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/admin"
	"github.com/runnel-io/runnel/services/coordinator/server"
	"github.com/runnel-io/runnel/services/coordinator/standalone"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

func TestCommands(t *testing.T) {
	db := znode.New()
	rep, err := standalone.Open(db, standalone.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep.Start()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	zk, err := server.New(server.Params{Config: cfg, DB: db, Replicator: rep})
	if err != nil {
		t.Fatal(err)
	}
	if err := zk.Start(); err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") })
	a := admin.New(zk, db, metrics)
	if err := a.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
		zk.Stop()
		_ = rep.Stop(ctx)
	})
	base := "http://" + a.Addr().String()

	for name, key := range map[string]string{
		"ruok": "", "mntr": "znode_count", "monitor": "server_state", "srvr": "server_stats",
		"conf": "tick_time", "cons": "connections", "wchs": "num_paths", "wchc": "session_id_to_watched_paths",
		"wchp": "path_to_session_ids", "dump": "session_id_to_ephemeral_paths", "envi": "zookeeper.version",
		"isro": "read_only", "stats": "server_stats",
	} {
		resp, err := http.Get(base + "/commands/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || body["error"] != nil || body["command"] == nil {
			t.Fatalf("%s: status %d body %v", name, resp.StatusCode, body)
		}
		if _, ok := body[key]; key != "" && !ok {
			t.Errorf("%s: no %q in %v", name, key, body)
		}
	}
	resp, err := http.Get(base + "/commands/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "GET /commands") {
		t.Fatalf("unknown command: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
}
